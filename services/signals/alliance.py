"""Alliance rupture rules and the alert state machine (CLINICAL.md section 3), over plain per-session data.

Sessions are the positions of `totals` (session 1 first). A total of None is an incomplete administration: it
counts as a session (for the repair window) but never feeds a total-based rule, a mean or an SD.

Every decision is exact (`services.signals.exact`): scores become whole numbers of millionths and the rules
compare sums and squares of them in integers, so "at or below m - k*s" and "at or above the baseline" hold for
30.6 against 36.6 - 2 x 3 and for 39.4 against a baseline of 39.4, and adding a constant to every score changes
no deviation-based decision. The thresholds come from the settings, which `SignalSettings.for_instrument` fills
from the instrument's definition (low cutoff and its operator, reliable-change value, direction).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from services.measures.instrument import Operator
from services.signals.exact import SCALE, ratio, units
from services.signals.settings import DEFAULT_SETTINGS, SignalSettings
from services.signals.types import (
    ALLIANCE_KINDS,
    COMPONENT_DROP,
    LOW_ALLIANCE,
    OPENING_KINDS,
    PERSPECTIVE_GAP,
    REPAIRED,
    RUPTURE_DEV,
    RUPTURE_DROP,
    TENSION,
    UNREPAIRED,
    Signal,
)

PARTNERSHIP_COMPONENTS: tuple[str, ...] = ("rapport", "mutual_goals", "realistic_goals", "shared_responsibility")

REVIEW_UNREPAIRED = "UNREPAIRED"
REVIEW_REPEAT_ALERT = "REPEAT_ALERT"

_KIND_ORDER = {kind: position for position, kind in enumerate(ALLIANCE_KINDS)}
_OPERATORS: dict[Operator, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Score = float | int
ItemScores = Sequence[Score | None]


@dataclass(frozen=True, slots=True)
class AllianceAlert:
    """One alliance alert: when it opened, its baseline, and how it ended (if it did)."""

    opened_session: int
    baseline: float | None
    opening_kinds: tuple[str, ...]
    repaired_session: int | None = None
    unrepaired_session: int | None = None

    @property
    def is_open(self) -> bool:
        """Return whether the alert is still open (not yet repaired)."""
        return self.repaired_session is None


@dataclass(frozen=True, slots=True)
class Review:
    """A session at which the scheduler should open a case review, and why."""

    session: int
    reason: str


@dataclass(frozen=True, slots=True)
class AllianceEvaluation:
    """Signals per session, the alerts they opened and closed, and the case reviews they call for."""

    signals: list[list[Signal]]
    alerts: tuple[AllianceAlert, ...]
    reviews: tuple[Review, ...]

    @property
    def open_alert(self) -> AllianceAlert | None:
        """Return the alert still open after the last session, if any."""
        if self.alerts and self.alerts[-1].is_open:
            return self.alerts[-1]
        return None


@dataclass(frozen=True, slots=True)
class Deviation:
    """The numbers behind RUPTURE_DEV for one session (floats for people; `fires` is decided exactly)."""

    m: float
    sd: float
    s: float
    threshold: float
    z_raw: float | None
    fires: bool


@dataclass(frozen=True, slots=True)
class _Limits:
    """The settings as exact integers (units of 1/SCALE), precomputed once per evaluation."""

    sign: int
    k: float
    k_num2: int
    k_den2: int
    floor_num2: int
    sd_floor: float
    rc: int | None
    low: int | None
    low_operator: Callable[[int, int], bool]
    component: int
    gap: int

    @classmethod
    def of(cls, cfg: SignalSettings) -> _Limits:
        k = ratio(cfg.k)
        floor = units(cfg.sd_floor)
        return cls(
            sign=-1 if cfg.alliance_direction == "higher_worse" else 1,
            k=cfg.k,
            k_num2=k.numerator**2,
            k_den2=k.denominator**2,
            floor_num2=(k.numerator * floor) ** 2,
            sd_floor=cfg.sd_floor,
            rc=None if cfg.alliance_rc is None else units(cfg.alliance_rc),
            low=None if cfg.low_cutoff is None else units(cfg.low_cutoff),
            low_operator=_OPERATORS[cfg.low_cutoff_operator],
            component=units(cfg.component_threshold),
            gap=units(cfg.perspective_gap),
        )

    def deviates(self, count: int, total: int, squares: int, value: int) -> bool:
        """Return whether value <= m - k*s exactly, from the count, sum and sum of squares of earlier values.

        n(m - x) = D; fires when D > 0, k^2 var <= (D/n)^2 and k^2 floor^2 <= (D/n)^2 (s^2 is the larger of the
        two), each multiplied out to integers.
        """
        d = total - count * value
        if d <= 0:
            return False
        d2 = self.k_den2 * d * d
        if self.k_num2 * (count * squares - total * total) * count > d2 * (count - 1):
            return False
        return self.floor_num2 * count * count <= d2

    def is_low(self, value: int) -> bool:
        """Return whether a raw total (in units) is on the flagged side of the low cutoff."""
        assert self.low is not None
        return self.low_operator(value, self.low)


def _describe(limits: _Limits, count: int, total: int, squares: int, value: int, fires: bool) -> Deviation:
    """The deviation's numbers as floats for the evidence (in the instrument's own direction)."""
    sign = limits.sign
    mean = float(Fraction(total, count * SCALE))
    sd = _root(Fraction(max(count * squares - total * total, 0), count * (count - 1) * SCALE * SCALE))
    s = max(sd, limits.sd_floor)
    x = value / SCALE
    return Deviation(
        m=sign * mean,
        sd=sd,
        s=s,
        threshold=sign * (mean - limits.k * s),
        z_raw=(x - mean) / sd if sd > 0 else None,
        fires=fires,
    )


def _root(value: Fraction) -> float:
    """The square root, exact when value is the square of a rational (an SD of 4 shows as 4.0, not 3.9999...)."""
    top, bottom = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if top * top == value.numerator and bottom * bottom == value.denominator:
        return top / bottom
    return math.sqrt(value)


def evaluate_alliance(
    totals: Sequence[Score | None],
    *,
    items: Sequence[ItemScores | None] | None = None,
    tension: Sequence[Score | None] | None = None,
    therapist_totals: Sequence[Score | None] | None = None,
    settings: SignalSettings | None = None,
    components: Sequence[str] = PARTNERSHIP_COMPONENTS,
) -> AllianceEvaluation:
    """Run every alliance rule and the alert state machine over one client's sessions in order."""
    cfg = settings or DEFAULT_SETTINGS
    limits = _Limits.of(cfg)
    sign = limits.sign
    count = len(totals)
    clean_totals = [_score(value, f"totals[{i}]") for i, value in enumerate(totals)]
    clean_tension = _per_session(tension, count, "tension")
    clean_therapist = _per_session(therapist_totals, count, "therapist_totals")
    clean_items = _items(items, count, len(components))
    width = len(components)

    # Earlier observed totals: count, sum and sum of squares in signed units, the last one, and the raw values.
    seen = 0
    total_sum = 0
    square_sum = 0
    last_value = 0
    last_total = 0.0
    earlier: list[float] = []
    item_sums = [0] * width
    item_counts = [0] * width
    # The open alert: [opened_session, baseline numerator, baseline denominator (0: none), baseline float,
    # opening kinds, sessions since, unrepaired session, index in alerts].
    alert: list[Any] | None = None
    alerts: list[list[Any]] = []
    reviews: list[Review] = []
    out: list[list[Signal]] = []
    tension_threshold = cfg.tension_threshold
    deviation_history = cfg.deviation_min_history
    component_history = cfg.component_min_history
    repair_window = cfg.repair_window
    review_window = cfg.review_alert_window

    for index in range(count):
        session = index + 1
        total = clean_totals[index]
        found: dict[str, dict[str, Any]] = {}
        value = 0
        if total is not None:
            raw = units(total)
            value = sign * raw
            if seen >= deviation_history and limits.deviates(seen, total_sum, square_sum, value):
                dev = _describe(limits, seen, total_sum, square_sum, value, True)
                found[RUPTURE_DEV] = {
                    "score": total,
                    "m": dev.m,
                    "s": dev.s,
                    "sd": dev.sd,
                    "k": cfg.k,
                    "sd_floor": cfg.sd_floor,
                    "threshold": dev.threshold,
                    "earlier": list(earlier),
                }
            if seen >= 1 and limits.rc is not None and last_value - value >= limits.rc:
                found[RUPTURE_DROP] = {
                    "score": total,
                    "previous": last_total,
                    "drop": sign * (last_total - total),
                    "rc": cfg.alliance_rc,
                }
            if limits.low is not None and limits.is_low(raw):
                found[LOW_ALLIANCE] = {
                    "score": total,
                    "cutoff": cfg.low_cutoff,
                    "operator": cfg.low_cutoff_operator,
                }
        tension_answer = clean_tension[index]
        if tension_answer is not None and tension_answer >= tension_threshold:
            found[TENSION] = {"tension": tension_answer, "threshold": tension_threshold}
        session_items = clean_items[index]
        item_values: list[int | None] | None = None
        if session_items is not None:
            item_values = [None if v is None else sign * round(v * SCALE) for v in session_items]
            drops = []
            for j, item_value in enumerate(item_values):
                n = item_counts[j]
                if item_value is None or n < component_history:
                    continue
                if item_sums[j] - n * item_value >= n * limits.component:
                    mean = sign * item_sums[j] / n / SCALE
                    score = session_items[j]
                    assert score is not None
                    drops.append((-Fraction(item_sums[j] - n * item_value, n), j, mean, score))
            if drops:
                drops.sort()
                listed = [
                    {"component": components[j], "score": score, "mean": mean, "drop": sign * (mean - score)}
                    for _, j, mean, score in drops
                ]
                found[COMPONENT_DROP] = {**listed[0], "threshold": cfg.component_threshold, "components": listed}
        therapist_total = clean_therapist[index]
        if (
            therapist_total is not None
            and total is not None
            and sign * (units(therapist_total) - units(total)) >= limits.gap
        ):
            found[PERSPECTIVE_GAP] = {
                "therapist_total": therapist_total,
                "client_total": total,
                "gap": sign * (therapist_total - total),
                "threshold": cfg.perspective_gap,
            }

        if found or alert is not None:
            opening = tuple(kind for kind in ALLIANCE_KINDS if kind in found and kind in OPENING_KINDS)
            if alert is not None:
                alert[5] += 1
                for evidence in found.values():
                    evidence["alert"] = "added"
                    evidence["opened_session"] = alert[0]
                    evidence["baseline"] = alert[3]
                if total is not None and alert[2] and not opening and value * alert[2] >= alert[1]:
                    alerts[alert[7]][1] = session
                    found[REPAIRED] = {"score": total, "baseline": alert[3], "opened_session": alert[0]}
                    alert = None
                elif alert[5] == repair_window and alert[6] is None:
                    alert[6] = session
                    alerts[alert[7]][2] = session
                    found[UNREPAIRED] = {
                        "score": total,
                        "baseline": alert[3],
                        "opened_session": alert[0],
                        "sessions_open": alert[5],
                    }
                    reviews.append(Review(session, REVIEW_UNREPAIRED))
            elif opening:
                if seen >= 1:
                    numerator, denominator = total_sum, seen
                elif total is not None:
                    numerator, denominator = value, 1
                else:
                    numerator, denominator = 0, 0
                baseline = sign * float(Fraction(numerator, denominator * SCALE)) if denominator else None
                if alerts and session - alerts[-1][0].opened_session <= review_window:
                    reviews.append(Review(session, REVIEW_REPEAT_ALERT))
                record = AllianceAlert(session, baseline, opening)
                alert = [session, numerator, denominator, baseline, opening, 0, None, len(alerts)]
                alerts.append([record, None, None])
                for kind, evidence in found.items():
                    evidence["alert"] = "opened" if kind in OPENING_KINDS else "added"
                    evidence["opened_session"] = session
                    evidence["baseline"] = baseline
            out.append(
                [
                    Signal(kind=kind, session=session, evidence=evidence)
                    for kind, evidence in sorted(found.items(), key=lambda pair: _KIND_ORDER[pair[0]])
                ]
            )
        else:
            out.append([])

        if total is not None:
            seen += 1
            total_sum += value
            square_sum += value * value
            last_value = value
            last_total = total
            earlier.append(total)
        if item_values is not None:
            for j, item_value in enumerate(item_values):
                if item_value is not None:
                    item_sums[j] += item_value
                    item_counts[j] += 1
    frozen = tuple(
        AllianceAlert(
            opened_session=record.opened_session,
            baseline=record.baseline,
            opening_kinds=record.opening_kinds,
            repaired_session=repaired,
            unrepaired_session=unrepaired,
        )
        for record, repaired, unrepaired in alerts
    )
    return AllianceEvaluation(signals=out, alerts=frozen, reviews=tuple(reviews))


def alliance_signals(
    totals: Sequence[Score | None],
    *,
    items: Sequence[ItemScores | None] | None = None,
    tension: Sequence[Score | None] | None = None,
    therapist_totals: Sequence[Score | None] | None = None,
    settings: SignalSettings | None = None,
) -> list[list[Signal]]:
    """Return the alliance signals of each session (one list per session, session 1 first)."""
    return evaluate_alliance(
        totals, items=items, tension=tension, therapist_totals=therapist_totals, settings=settings
    ).signals


def alliance_alert_state(
    totals: Sequence[Score | None],
    *,
    items: Sequence[ItemScores | None] | None = None,
    tension: Sequence[Score | None] | None = None,
    therapist_totals: Sequence[Score | None] | None = None,
    settings: SignalSettings | None = None,
) -> AllianceAlert | None:
    """Return the alliance alert open after the last session (None when there is none)."""
    return evaluate_alliance(
        totals, items=items, tension=tension, therapist_totals=therapist_totals, settings=settings
    ).open_alert


def deviation_stats(earlier: Sequence[Score], current: Score, settings: SignalSettings | None = None) -> Deviation:
    """Return m, the raw and floored SD, the threshold and whether RUPTURE_DEV fires for `current`."""
    limits = _Limits.of(settings or DEFAULT_SETTINGS)
    if len(earlier) < 2:
        raise ValueError("the deviation rule needs at least two earlier totals")
    values = [limits.sign * units(float(value)) for value in earlier]
    total = sum(values)
    squares = sum(value * value for value in values)
    value = limits.sign * units(float(current))
    fires = limits.deviates(len(values), total, squares, value)
    return _describe(limits, len(values), total, squares, value, fires)


def repaired_against(total: float, earlier: Sequence[float], *, settings: SignalSettings | None = None) -> bool:
    """Return whether total is at or above the mean of the earlier totals, exactly (the REPAIRED comparison)."""
    if not earlier:
        raise ValueError("a baseline needs at least one earlier total")
    sign = _Limits.of(settings or DEFAULT_SETTINGS).sign
    return sign * units(total) * len(earlier) >= sum(sign * units(value) for value in earlier)


def silent_after_rupture(
    last_administration_at: datetime, now: datetime, settings: SignalSettings | None = None
) -> bool:
    """Return whether a client with an open alliance alert has had no administration for the silence window."""
    cfg = settings or DEFAULT_SETTINGS
    for name, moment in (("last_administration_at", last_administration_at), ("now", now)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    return now - last_administration_at >= timedelta(days=cfg.silence_days)


def _score(value: object, where: str) -> float | None:
    if value is None:
        return None
    kind = type(value)
    if (kind is float and math.isfinite(value)) or kind is int:  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} must be a number or None, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite (use None for a missing score), got {value!r}")
    return value


def _per_session(values: Sequence[Score | None] | None, count: int, name: str) -> list[float | None]:
    if values is None:
        return [None] * count
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} sessions but totals has {count}")
    return [_score(value, f"{name}[{i}]") for i, value in enumerate(values)]


def _items(values: Sequence[ItemScores | None] | None, count: int, width: int) -> list[list[float | None] | None]:
    if values is None:
        return [None] * count
    if len(values) != count:
        raise ValueError(f"items has {len(values)} sessions but totals has {count}")
    result: list[list[float | None] | None] = []
    for i, session_items in enumerate(values):
        if session_items is None:
            result.append(None)
            continue
        if len(session_items) != width:
            raise ValueError(f"items[{i}] has {len(session_items)} scores, expected {width}")
        result.append([_score(value, f"items[{i}][{j}]") for j, value in enumerate(session_items)])
    return result
