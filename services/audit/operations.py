"""Writing to the audit trail (append-only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.audit.models import AuditEvent


def record_event(
    session: Session,
    *,
    action: str,
    actor_id: int | None = None,
    actor_label: str | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    client_id: int | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event to the session (committed with the caller's unit of work)."""
    event = AuditEvent(
        action=action,
        actor_id=actor_id,
        actor_label=actor_label,
        subject_type=subject_type,
        subject_id=subject_id,
        client_id=client_id,
        ip=ip,
        detail=detail or {},
    )
    session.add(event)
    return event


def record_client_view(
    session: Session, *, actor_id: int, client_id: int, what: str, ip: str | None = None
) -> AuditEvent:
    """Audit that a staff member viewed a client's record (chart, history, export)."""
    return record_event(
        session,
        action="client_viewed",
        actor_id=actor_id,
        subject_type="client",
        subject_id=client_id,
        client_id=client_id,
        ip=ip,
        detail={"what": what},
    )
