"""Score one administration of an instrument: validate answers, total, subscales, proration, risk items."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from services.measures.instrument import Band, Instrument, Item, ScoringMethod

Status = Literal["complete", "prorated", "incomplete"]


class AnswerError(ValueError):
    """An answer is not one the item allows; the message names the item."""

    def __init__(self, instrument_code: str, item_id: str, problem: str) -> None:
        super().__init__(f"{instrument_code} item {item_id!r}: {problem}")
        self.instrument_code = instrument_code
        self.item_id = item_id


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The scored administration; `total` is None when too many items are missing."""

    instrument: str
    version: str
    status: Status
    total: float | None
    answered: int
    expected: int
    missing: tuple[str, ...]
    answers: Mapping[str, float | str]
    values: Mapping[str, float]
    subscales: Mapping[str, float | None]
    components: Mapping[str, float | None]
    risk_positive: tuple[str, ...]
    risk_unanswered: tuple[str, ...]
    band: Band | None
    clinical: bool | None

    @property
    def is_scored(self) -> bool:
        """Return whether the administration has a total that may feed the rules."""
        return self.total is not None


def score_administration(
    instrument: Instrument,
    answers: Mapping[str, object],
    *,
    not_applicable: Collection[str] = (),
) -> ScoreResult:
    """Validate the answers and score them by the instrument's rules (items not asked go in not_applicable)."""
    for item_id in not_applicable:
        instrument.item(item_id)
    validated = validate_answers(instrument, answers)
    for item_id in validated:
        if item_id in not_applicable:
            raise AnswerError(instrument.code, item_id, "was answered but marked as not asked")

    applicable = [item for item in instrument.scored_items if item.id not in not_applicable]
    if not applicable:
        raise ValueError(f"{instrument.code}: every scored item is marked as not asked")
    exact = {
        item.id: _scored_decimal(item, answer)
        for item in applicable
        if isinstance(answer := validated.get(item.id), float)
    }
    values = {item_id: float(value) for item_id, value in exact.items()}
    missing = tuple(item.id for item in applicable if item.id not in exact)
    scoring = instrument.scoring
    total = _combine(
        [exact[item.id] for item in applicable if item.id in exact],
        expected=len(applicable),
        method=scoring.method,
        tolerated=scoring.missing_tolerated,
        prorate=scoring.prorate,
        decimals=scoring.decimals,
    )
    if total is None:
        status: Status = "incomplete"
    else:
        status = "complete" if not missing else "prorated"

    subscales: dict[str, float | None] = {}
    for subscale in scoring.subscales:
        members = [item_id for item_id in subscale.items if item_id not in not_applicable]
        subscales[subscale.id] = (
            _combine(
                [exact[item_id] for item_id in members if item_id in exact],
                expected=len(members),
                method=subscale.method,
                tolerated=subscale.missing_tolerated,
                prorate=scoring.prorate,
                decimals=scoring.decimals,
            )
            if members
            else None
        )

    components = {
        item.component: values.get(item.id)
        for item in instrument.items
        if item.component is not None and item.id not in not_applicable
    }
    risk_items = [item for item in instrument.risk_items if item.id not in not_applicable]
    risk_positive = tuple(item.id for item in risk_items if isinstance(a := validated.get(item.id), float) and a > 0)
    risk_unanswered = tuple(item.id for item in risk_items if item.id not in validated)
    return ScoreResult(
        instrument=instrument.code,
        version=instrument.version,
        status=status,
        total=total,
        answered=len(values),
        expected=len(applicable),
        missing=missing,
        answers=validated,
        values=values,
        subscales=subscales,
        components=components,
        risk_positive=risk_positive,
        risk_unanswered=risk_unanswered,
        band=None if total is None else instrument.band_for(total),
        clinical=None if total is None else instrument.is_clinical(total),
    )


def validate_answers(instrument: Instrument, answers: Mapping[str, object]) -> dict[str, float | str]:
    """Return the given answers checked against their items (unanswered ones dropped)."""
    validated: dict[str, float | str] = {}
    for item_id, answer in answers.items():
        try:
            item = instrument.item(item_id)
        except KeyError:
            raise AnswerError(instrument.code, str(item_id), f"is not an item of {instrument.code}") from None
        checked = check_answer(instrument.code, item, answer)
        if checked is not None:
            validated[item_id] = checked
    return validated


def check_answer(instrument_code: str, item: Item, answer: object) -> float | str | None:
    """Return the answer as stored (float or text), None when unanswered, or raise AnswerError."""
    if answer is None:
        return None
    if item.type == "text":
        if not isinstance(answer, str):
            raise AnswerError(instrument_code, item.id, f"expected text, got {answer!r}")
        text = answer.strip()
        if item.max_length is not None and len(text) > item.max_length:
            raise AnswerError(instrument_code, item.id, f"is longer than {item.max_length} characters")
        return text or None
    if isinstance(answer, bool) or not isinstance(answer, int | float):
        raise AnswerError(instrument_code, item.id, f"expected a number ({item.describe_allowed()}), got {answer!r}")
    value = float(answer)
    if not item.allows(value):
        raise AnswerError(
            instrument_code,
            item.id,
            f"answer {answer!r} is not allowed; expected {item.describe_allowed()}",
        )
    return value


def round_half_up(value: Decimal, decimals: int) -> Decimal:
    """Round to `decimals` places with halves going up (2.5 -> 3), as the scoring manuals do."""
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _scored_decimal(item: Item, answer: float) -> Decimal:
    # Decimal(repr(x)) keeps slider answers such as 7.3 exact, so sums, reversals and halves come out
    # as written rather than as their binary approximations.
    value = Decimal(repr(answer))
    if item.reversed:
        return Decimal(repr(item.min_value)) + Decimal(repr(item.max_value)) - value
    return value


def _combine(
    values: Sequence[Decimal],
    *,
    expected: int,
    method: ScoringMethod,
    tolerated: int,
    prorate: bool,
    decimals: int,
) -> float | None:
    answered = len(values)
    if answered == 0 or expected - answered > tolerated:
        return None
    exact = sum(values, Decimal(0))
    if method == "mean":
        exact = exact / answered
    elif prorate and answered < expected:
        exact = exact * expected / answered
    return float(round_half_up(exact, decimals))
