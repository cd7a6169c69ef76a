"""Find work the database says is still pending, so it can be enqueued again (lost messages, crashes).

Each kind of work has a row that says it is not done yet, and a bound on how often it is tried:

- alert evaluations: administrations.evaluated_at IS NULL and not claimed by a live worker process; given up
  (eval_failed_at) after max_attempts attempts;
- outbox messages: notifications pending, or sending for a process whose heartbeat went quiet (or past the send
  task's hard time limit); failed after max_attempts attempts;
- invitations due and not sent: invitations scheduled with due_at passed; the dispatch pass claims each one, and an
  invitation nobody could send expires;
- monthly reports: reports pending, or running for a process whose heartbeat went quiet (services.ops.liveness) or
  past the task's hard time limit; failed after the reporting MAX_ATTEMPTS.

Every query here is a range of a partial or leading-column index (ix_administrations_unevaluated,
ix_notifications_pending, ix_invitations_status_due; reports is one row per scope and month), so a pass reads only
what is pending: a few index pages whether the tables hold a thousand rows or millions (tests/benchmarks/
bench_reconcile.py). Fresh rows are left to their own after-commit enqueue for `grace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.alerts.operations import STALE_EVALUATION, evaluation_claim_free, give_up_evaluations
from services.db import utcnow
from services.notifications.models import Notification
from services.notifications.operations import STALE_CLAIM, stale_sending
from services.reporting.models import Report
from services.reporting.operations import MAX_ATTEMPTS as REPORT_ATTEMPTS
from services.reporting.operations import STALE_RUNNING, stale_running
from services.surveys.models import Administration, Invitation

BATCH = 500
MESSAGE_CHANNELS = ("email", "sms")


@dataclass
class PendingWork:
    """Ids of rows whose work should be (re-)enqueued, by kind."""

    notifications: list[int] = field(default_factory=list)
    administrations: list[int] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)
    # Invitations are sent by the dispatch pass, not one by one: True when that pass should run again now.
    invitations_due: bool = False
    failed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many items are to be re-driven."""
        return len(self.notifications) + len(self.administrations) + len(self.reports) + int(self.invitations_due)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def find_pending(
    session: Session,
    *,
    grace: timedelta,
    max_attempts: int,
    now: datetime | None = None,
    stale_claim: timedelta = STALE_CLAIM,
    stale_report: timedelta = STALE_RUNNING,
    stale_evaluation: timedelta = STALE_EVALUATION,
) -> PendingWork:
    """Collect pending work older than grace, and mark failed what used up its attempts (never retried forever).

    One SELECT per kind over its partial index; an UPDATE only when something has used up its attempts. With
    nothing pending, a pass is four index probes that find nothing.
    """
    now = now or utcnow()
    work = PendingWork()

    notifications = session.execute(
        select(Notification.id, Notification.attempts)
        .where(
            ((Notification.status == "pending") & (Notification.created_at < now - grace))
            | stale_sending(now, stale_claim)
        )
        .order_by(Notification.created_at)
        .limit(BATCH)
    ).all()
    exhausted = [row.id for row in notifications if row.attempts >= max_attempts]
    if exhausted:
        failed = session.execute(
            update(Notification)
            .where(Notification.id.in_(exhausted), Notification.status.in_(("pending", "sending")))
            .values(status="failed", last_error="gave up after repeated failures")
            .execution_options(synchronize_session=False)
        )
        work.failed["notifications"] = _count(failed)
    work.notifications = [row.id for row in notifications if row.attempts < max_attempts]

    # Same predicate as the partial index ix_administrations_unevaluated, so the pass stays cheap at any size.
    administrations = session.execute(
        select(Administration.id, Administration.eval_attempts)
        .where(
            Administration.evaluated_at.is_(None),
            Administration.eval_failed_at.is_(None),
            Administration.completed_at < now - grace,
            evaluation_claim_free(now, stale_evaluation),
        )
        .order_by(Administration.completed_at)
        .limit(BATCH)
    ).all()
    if any(row.eval_attempts >= max_attempts for row in administrations):
        given_up = give_up_evaluations(session, max_attempts=max_attempts, older_than=now - grace, now=now)
        if given_up:
            work.failed["administrations"] = given_up
    work.administrations = [row.id for row in administrations if row.eval_attempts < max_attempts]

    # A range of ix_invitations_status_due: is any message invitation overdue for the dispatch pass? (Ordered by
    # due_at so the planner walks the index range rather than hoping a sequential scan finds one early.)
    work.invitations_due = (
        session.scalar(
            select(Invitation.id)
            .where(
                Invitation.status == "scheduled",
                Invitation.due_at < now - grace,
                Invitation.expires_at > now,
                Invitation.channel.in_(MESSAGE_CHANNELS),
            )
            .order_by(Invitation.due_at)
            .limit(1)
        )
        is not None
    )

    # ix_reports_pending: reports waiting past their own enqueue, or running for a worker process whose heartbeat
    # has gone quiet (or, with no heartbeat to go by, untouched past the task's hard time limit plus a margin).
    reports = session.execute(
        select(Report.id, Report.attempts)
        .where(
            Report.status.in_(("pending", "running")),
            or_((Report.status == "pending") & (Report.updated_at < now - grace), stale_running(now, stale_report)),
        )
        .order_by(Report.updated_at)
        .limit(BATCH)
    ).all()
    exhausted = [row.id for row in reports if row.attempts >= REPORT_ATTEMPTS]
    if exhausted:
        failed = session.execute(
            update(Report)
            .where(Report.id.in_(exhausted), Report.status.in_(("pending", "running")))
            .values(status="failed", error="gave up after repeated attempts", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        work.failed["reports"] = _count(failed)
    work.reports = [row.id for row in reports if row.attempts < REPORT_ATTEMPTS]
    return work
