"""Writing to the audit trail (append-only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.audit.chain import link_event
from services.audit.models import AuditEvent
from services.db import utcnow


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
    """Append one audit event, linked into the hash chain (committed with the caller's unit of work)."""
    event = AuditEvent(
        at=utcnow(),
        action=action,
        actor_id=actor_id,
        actor_label=actor_label,
        subject_type=subject_type,
        subject_id=subject_id,
        client_id=client_id,
        ip=ip,
        detail=detail or {},
    )
    link_event(session, event)
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


MAX_ROW_ID = 2**31 - 1  # the audit trail's subject and client columns are 32-bit integers
# Which record kind an id argument names, for the refused look-up's subject (the first one given wins).
SUBJECT_OF_ARGUMENT = {
    "client_id": "client",
    "episode_id": "episode",
    "appointment_id": "appointment",
    "invitation_id": "invitation",
    "alert_id": "alert",
    "review_id": "review",
    "report_id": "report",
    "user_id": "user",
    "token_id": "api_token",
    "device_id": "kiosk_device",
}


def record_refused_lookup(
    session: Session, *, actor_id: int, route: str, method: str, ids: dict[str, int], via: str, ip: str | None
) -> AuditEvent:
    """Audit that a staff member asked for a record by id and was refused (outside their caseload, or no such id)."""
    from services.clients.models import Client

    name, value = next(iter(ids.items()))
    client_id = ids.get("client_id")
    if client_id is not None and (client_id > MAX_ROW_ID or session.get(Client, client_id) is None):
        client_id = None  # a client id that names no client is still recorded, in the detail only
    return record_event(
        session,
        action="access_refused",
        actor_id=actor_id,
        subject_type=SUBJECT_OF_ARGUMENT.get(name, name.removesuffix("_id")),
        subject_id=value if 0 < value <= MAX_ROW_ID else None,
        client_id=client_id,
        ip=ip,
        detail={"route": route, "method": method, "ids": {key: str(number) for key, number in ids.items()}, "via": via},
    )


def alert_admins_of_broken_chain(session: Session, *, day: str, link: str, practice: str) -> list[int]:
    """Queue one email per active admin saying the audit chain is broken (once per day); returns the ids."""
    from sqlalchemy import select

    from services.accounts.models import Role, User
    from services.notifications.operations import queue_notification

    admins = session.scalars(select(User).where(User.role == Role.ADMIN.value, User.active.is_(True)).order_by(User.id))
    ids = [
        queue_notification(
            session,
            channel="email",
            template="audit_chain_broken",
            to_address=admin.email,
            recipient_user_id=admin.id,
            context={"link": link, "practice": practice},
            dedupe_key=f"audit-chain-broken:{day}:{admin.id}",
        ).id
        for admin in admins
    ]
    session.flush()
    return ids
