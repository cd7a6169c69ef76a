"""Case review table."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.alerts.models import Alert
from services.clients.models import Episode
from services.db import Base, UTCDateTime, utcnow


class Review(Base):
    """A supervisor's look at a case, with an owner, a due date and an outcome."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_reviewer_due", "reviewer_id", "status", "due_at"),
        # The reminder pass reads open reviews by due time.
        Index("ix_reviews_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Natural key, e.g. "unrepaired:alert:12": makes opening a review idempotent.
    key: Mapped[str] = mapped_column(String(80), unique=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    # UNREPAIRED, SILENT_AFTER_RUPTURE, REPEATED_RUPTURE, RELIABLE_DETERIORATION, FOLLOW_UP
    reason: Mapped[str] = mapped_column(String(30))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # open, completed, cancelled
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(30))
    # {"trigger": what opened it (numbers, no free text)} and, once completed, the review form's answers.
    form: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    follow_up_on: Mapped[date | None] = mapped_column(Date)

    alert: Mapped[Alert | None] = relationship()
    episode: Mapped[Episode] = relationship()
