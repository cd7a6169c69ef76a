"""Brief discussions (a session's feedback talked over with the client) and goal revisions (goals agreed together)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow


class BriefDiscussion(Base):
    """The clinician's record that a session's brief was discussed with the client (one per session)."""

    __tablename__ = "brief_discussions"
    __table_args__ = (
        UniqueConstraint("appointment_id"),
        Index("ix_brief_discussions_clinician_at", "clinician_id", "discussed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"))
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    discussed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The clinician's own note: staff-only, never shown on the view shared with the client.
    note: Mapped[str | None] = mapped_column(String(2000))


class GoalRevision(Base):
    """One version of an episode's goals as revised together with the client (the episode keeps the current ones)."""

    __tablename__ = "goal_revisions"
    __table_args__ = (UniqueConstraint("episode_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    version: Mapped[int]
    previous: Mapped[list[str]] = mapped_column(JSON, default=list)
    goals: Mapped[list[str]] = mapped_column(JSON, default=list)
    revised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
