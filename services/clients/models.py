"""Clients, their episodes of care and appointments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.db import Base, UTCDateTime, utcnow


class Client(Base):
    """A person in care; reports show only the pseudonymous code."""

    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_name", "last_name", "first_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8), default="en")
    consent_email: Mapped[bool] = mapped_column(default=False)
    consent_sms: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    episodes: Mapped[list[Episode]] = relationship(back_populates="client", order_by="Episode.started_on")


class Episode(Base):
    """One course of therapy with one clinician."""

    __tablename__ = "episodes"
    __table_args__ = (Index("ix_episodes_clinician_open", "clinician_id", "ended_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    protocol_code: Mapped[str] = mapped_column(String(40), default="standard")
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(40))
    # Up to three goals in the client's own words.
    goals: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    client: Mapped[Client] = relationship(back_populates="episodes")
    appointments: Mapped[list[Appointment]] = relationship(back_populates="episode", order_by="Appointment.starts_at")


class Appointment(Base):
    """A session, entered by hand or imported from the practice's calendar."""

    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_appointments_episode_start", "episode_id", "starts_at"),
        Index("ix_appointments_status_start", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # scheduled, completed, cancelled, no_show
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    source: Mapped[str] = mapped_column(String(20), default="manual")
    external_id: Mapped[str | None] = mapped_column(String(200))
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    episode: Mapped[Episode] = relationship(back_populates="appointments")
