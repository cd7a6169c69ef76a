"""Load instrument definition files and validate them, naming the file and the field of any fault."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import NoReturn, TypeVar

from services.measures.instrument import (
    DIRECTIONS,
    ITEM_TYPES,
    KINDS,
    OPERATORS,
    SCORING_METHODS,
    TEXT_SOURCES,
    Band,
    Codes,
    Cutoff,
    Instrument,
    Item,
    Licence,
    Norms,
    NumericRange,
    Option,
    ReliableChange,
    Scoring,
    Subscale,
)

FORMAT_VERSION = 1
GOAL_PLACEHOLDER = "{goal}"

_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_T = TypeVar("_T", bound=str)

_TOP_REQUIRED = frozenset(
    {
        "format",
        "code",
        "version",
        "kind",
        "validated",
        "languages",
        "title",
        "licence",
        "items",
        "scoring",
        "range",
        "direction",
    }
)
_TOP_OPTIONAL = frozenset(
    {"instructions", "option_sets", "cutoff", "reliable_change", "bands", "codes", "norms", "notes"}
)
_ITEM_REQUIRED = frozenset({"id", "type", "text"})
_ITEM_OPTIONAL = frozenset(
    {
        "options",
        "range",
        "scored",
        "required",
        "reversed",
        "risk",
        "component",
        "role",
        "rotation",
        "loinc",
        "text_source",
        "max_length",
    }
)


class DefinitionError(ValueError):
    """An instrument definition is malformed; the message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


class UnknownInstrumentError(LookupError):
    """No shipped definition has the requested code."""


class _Reader:
    """Typed access to decoded JSON that reports faults as `DefinitionError`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> NoReturn:
        raise DefinitionError(self.source, field, problem)

    def obj(self, value: object, field: str) -> Mapping[str, object]:
        if not isinstance(value, dict):
            self.fail(field, f"expected an object, got {_kind(value)}")
        return value

    def keys(self, obj: Mapping[str, object], field: str, required: frozenset[str], optional: frozenset[str]) -> None:
        for key in sorted(required - obj.keys()):
            self.fail(_join(field, key), "is required")
        for key in sorted(obj.keys() - required - optional):
            self.fail(_join(field, key), "is not a known field")

    def string(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"expected a non-empty string, got {_kind(value)}")
        return value

    def optional_string(self, value: object, field: str) -> str | None:
        return None if value is None else self.string(value, field)

    def identifier(self, value: object, field: str) -> str:
        text = self.string(value, field)
        if not _ID_PATTERN.match(text):
            self.fail(field, f"{text!r} must start with a letter and hold only letters, digits and _")
        return text

    def choice(self, value: object, field: str, allowed: Sequence[_T]) -> _T:
        for candidate in allowed:
            if value == candidate:
                return candidate
        self.fail(field, f"expected one of {', '.join(allowed)}, got {value!r}")

    def boolean(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            self.fail(field, f"expected true or false, got {_kind(value)}")
        return value

    def number(self, value: object, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            self.fail(field, "must be finite")
        return float(value)

    def integer(self, value: object, field: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"expected an integer, got {_kind(value)}")
        if value < minimum:
            self.fail(field, f"must be at least {minimum}")
        return value

    def localized(self, value: object, field: str, languages: tuple[str, ...]) -> dict[str, str]:
        mapping = self.obj(value, field)
        for language in languages:
            if language not in mapping:
                self.fail(_join(field, language), "translation is missing")
        for language in mapping:
            if language not in languages:
                self.fail(_join(field, language), "is not one of the declared languages")
        return {language: self.string(mapping[language], _join(field, language)) for language in languages}


def load_instrument_file(path: str | Path) -> Instrument:
    """Load and validate one definition file."""
    source = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionError(source, "(file)", f"cannot be read: {error.strerror}") from error
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise DefinitionError(
            source, "(json)", f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from error
    return load_instrument_data(data, source=source)


def load_instrument_data(data: object, *, source: str = "<data>") -> Instrument:
    """Validate decoded JSON (for example a practice's uploaded file) and build the instrument."""
    reader = _Reader(source)
    top = reader.obj(data, "(root)")
    reader.keys(top, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    if top["format"] != FORMAT_VERSION:
        reader.fail("format", f"expected {FORMAT_VERSION}, got {top['format']!r}")
    languages = _languages(reader, top["languages"])
    option_sets = _option_sets(reader, top.get("option_sets", {}), languages)
    items = _items(reader, top["items"], languages, option_sets)
    scoring = _scoring(reader, top["scoring"], items, languages)
    range_min, range_max = _range(reader, top["range"], items, scoring)
    notes = top.get("notes")
    if notes is not None:
        reader.string(notes, "notes")
    instrument = Instrument(
        code=reader.string(top["code"], "code"),
        version=reader.string(top["version"], "version"),
        kind=reader.choice(top["kind"], "kind", KINDS),
        title=reader.localized(top["title"], "title", languages),
        languages=languages,
        validated=reader.boolean(top["validated"], "validated"),
        licence=_licence(reader, top["licence"], languages),
        items=items,
        scoring=scoring,
        range_min=range_min,
        range_max=range_max,
        direction=reader.choice(top["direction"], "direction", DIRECTIONS),
        source=source,
        instructions=(
            reader.localized(top["instructions"], "instructions", languages) if "instructions" in top else {}
        ),
        cutoff=_cutoff(reader, top.get("cutoff"), range_min, range_max),
        reliable_change=_reliable_change(reader, top.get("reliable_change")),
        bands=_bands(reader, top.get("bands", []), languages, range_min, range_max),
        codes=_codes(reader, top.get("codes")),
        norms=_norms(reader, top.get("norms")),
    )
    return instrument


def definitions_directory() -> Path:
    """Return the directory holding the shipped definition files."""
    return Path(str(resources.files("services.measures") / "definitions"))


@functools.cache
def _shipped() -> dict[str, Instrument]:
    found: dict[str, Instrument] = {}
    for path in sorted(definitions_directory().glob("*.json")):
        instrument = load_instrument_file(path)
        if instrument.code in found:
            raise DefinitionError(
                str(path), "code", f"{instrument.code!r} is already defined in {found[instrument.code].source}"
            )
        found[instrument.code] = instrument
    return found


def load_instrument(code: str) -> Instrument:
    """Return the shipped instrument with this code (for example "PHQ-9")."""
    try:
        return _shipped()[code]
    except KeyError:
        known = ", ".join(sorted(_shipped()))
        raise UnknownInstrumentError(f"no instrument {code!r}; shipped: {known}") from None


def all_instruments() -> tuple[Instrument, ...]:
    """Return every shipped instrument, ordered by code."""
    return tuple(instrument for _, instrument in sorted(_shipped().items()))


def _languages(reader: _Reader, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        reader.fail("languages", "expected a non-empty list of language codes")
    languages = tuple(reader.string(language, f"languages[{i}]") for i, language in enumerate(value))
    if len(set(languages)) != len(languages):
        reader.fail("languages", "lists a language twice")
    return languages


def _option_list(reader: _Reader, value: object, field: str, languages: tuple[str, ...]) -> tuple[Option, ...]:
    if not isinstance(value, list) or not value:
        reader.fail(field, "expected a non-empty list of options")
    options: list[Option] = []
    for i, raw in enumerate(value):
        where = f"{field}[{i}]"
        entry = reader.obj(raw, where)
        reader.keys(entry, where, frozenset({"value", "label"}), frozenset())
        option = Option(
            value=reader.number(entry["value"], f"{where}.value"),
            label=reader.localized(entry["label"], f"{where}.label", languages),
        )
        if any(option.value == other.value for other in options):
            reader.fail(f"{where}.value", f"value {option.value:g} appears twice")
        options.append(option)
    return tuple(options)


def _option_sets(reader: _Reader, value: object, languages: tuple[str, ...]) -> dict[str, tuple[Option, ...]]:
    sets = reader.obj(value, "option_sets")
    return {
        reader.identifier(name, f"option_sets.{name}"): _option_list(reader, raw, f"option_sets.{name}", languages)
        for name, raw in sets.items()
    }


def _numeric_range(reader: _Reader, value: object, field: str, languages: tuple[str, ...]) -> NumericRange:
    entry = reader.obj(value, field)
    reader.keys(entry, field, frozenset({"min", "max"}), frozenset({"step", "min_label", "max_label"}))
    low = reader.number(entry["min"], f"{field}.min")
    high = reader.number(entry["max"], f"{field}.max")
    step = reader.number(entry.get("step", 1), f"{field}.step")
    if high <= low:
        reader.fail(f"{field}.max", "must be greater than min")
    if step <= 0:
        reader.fail(f"{field}.step", "must be positive")
    steps = (high - low) / step
    if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        reader.fail(f"{field}.step", "must divide max - min into whole steps")
    return NumericRange(
        min=low,
        max=high,
        step=step,
        min_label=reader.localized(entry["min_label"], f"{field}.min_label", languages) if "min_label" in entry else {},
        max_label=reader.localized(entry["max_label"], f"{field}.max_label", languages) if "max_label" in entry else {},
    )


def _items(
    reader: _Reader,
    value: object,
    languages: tuple[str, ...],
    option_sets: Mapping[str, tuple[Option, ...]],
) -> tuple[Item, ...]:
    if not isinstance(value, list) or not value:
        reader.fail("items", "expected a non-empty list of items")
    items: list[Item] = []
    for i, raw in enumerate(value):
        item = _item(reader, raw, f"items[{i}]", languages, option_sets)
        if any(item.id == other.id for other in items):
            reader.fail(f"items[{i}].id", f"{item.id!r} appears twice")
        if item.component is not None and any(item.component == other.component for other in items):
            reader.fail(f"items[{i}].component", f"{item.component!r} is measured by two items")
        items.append(item)
    if not any(item.scored for item in items):
        reader.fail("items", "no item is scored")
    return tuple(items)


def _item(
    reader: _Reader,
    value: object,
    field: str,
    languages: tuple[str, ...],
    option_sets: Mapping[str, tuple[Option, ...]],
) -> Item:
    entry = reader.obj(value, field)
    reader.keys(entry, field, _ITEM_REQUIRED, _ITEM_OPTIONAL)
    item_type = reader.choice(entry["type"], f"{field}.type", ITEM_TYPES)
    options: tuple[Option, ...] = ()
    numeric_range: NumericRange | None = None
    if item_type == "choice":
        if "options" not in entry:
            reader.fail(f"{field}.options", "is required for a choice item")
        raw_options = entry["options"]
        if isinstance(raw_options, str):
            if raw_options not in option_sets:
                reader.fail(f"{field}.options", f"names no option set {raw_options!r}")
            options = option_sets[raw_options]
        else:
            options = _option_list(reader, raw_options, f"{field}.options", languages)
    elif item_type == "range":
        if "range" not in entry:
            reader.fail(f"{field}.range", "is required for a range item")
        numeric_range = _numeric_range(reader, entry["range"], f"{field}.range", languages)
    for key, wanted in (("options", "choice"), ("range", "range")):
        if key in entry and item_type != wanted:
            reader.fail(f"{field}.{key}", f"only a {wanted} item takes {key}")
    numeric = item_type != "text"
    scored = reader.boolean(entry.get("scored", numeric), f"{field}.scored")
    required = reader.boolean(entry.get("required", scored), f"{field}.required")
    reversed_ = reader.boolean(entry.get("reversed", False), f"{field}.reversed")
    risk = reader.boolean(entry.get("risk", False), f"{field}.risk")
    if not numeric:
        for key, flag in (("scored", scored), ("reversed", reversed_), ("risk", risk)):
            if flag:
                reader.fail(f"{field}.{key}", "a text item cannot be scored, reversed or a risk item")
    if scored and not required:
        reader.fail(f"{field}.required", "a scored item is always required (use the missing-item rule)")
    rotation = None
    if entry.get("rotation") is not None:
        rotation = reader.identifier(entry["rotation"], f"{field}.rotation")
        if scored or required:
            reader.fail(f"{field}.rotation", "a rotating item must be neither scored nor required")
    text_source = reader.choice(entry.get("text_source", "definition"), f"{field}.text_source", TEXT_SOURCES)
    text = reader.localized(entry["text"], f"{field}.text", languages)
    if text_source == "episode_goal":
        for language, wording in text.items():
            if GOAL_PLACEHOLDER not in wording:
                reader.fail(f"{field}.text.{language}", f"must contain {GOAL_PLACEHOLDER} (the client's goal)")
    max_length = None
    if "max_length" in entry:
        if numeric:
            reader.fail(f"{field}.max_length", "only a text item takes max_length")
        max_length = reader.integer(entry["max_length"], f"{field}.max_length", minimum=1)
    return Item(
        id=reader.identifier(entry["id"], f"{field}.id"),
        type=item_type,
        text=text,
        options=options,
        range=numeric_range,
        scored=scored,
        required=required,
        reversed=reversed_,
        risk=risk,
        component=_optional_identifier(reader, entry.get("component"), f"{field}.component"),
        role=_optional_identifier(reader, entry.get("role"), f"{field}.role"),
        rotation=rotation,
        loinc=reader.optional_string(entry.get("loinc"), f"{field}.loinc"),
        text_source=text_source,
        max_length=max_length if max_length is not None else (2000 if not numeric else None),
    )


def _optional_identifier(reader: _Reader, value: object, field: str) -> str | None:
    return None if value is None else reader.identifier(value, field)


def _scoring(reader: _Reader, value: object, items: tuple[Item, ...], languages: tuple[str, ...]) -> Scoring:
    entry = reader.obj(value, "scoring")
    reader.keys(
        entry,
        "scoring",
        frozenset({"method", "missing_tolerated", "prorate"}),
        frozenset({"decimals", "subscales"}),
    )
    scored = [item for item in items if item.scored]
    method = reader.choice(entry["method"], "scoring.method", SCORING_METHODS)
    tolerated = reader.integer(entry["missing_tolerated"], "scoring.missing_tolerated")
    if tolerated >= len(scored):
        reader.fail("scoring.missing_tolerated", f"must be below the number of scored items ({len(scored)})")
    prorate = reader.boolean(entry["prorate"], "scoring.prorate")
    if prorate and method != "sum":
        reader.fail("scoring.prorate", "only a sum is prorated (a mean already ignores missing items)")
    if prorate and len({(item.min_value, item.max_value) for item in scored}) > 1:
        reader.fail("scoring.prorate", "needs every scored item to share one value range")
    decimals = reader.integer(entry.get("decimals", 0), "scoring.decimals")
    if decimals > 3:
        reader.fail("scoring.decimals", "must be at most 3")
    scored_ids = {item.id for item in scored}
    subscales: list[Subscale] = []
    raw_subscales = entry.get("subscales", [])
    if not isinstance(raw_subscales, list):
        reader.fail("scoring.subscales", "expected a list")
    for i, raw in enumerate(raw_subscales):
        where = f"scoring.subscales[{i}]"
        sub = reader.obj(raw, where)
        reader.keys(sub, where, frozenset({"id", "items"}), frozenset({"method", "missing_tolerated", "title"}))
        member_ids = sub["items"]
        if not isinstance(member_ids, list) or not member_ids:
            reader.fail(f"{where}.items", "expected a non-empty list of item ids")
        members = tuple(reader.string(member, f"{where}.items[{j}]") for j, member in enumerate(member_ids))
        for j, member in enumerate(members):
            if member not in scored_ids:
                reader.fail(f"{where}.items[{j}]", f"{member!r} is not a scored item")
        sub_tolerated = reader.integer(sub.get("missing_tolerated", 0), f"{where}.missing_tolerated")
        if sub_tolerated >= len(members):
            reader.fail(f"{where}.missing_tolerated", "must be below the number of its items")
        subscale = Subscale(
            id=reader.identifier(sub["id"], f"{where}.id"),
            items=members,
            method=reader.choice(sub.get("method", "sum"), f"{where}.method", SCORING_METHODS),
            missing_tolerated=sub_tolerated,
            title=reader.localized(sub["title"], f"{where}.title", languages) if "title" in sub else {},
        )
        if any(subscale.id == other.id for other in subscales):
            reader.fail(f"{where}.id", f"{subscale.id!r} appears twice")
        subscales.append(subscale)
    return Scoring(
        method=method,
        missing_tolerated=tolerated,
        prorate=prorate,
        decimals=decimals,
        subscales=tuple(subscales),
    )


def _range(reader: _Reader, value: object, items: tuple[Item, ...], scoring: Scoring) -> tuple[float, float]:
    entry = reader.obj(value, "range")
    reader.keys(entry, "range", frozenset({"min", "max"}), frozenset())
    low = reader.number(entry["min"], "range.min")
    high = reader.number(entry["max"], "range.max")
    scored = [item for item in items if item.scored]
    if scoring.method == "sum":
        expected = (sum(item.min_value for item in scored), sum(item.max_value for item in scored))
    else:
        expected = (min(item.min_value for item in scored), max(item.max_value for item in scored))
    if not math.isclose(low, expected[0], abs_tol=1e-9):
        reader.fail("range.min", f"is {low:g} but the scored items give {expected[0]:g}")
    if not math.isclose(high, expected[1], abs_tol=1e-9):
        reader.fail("range.max", f"is {high:g} but the scored items give {expected[1]:g}")
    return low, high


def _licence(reader: _Reader, value: object, languages: tuple[str, ...]) -> Licence:
    entry = reader.obj(value, "licence")
    reader.keys(
        entry,
        "licence",
        frozenset({"name", "attribution", "text_may_be_altered"}),
        frozenset({"holder", "url", "copyright", "commercial_use"}),
    )
    return Licence(
        name=reader.string(entry["name"], "licence.name"),
        attribution=reader.localized(entry["attribution"], "licence.attribution", languages),
        text_may_be_altered=reader.boolean(entry["text_may_be_altered"], "licence.text_may_be_altered"),
        holder=reader.optional_string(entry.get("holder"), "licence.holder"),
        url=reader.optional_string(entry.get("url"), "licence.url"),
        copyright=reader.optional_string(entry.get("copyright"), "licence.copyright"),
        commercial_use=reader.boolean(entry.get("commercial_use", True), "licence.commercial_use"),
    )


def _cutoff(reader: _Reader, value: object, low: float, high: float) -> Cutoff | None:
    if value is None:
        return None
    entry = reader.obj(value, "cutoff")
    reader.keys(entry, "cutoff", frozenset({"value", "operator"}), frozenset())
    threshold = reader.number(entry["value"], "cutoff.value")
    if not low <= threshold <= high:
        reader.fail("cutoff.value", f"{threshold:g} lies outside the range {low:g}-{high:g}")
    return Cutoff(value=threshold, operator=reader.choice(entry["operator"], "cutoff.operator", OPERATORS))


def _reliable_change(reader: _Reader, value: object) -> ReliableChange | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        amount = reader.number(value, "reliable_change")
        if amount <= 0:
            reader.fail("reliable_change", "must be positive")
        return ReliableChange(value=amount)
    reader.keys(value, "reliable_change", frozenset({"value"}), frozenset({"sd", "reliability", "basis"}))
    amount = reader.number(value["value"], "reliable_change.value")
    if amount <= 0:
        reader.fail("reliable_change.value", "must be positive")
    reliability = None
    if value.get("reliability") is not None:
        reliability = reader.number(value["reliability"], "reliable_change.reliability")
        if not 0 < reliability < 1:
            reader.fail("reliable_change.reliability", "must lie strictly between 0 and 1")
    sd = None if value.get("sd") is None else reader.number(value["sd"], "reliable_change.sd")
    return ReliableChange(
        value=amount,
        sd=sd,
        reliability=reliability,
        basis=reader.optional_string(value.get("basis"), "reliable_change.basis"),
    )


def _bands(reader: _Reader, value: object, languages: tuple[str, ...], low: float, high: float) -> tuple[Band, ...]:
    if not isinstance(value, list):
        reader.fail("bands", "expected a list")
    bands: list[Band] = []
    for i, raw in enumerate(value):
        where = f"bands[{i}]"
        entry = reader.obj(raw, where)
        reader.keys(entry, where, frozenset({"min", "max", "label"}), frozenset())
        band = Band(
            min=reader.number(entry["min"], f"{where}.min"),
            max=reader.number(entry["max"], f"{where}.max"),
            label=reader.localized(entry["label"], f"{where}.label", languages),
        )
        if band.max < band.min:
            reader.fail(f"{where}.max", "is below its min")
        if bands and band.min <= bands[-1].max:
            reader.fail(f"{where}.min", "overlaps the previous band (bands go upwards)")
        bands.append(band)
    if bands and bands[0].min != low:
        reader.fail("bands[0].min", f"must equal range.min ({low:g})")
    if bands and bands[-1].max != high:
        reader.fail(f"bands[{len(bands) - 1}].max", f"must equal range.max ({high:g})")
    return tuple(bands)


def _codes(reader: _Reader, value: object) -> Codes | None:
    if value is None:
        return None
    entry = reader.obj(value, "codes")
    reader.keys(entry, "codes", frozenset({"system"}), frozenset({"panel", "total"}))
    return Codes(
        system=reader.string(entry["system"], "codes.system"),
        panel=reader.optional_string(entry.get("panel"), "codes.panel"),
        total=reader.optional_string(entry.get("total"), "codes.total"),
    )


def _norms(reader: _Reader, value: object) -> Norms | None:
    if value is None:
        return None
    entry = reader.obj(value, "norms")
    required = frozenset({"clinical_mean", "clinical_sd", "general_mean", "general_sd"})
    reader.keys(entry, "norms", required, frozenset({"reliability"}))
    numbers = {key: reader.number(entry[key], f"norms.{key}") for key in sorted(required)}
    for key in ("clinical_sd", "general_sd"):
        if numbers[key] <= 0:
            reader.fail(f"norms.{key}", "must be positive")
    reliability = None
    if entry.get("reliability") is not None:
        reliability = reader.number(entry["reliability"], "norms.reliability")
        if not 0 < reliability < 1:
            reader.fail("norms.reliability", "must lie strictly between 0 and 1")
    return Norms(reliability=reliability, **numbers)


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    return "an object"
