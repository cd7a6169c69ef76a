"""Reading the audit trail: search by person, client, action and time, a page at a time or streamed for export.

Pages are keyset-paginated on the event id (newest first), so the hundredth page of a million rows costs what the
first does. An export reads up to a fixed last id, so the rows it streams are the rows it counted and audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.clients.models import Client

PER_PAGE = 50
EXPORT_BATCH = 2_000


@dataclass(frozen=True)
class AuditFilter:
    """What to look for; None means any. since is inclusive, until exclusive (UTC)."""

    actor_id: int | None = None
    client_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses on AuditEvent."""
        found: list[ColumnElement[bool]] = []
        if self.actor_id is not None:
            found.append(AuditEvent.actor_id == self.actor_id)
        if self.client_id is not None:
            found.append(AuditEvent.client_id == self.client_id)
        if self.action:
            found.append(AuditEvent.action == self.action)
        if self.since is not None:
            found.append(AuditEvent.at >= self.since)
        if self.until is not None:
            found.append(AuditEvent.at < self.until)
        return found

    def as_detail(self) -> dict[str, Any]:
        """The filter as an audit event's detail (only what was set)."""
        detail: dict[str, Any] = {
            "actor_id": self.actor_id,
            "client_id": self.client_id,
            "action": self.action or None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {key: value for key, value in detail.items() if value is not None}


@dataclass(frozen=True)
class AuditRow:
    """One event as the trail page and the export show it (clients by pseudonymous code, never by name)."""

    id: int
    seq: int | None
    at: datetime
    actor_id: int | None
    actor_name: str | None
    actor_email: str | None
    actor_label: str | None
    action: str
    subject_type: str | None
    subject_id: int | None
    client_code: str | None
    ip: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    """A page of events, newest first, with the cursors for the neighbouring pages (None: there is none)."""

    items: list[AuditRow]
    total: int
    newer_cursor: int | None
    older_cursor: int | None


def _select(criteria: AuditFilter) -> Select[*tuple[Any, ...]]:
    return (
        select(
            AuditEvent.id,
            AuditEvent.seq,
            AuditEvent.at,
            AuditEvent.actor_id,
            User.name,
            User.email,
            AuditEvent.actor_label,
            AuditEvent.action,
            AuditEvent.subject_type,
            AuditEvent.subject_id,
            Client.code,
            AuditEvent.ip,
            AuditEvent.detail,
        )
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .outerjoin(Client, Client.id == AuditEvent.client_id)
        .where(*criteria.conditions())
    )


def _row(values: Any) -> AuditRow:
    (row_id, seq, at, actor_id, name, email, label, action, subject_type, subject_id, code, ip, detail) = values
    return AuditRow(
        row_id, seq, at, actor_id, name, email, label, action, subject_type, subject_id, code, ip, detail or {}
    )


def _any(session: Session, criteria: AuditFilter, extra: ColumnElement[bool]) -> bool:
    return bool(session.scalar(select(exists().where(and_(*criteria.conditions(), extra)))))


def count_events(session: Session, criteria: AuditFilter, *, upto_id: int | None = None) -> int:
    """How many events match (up to and including upto_id when given)."""
    conditions = criteria.conditions()
    if upto_id is not None:
        conditions.append(AuditEvent.id <= upto_id)
    return int(session.scalar(select(func.count(AuditEvent.id)).where(*conditions)) or 0)


def search_events(
    session: Session,
    criteria: AuditFilter,
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
    per_page: int = PER_PAGE,
) -> AuditPage:
    """One page of matching events, newest first: the newest, those older than an id, or those newer than one."""
    query = _select(criteria)
    if newer_than is not None:
        rows = session.execute(
            query.where(AuditEvent.id > newer_than).order_by(AuditEvent.id.asc()).limit(per_page)
        ).all()
        items = [_row(values) for values in reversed(rows)]
    else:
        if older_than is not None:
            query = query.where(AuditEvent.id < older_than)
        items = [_row(values) for values in session.execute(query.order_by(AuditEvent.id.desc()).limit(per_page))]
    newer = older = None
    if items:
        if _any(session, criteria, AuditEvent.id > items[0].id):
            newer = items[0].id
        if _any(session, criteria, AuditEvent.id < items[-1].id):
            older = items[-1].id
    return AuditPage(items=items, total=count_events(session, criteria), newer_cursor=newer, older_cursor=older)


def last_event_id(session: Session) -> int:
    """The id of the newest event (0 on an empty trail)."""
    return int(session.scalar(select(func.max(AuditEvent.id))) or 0)


def stream_events(session: Session, criteria: AuditFilter, *, upto_id: int) -> Iterator[AuditRow]:
    """Every matching event up to upto_id, oldest first, fetched in batches (a server-side cursor on PostgreSQL)."""
    query = _select(criteria).where(AuditEvent.id <= upto_id).order_by(AuditEvent.id.asc())
    result = session.execute(query.execution_options(yield_per=EXPORT_BATCH))
    for values in result:
        yield _row(values)


def list_actions(session: Session) -> list[str]:
    """The actions that occur in the trail, alphabetically (the page's action filter)."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def client_id_for_code(session: Session, code: str) -> int | None:
    """The id of the client with this pseudonymous code, or None."""
    return session.scalar(select(Client.id).where(Client.code == code.strip().upper()))
