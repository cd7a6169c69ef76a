"""Instrument definitions as plain, immutable data (built by `loader`, read by `scoring` and the rules)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["higher_worse", "higher_better"]
Kind = Literal["outcome", "alliance", "goals", "therapist_alliance"]
Operator = Literal["<", "<=", ">", ">="]
ItemType = Literal["choice", "range", "text"]
ScoringMethod = Literal["sum", "mean"]
TextSource = Literal["definition", "episode_goal"]

DIRECTIONS: tuple[Direction, ...] = ("higher_worse", "higher_better")
KINDS: tuple[Kind, ...] = ("outcome", "alliance", "goals", "therapist_alliance")
OPERATORS: tuple[Operator, ...] = ("<", "<=", ">", ">=")
ITEM_TYPES: tuple[ItemType, ...] = ("choice", "range", "text")
SCORING_METHODS: tuple[ScoringMethod, ...] = ("sum", "mean")
TEXT_SOURCES: tuple[TextSource, ...] = ("definition", "episode_goal")

# Tolerance for "is this value on the slider's step grid" (answers arrive as binary floats).
_GRID_TOLERANCE = 1e-9


def compare(value: float, operator: Operator, threshold: float) -> bool:
    """Return whether `value <operator> threshold` holds."""
    if operator == "<":
        return value < threshold
    if operator == "<=":
        return value <= threshold
    if operator == ">":
        return value > threshold
    return value >= threshold


@dataclass(frozen=True, slots=True)
class Option:
    """One response option of a choice item: its numeric value and its label per language."""

    value: float
    label: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class NumericRange:
    """A slider or tap-target scale: min to max in steps, with labels for the two ends."""

    min: float
    max: float
    step: float
    min_label: Mapping[str, str] = field(default_factory=dict)
    max_label: Mapping[str, str] = field(default_factory=dict)

    def allows(self, value: float) -> bool:
        """Return whether `value` lies within the range and on its step grid."""
        if not self.min <= value <= self.max:
            return False
        steps = (value - self.min) / self.step
        return abs(steps - round(steps)) <= _GRID_TOLERANCE * max(1.0, abs(steps))


@dataclass(frozen=True, slots=True)
class Item:
    """One question of an instrument."""

    id: str
    type: ItemType
    text: Mapping[str, str]
    options: tuple[Option, ...] = ()
    range: NumericRange | None = None
    scored: bool = True
    required: bool = True
    reversed: bool = False
    risk: bool = False
    component: str | None = None
    role: str | None = None
    rotation: str | None = None
    loinc: str | None = None
    text_source: TextSource = "definition"
    max_length: int | None = None
    # The option values as a set: every answer of every submission is checked against it (twice).
    _values: frozenset[float] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_values", frozenset(option.value for option in self.options))

    @property
    def min_value(self) -> float:
        """Return the lowest value an answer can take (numeric items only)."""
        if self.range is not None:
            return self.range.min
        if not self.options:
            raise TypeError(f"item {self.id!r} has no numeric values")
        return min(option.value for option in self.options)

    @property
    def max_value(self) -> float:
        """Return the highest value an answer can take (numeric items only)."""
        if self.range is not None:
            return self.range.max
        if not self.options:
            raise TypeError(f"item {self.id!r} has no numeric values")
        return max(option.value for option in self.options)

    def allows(self, value: float) -> bool:
        """Return whether a numeric answer is one of this item's allowed values."""
        if not math.isfinite(value):
            return False
        if self.range is not None:
            return self.range.allows(value)
        return value in self._values

    def describe_allowed(self) -> str:
        """Return a short human description of the allowed answers."""
        if self.type == "text":
            return f"text of at most {self.max_length} characters" if self.max_length else "text"
        if self.range is not None:
            return f"{_fmt(self.range.min)} to {_fmt(self.range.max)} in steps of {_fmt(self.range.step)}"
        return "one of " + ", ".join(_fmt(option.value) for option in self.options)

    def scored_value(self, answer: float) -> float:
        """Return the value that enters the score: mirrored over the item's range when reversed."""
        if self.reversed:
            return self.min_value + self.max_value - answer
        return answer


@dataclass(frozen=True, slots=True)
class Subscale:
    """A named group of scored items with its own total."""

    id: str
    items: tuple[str, ...]
    method: ScoringMethod = "sum"
    missing_tolerated: int = 0
    title: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scoring:
    """How answers become a total: method, missing-item rule, rounding and subscales."""

    method: ScoringMethod
    missing_tolerated: int
    prorate: bool
    decimals: int = 0
    subscales: tuple[Subscale, ...] = ()


@dataclass(frozen=True, slots=True)
class Cutoff:
    """The clinical cutoff: a score is in the flagged range when `score <operator> value`."""

    value: float
    operator: Operator

    def flags(self, score: float) -> bool:
        """Return whether `score` is on the flagged side of the cutoff."""
        return compare(score, self.operator, self.value)


@dataclass(frozen=True, slots=True)
class Band:
    """A severity band, inclusive at both ends."""

    min: float
    max: float
    label: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ReliableChange:
    """The reliable-change value and, when known, what it was derived from."""

    value: float
    sd: float | None = None
    reliability: float | None = None
    basis: str | None = None


@dataclass(frozen=True, slots=True)
class Norms:
    """Reference means and SDs (clinical and general population) for Jacobson & Truax cutoffs."""

    clinical_mean: float
    clinical_sd: float
    general_mean: float
    general_sd: float
    reliability: float | None = None


@dataclass(frozen=True, slots=True)
class Licence:
    """Licence and attribution that must travel with the instrument's text."""

    name: str
    attribution: Mapping[str, str]
    text_may_be_altered: bool
    holder: str | None = None
    url: str | None = None
    copyright: str | None = None
    commercial_use: bool = True


@dataclass(frozen=True, slots=True)
class Codes:
    """Terminology codes (LOINC for PHQ-9 and GAD-7) for FHIR export."""

    system: str
    panel: str | None = None
    total: str | None = None


@dataclass(frozen=True, slots=True)
class Instrument:
    """A questionnaire: items, scoring, interpretation and licence, loaded from one definition file."""

    code: str
    version: str
    kind: Kind
    title: Mapping[str, str]
    languages: tuple[str, ...]
    validated: bool
    licence: Licence
    items: tuple[Item, ...]
    scoring: Scoring
    range_min: float
    range_max: float
    direction: Direction
    source: str
    instructions: Mapping[str, str] = field(default_factory=dict)
    cutoff: Cutoff | None = None
    reliable_change: ReliableChange | None = None
    bands: tuple[Band, ...] = ()
    codes: Codes | None = None
    norms: Norms | None = None

    def item(self, item_id: str) -> Item:
        """Return the item with this id."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(f"{self.code} has no item {item_id!r}")

    @property
    def scored_items(self) -> tuple[Item, ...]:
        """Return the items that enter the total, in order."""
        return tuple(item for item in self.items if item.scored)

    @property
    def risk_items(self) -> tuple[Item, ...]:
        """Return the items whose answer above 0 raises a risk signal."""
        return tuple(item for item in self.items if item.risk)

    @property
    def components(self) -> tuple[str, ...]:
        """Return the component names of the items that carry one, in item order."""
        return tuple(item.component for item in self.items if item.component is not None)

    def component_item(self, component: str) -> Item:
        """Return the item that measures a component."""
        for item in self.items:
            if item.component == component:
                return item
        raise KeyError(f"{self.code} has no component {component!r}")

    def items_with_role(self, role: str) -> tuple[Item, ...]:
        """Return the items that play a role (for example "tension" or "comment")."""
        return tuple(item for item in self.items if item.role == role)

    def rotating_item(self, group: str, session_number: int) -> Item:
        """Return the item of a rotation group asked at this 1-based session: each in turn."""
        members = tuple(item for item in self.items if item.rotation == group)
        if not members:
            raise KeyError(f"{self.code} has no rotation group {group!r}")
        if session_number < 1:
            raise ValueError("session_number is 1-based")
        return members[(session_number - 1) % len(members)]

    def is_clinical(self, score: float) -> bool | None:
        """Return whether the score is on the flagged side of the cutoff (None without a cutoff)."""
        return None if self.cutoff is None else self.cutoff.flags(score)

    def band_for(self, score: float) -> Band | None:
        """Return the severity band holding the score (the lower band between two, for decimals)."""
        found: Band | None = None
        for band in self.bands:
            if score >= band.min:
                found = band
        return found

    def worsening(self, earlier: float, later: float) -> float:
        """Return how much worse `later` is than `earlier` (negative when it is better)."""
        if self.direction == "higher_worse":
            return later - earlier
        return earlier - later


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
