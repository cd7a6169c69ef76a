"""Signal, alert and alert-action tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.clients.models import Episode
from services.db import Base, UTCDateTime, utcnow


class SignalRecord(Base):
    """A rule that fired on one administration, with the numbers that made it fire."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("administration_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    administration_id: Mapped[int] = mapped_column(ForeignKey("administrations.id"))
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    session: Mapped[int]
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """Something a clinician should look at; at most one open per episode and kind."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_one_open",
            "episode_id",
            "kind",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index("ix_alerts_status_opened", "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    # alliance, outcome, risk
    kind: Mapped[str] = mapped_column(String(10))
    # open, acknowledged, resolved
    status: Mapped[str] = mapped_column(String(12), default="open")
    severity: Mapped[str] = mapped_column(String(8), default="amber")
    summary: Mapped[str] = mapped_column(String(300), default="")
    baseline: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    opened_by_administration_id: Mapped[int | None] = mapped_column(ForeignKey("administrations.id"))
    opened_session: Mapped[int | None]
    sessions_open: Mapped[int] = mapped_column(default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    repaired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # by kind (services.alerts.kinds), or episode_ended when the episode ended
    resolution_reason: Mapped[str | None] = mapped_column(String(20))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalation_level: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    episode: Mapped[Episode] = relationship()
    actions: Mapped[list[AlertAction]] = relationship(back_populates="alert", order_by="AlertAction.at")


class AlertAction(Base):
    """Something done about an alert: acknowledged, noted, a repair step, resolved, escalated."""

    __tablename__ = "alert_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(20))
    component: Mapped[str | None] = mapped_column(String(30))
    text: Mapped[str | None] = mapped_column(String(2000))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    alert: Mapped[Alert] = relationship(back_populates="actions")


class EscalationNotice(Base):
    """One person to be told about one escalated alert; their messages go out as at most one digest per window."""

    __tablename__ = "escalation_notices"
    __table_args__ = (
        UniqueConstraint("alert_id", "user_id"),
        Index("ix_escalation_notices_user_notified", "user_id", "notified_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # on_call or supervisor: the role the person is told about it in
    role: Mapped[str] = mapped_column(String(12))
    # a text message too (a risk alert to the on-call list)
    urgent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # when the digest that carried it was queued (or when it was dropped, the alert being seen meanwhile)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"))
