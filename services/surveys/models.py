"""Survey tables: protocols, invitations, administrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.clients.models import Appointment, Episode
from services.db import Base, UTCDateTime, utcnow


class Protocol(Base):
    """Which instruments a client answers before and after a session."""

    __tablename__ = "protocols"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    pre_session: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_session: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_default: Mapped[bool] = mapped_column(default=False)


class Invitation(Base):
    """A request to answer some instruments, reached through token links (InvitationToken); submitted once."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("appointment_id", "phase"),
        Index("ix_invitations_status_due", "status", "due_at"),
        Index("ix_invitations_episode", "episode_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    # pre, post or adhoc
    phase: Mapped[str] = mapped_column(String(8), default="adhoc")
    instruments: Mapped[list[str]] = mapped_column(JSON, default=list)
    # email, sms, kiosk, link
    channel: Mapped[str] = mapped_column(String(8))
    # scheduled, sent, opened, started, completed, cancelled, expired, failed
    status: Mapped[str] = mapped_column(String(10), default="scheduled")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminders: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    episode: Mapped[Episode] = relationship()
    appointment: Mapped[Appointment | None] = relationship()


class InvitationToken(Base):
    """One link to an invitation: only the SHA-256 of the raw token is stored; an invitation may have several."""

    __tablename__ = "invitation_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # email, sms, kiosk, link or reminder: which hand-out minted this link
    purpose: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    invitation: Mapped[Invitation] = relationship()


class Administration(Base):
    """One instrument answered once: the answers, their scores, and whether rules have run on it."""

    __tablename__ = "administrations"
    __table_args__ = (
        UniqueConstraint("invitation_id", "instrument_code"),
        Index("ix_administrations_episode_instrument", "episode_id", "instrument_code", "completed_at"),
        # Reconcile looks only at rows still waiting for evaluation: keep that index tiny.
        Index(
            "ix_administrations_unevaluated",
            "completed_at",
            postgresql_where=text("evaluated_at IS NULL AND eval_failed_at IS NULL"),
            sqlite_where=text("evaluated_at IS NULL AND eval_failed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    instrument_code: Mapped[str] = mapped_column(String(40))
    instrument_version: Mapped[str] = mapped_column(String(20))
    # client or therapist
    respondent: Mapped[str] = mapped_column(String(10), default="client")
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[float | None] = mapped_column(Float)
    complete: Mapped[bool] = mapped_column(default=True)
    free_text: Mapped[str | None] = mapped_column(String(2000))
    language: Mapped[str] = mapped_column(String(8), default="en")
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    eval_attempts: Mapped[int] = mapped_column(default=0)
    eval_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The worker process evaluating it (services.ops.liveness.process_name) and since when; cleared on a failure.
    eval_claimed_by: Mapped[str | None] = mapped_column(String(120))
    eval_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))

    episode: Mapped[Episode] = relationship()
    invitation: Mapped[Invitation | None] = relationship()
