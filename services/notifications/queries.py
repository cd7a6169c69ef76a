"""Outbox reads: the messages page lists what was sent, how many attempts it took, and what nobody can know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.clients.queries import DEFAULT_PER_PAGE, Page
from services.notifications.models import Notification


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as the messages page shows it: no address of a client, no body (none is stored)."""

    id: int
    channel: str
    template: str
    to_client: bool
    status: str
    attempts: int
    unknown_attempts: int
    created_at: datetime
    sent_at: datetime | None
    message_id: str | None
    last_error: str | None

    @property
    def at_least_once(self) -> bool:
        """An earlier attempt's worker died mid-send: it may have been delivered too (the receiver sees one id)."""
        return self.unknown_attempts > 0 and self.status in ("sent", "sending", "pending")


def list_outbox(session: Session, *, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page[OutboxEntry]:
    """The newest outbox rows first, a page at a time."""
    total = int(session.scalar(select(func.count()).select_from(Notification)) or 0)
    rows = session.execute(
        select(
            Notification.id,
            Notification.channel,
            Notification.template,
            Notification.recipient_client_id,
            Notification.status,
            Notification.attempts,
            Notification.unknown_attempts,
            Notification.created_at,
            Notification.sent_at,
            Notification.message_id,
            Notification.last_error,
        )
        .order_by(Notification.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    items = [
        OutboxEntry(
            id=row.id,
            channel=row.channel,
            template=row.template,
            to_client=row.recipient_client_id is not None,
            status=row.status,
            attempts=row.attempts,
            unknown_attempts=row.unknown_attempts,
            created_at=row.created_at,
            sent_at=row.sent_at,
            message_id=row.message_id,
            last_error=row.last_error,
        )
        for row in rows
    ]
    return Page(items=items, total=total, page=page, per_page=per_page)


def count_sent_at_least_once(session: Session) -> int:
    """Messages re-sent after a worker died mid-send (the receiver may hold two copies with one id)."""
    return int(
        session.scalar(select(func.count()).select_from(Notification).where(Notification.unknown_attempts > 0)) or 0
    )
