"""Reads for the operations page and the health checks: what is waiting, since when, what failed and why, and
whether the worker and the beat are alive.

Every query reads an index range (the partial indexes over pending and failed rows, job_runs' unique key per job),
so the page costs the same on a practice with millions of administrations as on the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.db import utcnow
from services.notifications.models import Notification
from services.ops.models import Heartbeat, JobRun
from services.reporting.models import Report
from services.reviews.models import Review
from services.surveys.models import Administration, Invitation

WORKER = "worker"
BEAT = "beat"
BEAT_STANDBY = "beat-standby"
# A worker is healthy with a heartbeat this recent (the heartbeat job runs every 30 s).
WORKER_FRESH = timedelta(seconds=90)
# The beat writes its heartbeat at least every 15 s while it ticks.
BEAT_FRESH = timedelta(seconds=60)
FAILURES_SHOWN = 20


@dataclass(frozen=True)
class Pending:
    """One kind of waiting work: how many (up to a cap) and since when."""

    kind: str
    count: int
    capped: bool
    oldest_at: datetime | None


@dataclass(frozen=True)
class Failure:
    """Something given up on, with its reason."""

    kind: str
    item_id: int
    at: datetime | None
    reason: str


@dataclass(frozen=True)
class JobStatus:
    """A periodic job's latest run."""

    job: str
    period_key: str
    started_at: datetime
    finished_at: datetime | None
    result: dict[str, object]


@dataclass(frozen=True)
class OperationsView:
    """Everything the operations page shows except the broker's queue depth (a worker-side concern)."""

    pending: list[Pending]
    failed: dict[str, int]
    failures: list[Failure]
    jobs: list[JobStatus]
    heartbeats: list[Heartbeat]
    beat_leader: Heartbeat | None
    overdue_reviews: int


COUNT_CAP = 10_000


def _pending(
    session: Session, kind: str, id_column: InstrumentedAttribute[int], oldest: InstrumentedAttribute[Any], *where: Any
) -> Pending:
    # Count at most COUNT_CAP rows (through the same partial index) so a backlog cannot make the page slow.
    capped = select(id_column).where(*where).limit(COUNT_CAP + 1).subquery()
    count = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    oldest_at = session.scalar(select(func.min(oldest)).where(*where))
    return Pending(kind=kind, count=min(count, COUNT_CAP), capped=count > COUNT_CAP, oldest_at=oldest_at)


def pending_work(session: Session, *, now: datetime | None = None) -> list[Pending]:
    """Waiting work of each kind with its oldest item (evaluations, messages, invitations due, reports)."""
    now = now or utcnow()
    return [
        _pending(
            session,
            "evaluations",
            Administration.id,
            Administration.completed_at,
            Administration.evaluated_at.is_(None),
            Administration.eval_failed_at.is_(None),
        ),
        _pending(
            session,
            "messages",
            Notification.id,
            Notification.created_at,
            Notification.status.in_(("pending", "sending")),
        ),
        _pending(
            session,
            "invitations",
            Invitation.id,
            Invitation.due_at,
            Invitation.status == "scheduled",
            Invitation.due_at <= now,
            Invitation.channel.in_(("email", "sms")),
        ),
        _pending(session, "reports", Report.id, Report.updated_at, Report.status.in_(("pending", "running"))),
    ]


def _capped_count(session: Session, id_column: InstrumentedAttribute[int], *where: Any) -> int:
    capped = select(id_column).where(*where).limit(COUNT_CAP).subquery()
    return int(session.scalar(select(func.count()).select_from(capped)) or 0)


def failure_counts(session: Session) -> dict[str, int]:
    """How many items of each kind were given up on (each count capped at COUNT_CAP; partial indexes)."""
    return {
        "evaluations": _capped_count(session, Administration.id, Administration.eval_failed_at.is_not(None)),
        "messages": _capped_count(session, Notification.id, Notification.status == "failed"),
        "invitations": _capped_count(session, Invitation.id, Invitation.status == "failed"),
        "reports": _capped_count(session, Report.id, Report.status == "failed"),
    }


def recent_failures(session: Session, *, limit: int = FAILURES_SHOWN) -> list[Failure]:
    """The newest failures of each kind, with the reason stored on the row."""
    failures: list[Failure] = []
    for admin_id, at, error in session.execute(
        select(Administration.id, Administration.eval_failed_at, Administration.last_error)
        .where(Administration.eval_failed_at.is_not(None))
        .order_by(Administration.eval_failed_at.desc())
        .limit(limit)
    ):
        failures.append(Failure("evaluation", admin_id, at, error or "no reason recorded"))
    for note_id, at, error in session.execute(
        select(Notification.id, Notification.created_at, Notification.last_error)
        .where(Notification.status == "failed")
        .order_by(Notification.created_at.desc())
        .limit(limit)
    ):
        failures.append(Failure("message", note_id, at, error or "no reason recorded"))
    for invitation_id, at, error in session.execute(
        select(Invitation.id, Invitation.due_at, Invitation.last_error)
        .where(Invitation.status == "failed")
        .order_by(Invitation.due_at.desc())
        .limit(limit)
    ):
        failures.append(Failure("invitation", invitation_id, at, error or "no reason recorded"))
    for report_id, at, error in session.execute(
        select(Report.id, Report.updated_at, Report.error)
        .where(Report.status == "failed")
        .order_by(Report.updated_at.desc())
        .limit(limit)
    ):
        failures.append(Failure("report", report_id, at, error or "no reason recorded"))
    failures.sort(key=lambda item: item.at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return failures[:limit]


def latest_job_runs(session: Session, jobs: Sequence[str]) -> list[JobStatus]:
    """The latest run of each named periodic job (one index read per job on job_runs' unique key)."""
    out = []
    for job in jobs:
        run = session.scalar(select(JobRun).where(JobRun.job == job).order_by(JobRun.period_key.desc()).limit(1))
        if run is not None:
            out.append(JobStatus(job, run.period_key, run.started_at, run.finished_at, dict(run.result)))
    return out


def heartbeats(session: Session) -> list[Heartbeat]:
    """Every process's heartbeat: beats first, then workers, newest first."""
    return list(session.scalars(select(Heartbeat).order_by(Heartbeat.role, Heartbeat.at.desc())))


def beat_leader(session: Session) -> Heartbeat | None:
    """The heartbeat of the beat that holds the lock (the newest, should two have held it in turn)."""
    return session.scalar(select(Heartbeat).where(Heartbeat.role == BEAT).order_by(Heartbeat.at.desc()).limit(1))


def operations_view(session: Session, *, jobs: Sequence[str], now: datetime | None = None) -> OperationsView:
    """What the operations page shows (apart from the queue depth)."""
    now = now or utcnow()
    overdue = session.scalar(select(func.count(Review.id)).where(Review.status == "open", Review.due_at <= now))
    return OperationsView(
        pending=pending_work(session, now=now),
        failed=failure_counts(session),
        failures=recent_failures(session),
        jobs=latest_job_runs(session, jobs),
        heartbeats=heartbeats(session),
        beat_leader=beat_leader(session),
        overdue_reviews=int(overdue or 0),
    )


@dataclass(frozen=True)
class Health:
    """A health verdict with the reason, for `rapport health` and monitoring."""

    ok: bool
    detail: str


def worker_health(session: Session, *, now: datetime | None = None, fresh: timedelta = WORKER_FRESH) -> Health:
    """Healthy when some worker consumed the heartbeat job recently."""
    now = now or utcnow()
    latest = session.scalar(select(Heartbeat).where(Heartbeat.role == WORKER).order_by(Heartbeat.at.desc()).limit(1))
    if latest is None:
        return Health(False, "no worker has recorded a heartbeat")
    age = now - latest.at
    if age > fresh:
        return Health(False, f"the last worker heartbeat ({latest.name}) is {int(age.total_seconds())} s old")
    return Health(True, f"{latest.name} consumed a heartbeat {int(age.total_seconds())} s ago")


def beat_health(session: Session, *, now: datetime | None = None, fresh: timedelta = BEAT_FRESH) -> Health:
    """Healthy when the beat holding the lock ticked recently."""
    now = now or utcnow()
    leader = beat_leader(session)
    if leader is None:
        return Health(False, "no beat holds the lock (none has ticked as the leader)")
    age = now - leader.at
    if age > fresh:
        return Health(False, f"the beat holding the lock ({leader.name}) last ticked {int(age.total_seconds())} s ago")
    return Health(True, f"{leader.name} ticked {int(age.total_seconds())} s ago")
