"""The append-only audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from services.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One thing someone did or saw; rows are never updated or deleted (a trigger refuses it)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_client", "client_id", "at"),
        Index("ix_audit_events_actor", "actor_id", "at"),
        Index("ix_audit_events_seq", "seq", unique=True),
        Index("ix_audit_events_action", "action", "id"),  # the trail page's action filter, newest first
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None]
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The hash chain (services.audit.chain): position in the one chain, and SHA-256 of content + previous hash.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditChain(Base):
    """The chain's head: one row (id 1) with the last position and hash; writers lock it to append."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
