"""The outbox table. No message body is stored: it is rendered from the template when sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """One message to one recipient, claimed by a conditional status update; delivered at least once (see README)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index(
            "ix_notifications_pending",
            "created_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # email or sms
    channel: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(60))
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    recipient_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    # Ids and links only: never names, scores or instruments.
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # pending, sending, sent, failed, cancelled
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Makes writing the same notification twice a no-op (e.g. "alert:12:opened").
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The worker process (services.ops.liveness.process_name) that claimed it for sending.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    # Attempts whose outcome nobody knows: their worker died mid-send, after which the message may or may not have
    # reached the server; the next attempt sends it again (at least once, with the same Message-ID).
    unknown_attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(200))
