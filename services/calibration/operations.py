"""Fitting the expected-recovery model (OFF_TRACK, CLINICAL.md section 4) on the practice's closed episodes.

Once an instrument has at least 300 closed episodes (the rules' `off_track_min_episodes`), the monthly task fits
y = b0 + b1 y0 + (b2 + b3 y0) ln(t + 1) by least squares (`services.signals.fit_expected_trajectory`) and stores
the coefficients, the prediction SD, the sample size, the date and R^2 as that month's row. Evaluation and the
charts use the newest fit per instrument; before the first one the rational NOT_ON_TRACK tier applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.audit.operations import record_event
from services.calibration.models import TrajectoryFit
from services.clients.models import Episode
from services.db import utcnow
from services.measures import all_instruments
from services.signals import DEFAULT_SETTINGS, InsufficientEpisodesError, TrajectoryModel, fit_expected_trajectory
from services.surveys.models import Administration


def closed_episode_series(session: Session, instrument_code: str) -> list[list[float | None]]:
    """Each closed episode's scores on the instrument in order (None: an incomplete administration)."""
    rows = session.execute(
        select(Administration.episode_id, Administration.complete, Administration.total)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(Episode.ended_on.is_not(None), Administration.instrument_code == instrument_code)
        .order_by(Administration.episode_id, Administration.completed_at, Administration.id)
    )
    series: dict[int, list[float | None]] = {}
    for episode_id, complete, total in rows:
        series.setdefault(episode_id, []).append(float(total) if complete and total is not None else None)
    # An episode's first score is its y0: leading incomplete administrations are not part of the curve.
    result = []
    for scores in series.values():
        while scores and scores[0] is None:
            scores.pop(0)
        if scores:
            result.append(scores)
    return result


def fit_expected_recovery(
    session: Session,
    *,
    instrument_code: str,
    period: str,
    now: datetime | None = None,
    min_episodes: int | None = None,
    episodes: Sequence[Sequence[float | None]] | None = None,
    reference: str | None = None,
) -> TrajectoryFit | None:
    """Fit and store the month's model for one instrument (None: too few closed episodes); a repeat is a no-op.

    `episodes` and `reference` are for a labelled reference cohort (the demo's); otherwise the practice's own
    closed episodes are read.
    """
    existing = session.scalar(
        select(TrajectoryFit).where(TrajectoryFit.instrument_code == instrument_code, TrajectoryFit.period == period)
    )
    if existing is not None:
        return existing
    data = closed_episode_series(session, instrument_code) if episodes is None else episodes
    needed = DEFAULT_SETTINGS.off_track_min_episodes if min_episodes is None else min_episodes
    try:
        model = fit_expected_trajectory(data, min_episodes=needed, instrument=instrument_code)
    except InsufficientEpisodesError:
        return None
    row = TrajectoryFit(
        instrument_code=instrument_code,
        period=period,
        b0=model.b0,
        b1=model.b1,
        b2=model.b2,
        b3=model.b3,
        sigma_pred=model.sigma_pred,
        n_episodes=model.n_episodes,
        n_observations=model.n_observations,
        r_squared=model.r_squared,
        reference=reference,
        fitted_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        action="trajectory_fitted",
        actor_id=None,
        subject_type="trajectory_fit",
        subject_id=row.id,
        detail={"instrument": instrument_code, "period": period, "episodes": model.n_episodes, "reference": reference},
    )
    return row


def fit_all_outcome_instruments(session: Session, *, period: str, now: datetime | None = None) -> dict[str, int]:
    """Fit every outcome instrument with enough closed episodes; returns the stored fit's id per instrument."""
    fitted = {}
    for instrument in all_instruments():
        if instrument.kind != "outcome":
            continue
        row = fit_expected_recovery(session, instrument_code=instrument.code, period=period, now=now)
        if row is not None:
            fitted[instrument.code] = row.id
    return fitted


def current_models(session: Session) -> dict[str, TrajectoryModel]:
    """The newest fit per instrument, as the rules' models."""
    newest = (
        select(TrajectoryFit.instrument_code, func.max(TrajectoryFit.id).label("id"))
        .group_by(TrajectoryFit.instrument_code)
        .subquery()
    )
    rows = session.scalars(select(TrajectoryFit).join(newest, TrajectoryFit.id == newest.c.id))
    return {row.instrument_code: row.model() for row in rows}
