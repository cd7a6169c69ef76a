"""Outbox verbs: queue a notification in the caller's transaction; claim, complete or fail it when sending."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.db import utcnow
from services.notifications.models import Notification
from services.notifications.templates import TEMPLATES, TemplateError
from services.ops.liveness import claim_takeable, take_claim

CHANNELS = frozenset({"email", "sms"})
# A send runs inside a task that Celery kills at its hard time limit, so a claim older than that limit plus this
# margin belongs to a worker that died or was killed mid-send (sooner, when its process's heartbeat went quiet).
CLAIM_MARGIN = timedelta(seconds=30)


def stale_claim_after(task_time_limit: int) -> timedelta:
    """How old a "sending" claim must be to be re-driven: the send task's hard time limit plus CLAIM_MARGIN."""
    return timedelta(seconds=task_time_limit) + CLAIM_MARGIN


# The default, for the default task_time_limit of 90 s (settings pass their own through stale_claim_after).
STALE_CLAIM = stale_claim_after(90)


def queue_notification(
    session: Session,
    *,
    channel: str,
    template: str,
    to_address: str,
    recipient_user_id: int | None = None,
    recipient_client_id: int | None = None,
    context: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """Write a pending notification (the outbox row); a repeat with the same dedupe_key returns the first."""
    if channel not in CHANNELS:
        raise ValueError(f"Unknown channel {channel!r}")
    if template not in TEMPLATES:
        raise TemplateError(f"Unknown message template {template!r}")
    if not to_address:
        raise ValueError("A notification needs an address")
    if dedupe_key is not None:
        existing = session.scalar(select(Notification).where(Notification.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    row = Notification(
        channel=channel,
        template=template,
        to_address=to_address,
        recipient_user_id=recipient_user_id,
        recipient_client_id=recipient_client_id,
        context=context or {},
        dedupe_key=dedupe_key,
        status="pending",
    )
    if dedupe_key is None:
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another transaction wrote the same notification first: use theirs.
        found = session.scalar(select(Notification).where(Notification.dedupe_key == dedupe_key))
        if found is None:
            raise
        return found
    return row


def stale_sending(
    now: datetime, stale_after: timedelta = STALE_CLAIM, *, dead_claimer: str | None = None, taker: str | None = None
) -> ColumnElement[bool]:
    """Being sent, and its claim may be taken again (services.ops.liveness.claim_takeable)."""
    return (Notification.status == "sending") & claim_takeable(
        Notification.claimed_by,
        Notification.claimed_at,
        now=now,
        stale_after=stale_after,
        dead_claimer=dead_claimer,
        taker=taker,
    )


def claim_notification(
    session: Session,
    notification_id: int,
    *,
    now: datetime | None = None,
    stale_after: timedelta = STALE_CLAIM,
    claimed_by: str | None = None,
) -> bool:
    """Atomically move a pending (or stale sending) notification to sending for claimed_by; False if someone has it.

    Taking over a "sending" claim means the attempt before died mid-send, its outcome unknown: it is counted in
    unknown_attempts, and the outbox says "sent at least once" from then on.
    """
    now = now or utcnow()

    def claim(dead_claimer: str | None) -> Update:
        return (
            update(Notification)
            .where(
                Notification.id == notification_id,
                or_(
                    Notification.status == "pending",
                    stale_sending(now, stale_after, dead_claimer=dead_claimer, taker=claimed_by),
                ),
            )
            .values(
                status="sending",
                claimed_at=now,
                claimed_by=claimed_by,
                attempts=Notification.attempts + 1,
                unknown_attempts=case(
                    (Notification.status == "sending", Notification.unknown_attempts + 1),
                    else_=Notification.unknown_attempts,
                ),
            )
            .execution_options(synchronize_session=False)
        )

    holder = select(Notification.claimed_by).where(Notification.id == notification_id, Notification.status == "sending")
    return take_claim(session, claim, holder)


def mark_sent(session: Session, notification_id: int, *, message_id: str) -> None:
    """Record a successful delivery."""
    session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "sending")
        .values(status="sent", sent_at=utcnow(), message_id=message_id[:200], last_error=None)
        .execution_options(synchronize_session=False)
    )


def mark_attempt_failed(session: Session, notification_id: int, *, error: str, retry: bool, max_attempts: int) -> str:
    """Put a failed notification back to pending for a retry, or mark it failed for good; returns the status."""
    row = session.get(Notification, notification_id)
    if row is None:
        return "missing"
    row.last_error = error[:500]
    row.status = "pending" if retry and row.attempts < max_attempts else "failed"
    session.flush()
    return row.status


def cancel_notification(session: Session, notification_id: int) -> bool:
    """Cancel a notification that has not been sent yet."""
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "pending")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
