"""Plain data from stored administrations, for the rules and the evidence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from services.alerts.models import Alert
from services.alerts.run import EvaluationRun
from services.measures import Instrument, all_instruments
from services.signals import SignalSettings, repaired_against
from services.surveys.models import Administration

# Keys the pure engine adds to evidence from its own view of the alert; replaced with the stored alert's view.
STATE_KEYS = ("alert", "opened_session", "baseline_of")


def score_of(row: Administration) -> float | None:
    # Incomplete administrations count as sessions without a score (the rules' convention for None).
    if not row.complete or row.total is None:
        return None
    return float(row.total)


def number_of(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def component_of(row: Administration, name: str) -> float | None:
    components = (row.scores or {}).get("components") or {}
    return number_of(components.get(name)) if isinstance(components, Mapping) else None


def without_state(evidence: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in evidence.items() if key not in STATE_KEYS}


def therapist_totals_of(
    run: EvaluationRun, instrument: Instrument, prefix: Sequence[Administration]
) -> list[float | None] | None:
    appointments = {row.appointment_id for row in prefix if row.appointment_id is not None}
    if not appointments or not instrument.components:
        return None
    codes = [
        candidate.code
        for candidate in all_instruments()
        if candidate.kind == "therapist_alliance" and candidate.components == instrument.components
    ]
    if not codes:
        return None
    episode_id = prefix[0].episode_id
    rows: Iterable[tuple[int | None, float | None]]
    if episode_id in run.preloaded:
        # Every administration of the episode is in the series cache: no query.
        rows = [
            (row.appointment_id, row.total)
            for row in sorted(
                (
                    row
                    for code in codes
                    for row in run.series_cache.get((episode_id, code), ())
                    if row.appointment_id in appointments and row.complete and row.total is not None
                ),
                key=lambda row: (row.completed_at, row.id),
            )
        ]
    else:
        rows = run.session.execute(
            select(Administration.appointment_id, Administration.total)
            .where(
                Administration.episode_id == episode_id,
                Administration.instrument_code.in_(codes),
                Administration.appointment_id.in_(appointments),
                Administration.complete.is_(True),
                Administration.total.is_not(None),
            )
            .order_by(Administration.completed_at, Administration.id)
        ).all()
    latest: dict[int, float] = {}
    for appointment_id, total in rows:
        if appointment_id is not None and total is not None:
            latest[appointment_id] = float(total)
    if not latest:
        return None
    return [latest.get(row.appointment_id) if row.appointment_id is not None else None for row in prefix]


def baseline_of(series: Sequence[Administration], index: int) -> float | None:
    """The mean of the earlier totals (the current total with none), computed as the pure engine does."""
    earlier = [total for total in (score_of(row) for row in series[:index]) if total is not None]
    if not earlier:
        return score_of(series[index])
    reference = earlier[0]
    sum_d = 0.0
    for total in earlier:
        sum_d += total - reference
    return reference + sum_d / len(earlier)


def largest_drop_of(instrument: Instrument, prefix: Sequence[Administration], index: int) -> dict[str, Any]:
    """The component that fell most since the previous session with component scores (for the summary line)."""
    names = instrument.components
    if not names:
        return {}
    current = [component_of(prefix[index], name) for name in names]
    previous = next(
        (
            values
            for values in ([component_of(row, name) for name in names] for row in reversed(prefix[:index]))
            if any(value is not None for value in values)
        ),
        None,
    )
    if previous is None:
        return {}
    best: tuple[float, str, float, float] | None = None
    for name, before, now in zip(names, previous, current, strict=True):
        if before is None or now is None or before - now <= 0:
            continue
        if best is None or before - now > best[0]:
            best = (before - now, name, before, now)
    if best is None:
        return {}
    drop, name, before, now = best
    return {"largest_drop": {"component": name, "from": before, "to": now, "drop": drop}}


def reaches_baseline(series: Sequence[Administration], alert: Alert, total: float, settings: SignalSettings) -> bool:
    """Whether total is at or above the alert's baseline, decided exactly against the totals it is the mean of."""
    opened = alert.opened_session
    if opened is not None and 1 <= opened <= len(series):
        earlier = [value for value in (score_of(row) for row in series[: opened - 1]) if value is not None]
        if not earlier:
            at_opening = score_of(series[opened - 1])
            earlier = [] if at_opening is None else [at_opening]
        if earlier:
            return repaired_against(total, earlier, settings=settings)
    assert alert.baseline is not None
    return repaired_against(total, [alert.baseline], settings=settings)
