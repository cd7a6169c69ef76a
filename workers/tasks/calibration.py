"""Calibration tasks: the monthly expected-recovery fit (the OFF_TRACK tier). Thin: services do the work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import shared_task

from services.calibration.operations import fit_all_outcome_instruments
from services.config import Settings
from services.db import Database, utcnow
from services.ops.operations import claim_period, finish_period
from services.reporting.periods import month_just_ended
from workers import runtime
from workers.tasks.base import IDEMPOTENT

FIT_JOB = "calibration.fit_expected_recovery"


def run_fit(
    *,
    period: str | None = None,
    database: Database | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Fit every outcome instrument with >= 300 closed episodes, once per month (a repeat is a no-op)."""
    settings = settings or runtime.settings()
    database = database or runtime.database()
    now = now or utcnow()
    period = period or month_just_ended(now, settings.tz)
    with database.unit_of_work() as session:
        run = claim_period(session, job=FIT_JOB, period_key=period)
        if run is None:
            return {"period": period, "already_ran": True}
        fitted = fit_all_outcome_instruments(session, period=period, now=now)
        result = {"period": period, "fitted": fitted}
        finish_period(session, run, result)
    return {**result, "already_ran": False}


@shared_task(name=FIT_JOB, soft_time_limit=600, time_limit=660, **IDEMPOTENT)
def fit_expected_recovery(period: str | None = None) -> dict[str, Any]:
    """The monthly refit of the expected-recovery model per outcome instrument."""
    return run_fit(period=period)
