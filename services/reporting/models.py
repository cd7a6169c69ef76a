"""Stored monthly reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow


class Report(Base):
    """One report per scope and period; regenerating replaces its file atomically."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("scope", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # practice, team:ID or clinician:ID
    scope: Mapped[str] = mapped_column(String(40))
    # YYYY-MM
    period: Mapped[str] = mapped_column(String(7))
    # pending, running, done, failed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    progress: Mapped[int] = mapped_column(default=0)
    file_path: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The worker process (services.ops.liveness.process_name) that claimed a running report.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
