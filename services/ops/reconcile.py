"""Find work the database says is still pending, so it can be enqueued again (lost messages, crashes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.alerts.operations import give_up_evaluations
from services.db import utcnow
from services.notifications.models import Notification
from services.notifications.operations import STALE_CLAIM
from services.surveys.models import Administration

BATCH = 500


@dataclass
class PendingWork:
    """Ids of rows whose work should be (re-)enqueued, by kind."""

    notifications: list[int] = field(default_factory=list)
    administrations: list[int] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many items are to be re-driven."""
        return len(self.notifications) + len(self.administrations)


def find_pending(session: Session, *, grace: timedelta, max_attempts: int, now: datetime | None = None) -> PendingWork:
    """Collect pending work older than grace, and mark failed what used up its attempts (never retried forever)."""
    # Fresh rows are normally enqueued by their own after-commit hook; grace leaves them to it.
    now = now or utcnow()
    work = PendingWork()
    exhausted = session.execute(
        update(Notification)
        .where(
            Notification.status.in_(("pending", "sending")),
            Notification.attempts >= max_attempts,
            Notification.created_at < now - grace,
        )
        .values(status="failed", last_error="gave up after repeated failures")
        .execution_options(synchronize_session=False)
    )
    if exhausted.rowcount:  # type: ignore[attr-defined]
        work.failed["notifications"] = int(exhausted.rowcount)  # type: ignore[attr-defined]
    work.notifications = list(
        session.scalars(
            select(Notification.id)
            .where(
                ((Notification.status == "pending") & (Notification.created_at < now - grace))
                | ((Notification.status == "sending") & (Notification.claimed_at < now - STALE_CLAIM))
            )
            .order_by(Notification.created_at)
            .limit(BATCH)
        )
    )
    given_up = give_up_evaluations(session, max_attempts=max_attempts, older_than=now - grace, now=now)
    if given_up:
        work.failed["administrations"] = given_up
    # Same predicate as the partial index ix_administrations_unevaluated, so the pass stays cheap at any size.
    work.administrations = list(
        session.scalars(
            select(Administration.id)
            .where(
                Administration.evaluated_at.is_(None),
                Administration.eval_failed_at.is_(None),
                Administration.completed_at < now - grace,
            )
            .order_by(Administration.completed_at)
            .limit(BATCH)
        )
    )
    return work
