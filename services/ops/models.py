"""Periodic job runs keyed by their period, and heartbeats of workers and beat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow


class JobRun(Base):
    """A periodic job's run for one period; the unique key makes a repeat a no-op."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    period_key: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Heartbeat(Base):
    """The last time a process (worker, beat) said it was alive."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
