"""Alliance rupture rules and the alert state machine (CLINICAL.md section 3), over plain per-session data.

Sessions are the positions of `totals` (session 1 first). A total of None is an incomplete administration: it
counts as a session (for the repair window) but never feeds a total-based rule, a mean or an SD.

Means and SDs are computed on differences from the client's first observed total, from running sums. That makes
every deviation-based decision exactly invariant to adding a constant to all scores (for integer or other
exactly representable scores), and lets the batch evaluator in `alliance_batch` reproduce it bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
    """The numbers behind RUPTURE_DEV for one session."""

    m: float
    sd: float
    s: float
    threshold: float
    z_raw: float | None
    fires: bool


@dataclass(slots=True)
class _Alert:
    opened_session: int
    baseline_d: float | None
    baseline: float | None
    opening_kinds: tuple[str, ...]
    sessions_since: int = 0
    repaired_session: int | None = None
    unrepaired_session: int | None = None

    def freeze(self) -> AllianceAlert:
        return AllianceAlert(
            opened_session=self.opened_session,
            baseline=self.baseline,
            opening_kinds=self.opening_kinds,
            repaired_session=self.repaired_session,
            unrepaired_session=self.unrepaired_session,
        )


@dataclass(slots=True)
class _History:
    reference: float | None = None
    count: int = 0
    sum_d: float = 0.0
    sum_d2: float = 0.0
    last_d: float = 0.0
    last_total: float = 0.0
    totals: list[float] = field(default_factory=list)

    def add(self, total: float, d: float) -> None:
        self.count += 1
        self.sum_d += d
        self.sum_d2 += d * d
        self.last_d = d
        self.last_total = total
        self.totals.append(total)


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
    count = len(totals)
    clean_totals = [_score(value, f"totals[{i}]") for i, value in enumerate(totals)]
    clean_tension = _per_session(tension, count, "tension")
    clean_therapist = _per_session(therapist_totals, count, "therapist_totals")
    clean_items = _items(items, count, len(components))

    history = _History()
    item_sums = [0.0] * len(components)
    item_counts = [0] * len(components)
    alert: _Alert | None = None
    alerts: list[_Alert] = []
    reviews: list[Review] = []
    out: list[list[Signal]] = []

    for index in range(count):
        session = index + 1
        total = clean_totals[index]
        found: dict[str, dict[str, Any]] = {}
        d = 0.0
        if total is not None:
            if history.reference is None:
                history.reference = total
            d = total - history.reference
            if history.count >= cfg.deviation_min_history:
                dev = _deviation(history.reference, history.count, history.sum_d, history.sum_d2, d, cfg)
                if dev.fires:
                    found[RUPTURE_DEV] = {
                        "score": total,
                        "m": dev.m,
                        "s": dev.s,
                        "sd": dev.sd,
                        "k": cfg.k,
                        "sd_floor": cfg.sd_floor,
                        "threshold": dev.threshold,
                        "earlier": list(history.totals),
                    }
            if history.count >= 1 and history.last_d - d >= cfg.alliance_rc:
                found[RUPTURE_DROP] = {
                    "score": total,
                    "previous": history.last_total,
                    "drop": history.last_total - total,
                    "rc": cfg.alliance_rc,
                }
            if _is_low(total, cfg):
                found[LOW_ALLIANCE] = {
                    "score": total,
                    "cutoff": cfg.low_cutoff,
                    "operator": cfg.low_cutoff_operator,
                }
        tension_answer = clean_tension[index]
        if tension_answer is not None and tension_answer >= cfg.tension_threshold:
            found[TENSION] = {"tension": tension_answer, "threshold": cfg.tension_threshold}
        session_items = clean_items[index]
        if session_items is not None:
            drops = []
            for j, value in enumerate(session_items):
                if value is None or item_counts[j] < cfg.component_min_history:
                    continue
                mean = item_sums[j] / item_counts[j]
                if mean - value >= cfg.component_threshold:
                    drops.append((-(mean - value), j, mean, value))
            if drops:
                drops.sort()
                listed = [
                    {"component": components[j], "score": value, "mean": mean, "drop": mean - value}
                    for _, j, mean, value in drops
                ]
                found[COMPONENT_DROP] = {**listed[0], "threshold": cfg.component_threshold, "components": listed}
        therapist_total = clean_therapist[index]
        if therapist_total is not None and total is not None:
            gap = therapist_total - total
            if gap >= cfg.perspective_gap:
                found[PERSPECTIVE_GAP] = {
                    "therapist_total": therapist_total,
                    "client_total": total,
                    "gap": gap,
                    "threshold": cfg.perspective_gap,
                }

        opening = tuple(kind for kind in ALLIANCE_KINDS if kind in found and kind in OPENING_KINDS)
        if alert is not None:
            alert.sessions_since += 1
            for evidence in found.values():
                evidence["alert"] = "added"
                evidence["opened_session"] = alert.opened_session
                evidence["baseline"] = alert.baseline
            if total is not None and alert.baseline_d is not None and not opening and d >= alert.baseline_d:
                alert.repaired_session = session
                found[REPAIRED] = {
                    "score": total,
                    "baseline": alert.baseline,
                    "opened_session": alert.opened_session,
                }
                alert = None
            elif alert.sessions_since == cfg.repair_window and alert.unrepaired_session is None:
                alert.unrepaired_session = session
                found[UNREPAIRED] = {
                    "score": total,
                    "baseline": alert.baseline,
                    "opened_session": alert.opened_session,
                    "sessions_open": alert.sessions_since,
                }
                reviews.append(Review(session, REVIEW_UNREPAIRED))
        elif opening:
            baseline_d: float | None
            if history.count >= 1:
                baseline_d = history.sum_d / history.count
            elif total is not None:
                baseline_d = 0.0
            else:
                baseline_d = None
            reference = history.reference
            baseline = None if baseline_d is None or reference is None else reference + baseline_d
            if alerts and session - alerts[-1].opened_session <= cfg.review_alert_window:
                reviews.append(Review(session, REVIEW_REPEAT_ALERT))
            alert = _Alert(session, baseline_d, baseline, opening)
            alerts.append(alert)
            for kind, evidence in found.items():
                evidence["alert"] = "opened" if kind in OPENING_KINDS else "added"
                evidence["opened_session"] = session
                evidence["baseline"] = baseline

        if total is not None:
            history.add(total, d)
        if session_items is not None:
            for j, value in enumerate(session_items):
                if value is not None:
                    item_sums[j] += value
                    item_counts[j] += 1
        out.append(
            [
                Signal(kind=kind, session=session, evidence=evidence)
                for kind, evidence in sorted(found.items(), key=lambda pair: _KIND_ORDER[pair[0]])
            ]
        )
    return AllianceEvaluation(signals=out, alerts=tuple(item.freeze() for item in alerts), reviews=tuple(reviews))


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
    cfg = settings or DEFAULT_SETTINGS
    if len(earlier) < 2:
        raise ValueError("the deviation rule needs at least two earlier totals")
    reference = float(earlier[0])
    sum_d = 0.0
    sum_d2 = 0.0
    for value in earlier:
        d = float(value) - reference
        sum_d += d
        sum_d2 += d * d
    return _deviation(reference, len(earlier), sum_d, sum_d2, float(current) - reference, cfg)


def silent_after_rupture(
    last_administration_at: datetime, now: datetime, settings: SignalSettings | None = None
) -> bool:
    """Return whether a client with an open alliance alert has had no administration for the silence window."""
    cfg = settings or DEFAULT_SETTINGS
    for name, moment in (("last_administration_at", last_administration_at), ("now", now)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    return now - last_administration_at >= timedelta(days=cfg.silence_days)


def _deviation(reference: float, count: int, sum_d: float, sum_d2: float, d: float, cfg: SignalSettings) -> Deviation:
    # The batch evaluator repeats these exact operations in this exact order; keep them in step.
    mean_d = sum_d / count
    variance = (count * sum_d2 - sum_d * sum_d) / (count * (count - 1))
    sd = math.sqrt(max(variance, 0.0))
    s = max(sd, cfg.sd_floor)
    threshold_d = mean_d - cfg.k * s
    return Deviation(
        m=reference + mean_d,
        sd=sd,
        s=s,
        threshold=reference + threshold_d,
        z_raw=(d - mean_d) / sd if sd > 0 else None,
        fires=d <= threshold_d,
    )


def _is_low(total: float, cfg: SignalSettings) -> bool:
    if cfg.low_cutoff_operator == "<":
        return total < cfg.low_cutoff
    return total <= cfg.low_cutoff


def _score(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} must be a number or None, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite (use None for a missing score), got {value!r}")
    return float(value)


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
