"""Practice settings, one row per version of a key: the newest version is in force, older ones are the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow


class PracticeSetting(Base):
    """One version of one practice setting: its value, who changed it, when and why."""

    __tablename__ = "practice_settings"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    version: Mapped[int]
    value: Mapped[Any] = mapped_column(JSON)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    # "person" (changed on the settings page) or "calibration" (a calibrated proposal a person adopted).
    source: Mapped[str] = mapped_column(String(20), default="person", server_default="person")
