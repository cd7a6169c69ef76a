"""Periodic-job bookkeeping and heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.db import utcnow
from services.ops.models import Heartbeat, JobRun


def claim_period(session: Session, *, job: str, period_key: str) -> JobRun | None:
    """Record that job runs for period_key; None when that period already ran (a second run is a no-op)."""
    run = JobRun(job=job, period_key=period_key)
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    return run


def finish_period(session: Session, run: JobRun, result: dict[str, Any]) -> None:
    """Store a periodic job's result."""
    run.finished_at = utcnow()
    run.result = result
    session.flush()


def beat(session: Session, *, name: str, role: str, detail: dict[str, Any] | None = None) -> None:
    """Record that a process is alive."""
    row = session.get(Heartbeat, name)
    if row is None:
        session.add(Heartbeat(name=name, role=role, at=utcnow(), detail=detail or {}))
    else:
        row.at = utcnow()
        row.detail = detail or {}
    session.flush()


def last_heartbeats(session: Session) -> list[Heartbeat]:
    """Every process's last heartbeat, newest first."""
    return list(session.scalars(select(Heartbeat).order_by(Heartbeat.at.desc())))


def minute_key(at: datetime) -> str:
    """A period key for once-a-minute jobs."""
    return at.strftime("%Y-%m-%dT%H:%M")
