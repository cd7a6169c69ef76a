"""Periodic-job bookkeeping and heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.db import upsert_insert as _insert
from services.db import utcnow
from services.ops.models import Heartbeat, JobRun


def claim_period(session: Session, *, job: str, period_key: str) -> JobRun | None:
    """Record that job runs for period_key; None when that period already ran (a second run is a no-op).

    One INSERT ... ON CONFLICT DO NOTHING RETURNING: a concurrent claim of the same period waits for the first
    transaction and then finds the row taken, so exactly one run does the period's work.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        run = JobRun(job=job, period_key=period_key)
        try:
            with session.begin_nested():
                session.add(run)
        except IntegrityError:
            return None
        return run
    stmt = (
        _insert(session)(JobRun)
        .values(job=job, period_key=period_key, started_at=utcnow(), result={})
        .on_conflict_do_nothing(index_elements=[JobRun.job, JobRun.period_key])
        .returning(JobRun)
    )
    return session.scalars(stmt).one_or_none()


def relax_commit(session: Session) -> None:
    """Let this transaction's commit return before its WAL record is on disk (PostgreSQL; elsewhere a no-op).

    Only for bookkeeping that a crash may lose harmlessly, such as an idempotent re-drive's job_runs row: the worst
    case is that the period runs again. It saves the disk flush, which is most of a small write's commit time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def finish_period(session: Session, run: JobRun, result: dict[str, Any]) -> None:
    """Store a periodic job's result."""
    run.finished_at = utcnow()
    run.result = result
    session.flush()


def beat(session: Session, *, name: str, role: str, detail: dict[str, Any] | None = None) -> None:
    """Record that a process is alive (one upsert).

    A single write rather than read-then-write: on SQLite a transaction that read first cannot wait for the write
    lock, so a heartbeat that met another writer failed at once with "database is locked".
    """
    stmt = _insert(session)(Heartbeat).values(name=name, role=role, at=utcnow(), detail=detail or {})
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Heartbeat.name],
            set_={"role": stmt.excluded.role, "at": stmt.excluded.at, "detail": stmt.excluded.detail},
        )
    )


def last_heartbeats(session: Session) -> list[Heartbeat]:
    """Every process's last heartbeat, newest first."""
    return list(session.scalars(select(Heartbeat).order_by(Heartbeat.at.desc())))


def minute_key(at: datetime) -> str:
    """A period key for once-a-minute jobs."""
    return at.strftime("%Y-%m-%dT%H:%M")


def period_key(at: datetime, every: timedelta, tz: ZoneInfo) -> str:
    """The key of the period of length `every` that contains `at`: its start in the practice's zone, with offset.

    Periods are aligned on the Unix epoch, so every process (two beats, a worker computing its own key) puts a
    moment in the same period; the offset keeps the repeated hour of a DST change apart.
    """
    seconds = int(every.total_seconds())
    if seconds < 1:
        raise ValueError("a period must last at least one second")
    start = int(at.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(start, UTC).astimezone(tz).isoformat(timespec="seconds")


def prune_bookkeeping(session: Session, *, now: datetime, keep: timedelta) -> dict[str, int]:
    """Delete job runs and heartbeats older than keep (they are for the operations page, not an archive)."""
    runs = session.execute(delete(JobRun).where(JobRun.started_at < now - keep))
    beats = session.execute(delete(Heartbeat).where(Heartbeat.at < now - keep))
    return {
        "job_runs": int(getattr(runs, "rowcount", 0) or 0),
        "heartbeats": int(getattr(beats, "rowcount", 0) or 0),
    }
