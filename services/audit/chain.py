"""The audit trail as a hash chain: each row carries a hash of its content and of the row before it.

One chain for the whole trail. A writer takes the chain's head row (one UPDATE: a row lock on PostgreSQL, the
write lock on SQLite) before it appends, so two concurrent writers cannot both link to the same predecessor; the
lock is held until the writer's transaction ends. `verify_chain` walks the trail in chain order and names the
first row whose content, position or link does not match, and a head that does not match the last row (rows cut
off the end).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table, Text, cast, func, select, type_coerce, update
from sqlalchemy.orm import Session

from services.audit.models import AuditChain, AuditEvent

GENESIS = "0" * 64
SEPARATOR = "\x1f"  # ASCII unit separator; None is "\x1e" so it differs from an empty string
NULL = "\x1e"
HEAD_ID = 1
BATCH = 20_000


def _iso(at: datetime) -> str:
    """The UTC time as naive ISO text (SQLite hands back naive UTC, PostgreSQL aware: both give the same text)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def detail_text(detail: Any) -> str:
    """The detail as the database stores it (SQLAlchemy's JSON type writes json.dumps of the value)."""
    return json.dumps(detail)


def _field(value: object) -> str:
    return NULL if value is None else str(value)


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_label: str | None,
    action: str,
    subject_type: str | None,
    subject_id: int | None,
    client_id: int | None,
    ip: str | None,
    detail_json: str,
) -> str:
    """The SHA-256 of the previous hash and a row's fields (unit-separated; text never holds control characters)."""
    fields = (seq, _iso(at), actor_id, actor_label, action, subject_type, subject_id, client_id, ip, detail_json)
    return hashlib.sha256(SEPARATOR.join([prev_hash, *map(_field, fields)]).encode()).hexdigest()


def link_event(session: Session, event: AuditEvent) -> None:
    """Give event its place and hash in the chain, holding the chain's head until the transaction ends."""
    table: Table = AuditChain.__table__  # type: ignore[assignment]
    head = session.execute(
        update(table).where(table.c.id == HEAD_ID).values(seq=table.c.seq + 1).returning(table.c.seq, table.c.last_hash)
    ).one_or_none()
    if head is None:
        raise RuntimeError("the audit chain has no head row (migration 0012 creates it)")
    seq, prev_hash = int(head[0]), str(head[1])
    event.seq = seq
    event.row_hash = event_hash(
        prev_hash,
        seq=seq,
        at=event.at,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        client_id=event.client_id,
        ip=event.ip,
        detail_json=detail_text(event.detail),
    )
    session.execute(update(table).where(table.c.id == HEAD_ID).values(last_hash=event.row_hash))


@dataclass(frozen=True)
class ChainReport:
    """What a walk of the chain found: rows checked, and the first bad row (None when the chain holds)."""

    rows: int
    bad_id: int | None = None
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when every row and the head match."""
        return self.problem is None


def chain_rows(
    rows: Iterable[Any], *, start_hash: str = GENESIS, start_seq: int = 0
) -> tuple[int, str, ChainReport | None]:
    """Check rows (id, seq, at, ..., detail, row_hash) in chain order: (count, last hash, first problem or None)."""
    prev_hash = start_hash
    expected = start_seq + 1
    count = 0
    sha256, sep, null = hashlib.sha256, SEPARATOR, NULL
    for row in rows:
        (row_id, seq, at, actor_id, actor_label, action, subject_type, subject_id, client_id, ip, detail, stored) = row
        count += 1
        if seq != expected:
            problem = f"row missing before position {seq}" if seq > expected else f"position {seq} out of order"
            return count, prev_hash, ChainReport(count, row_id, seq, problem)
        # event_hash, inlined: the walk of a million rows spends most of its time here.
        text = sep.join(
            (
                prev_hash,
                str(seq),
                _iso(at),
                null if actor_id is None else str(actor_id),
                null if actor_label is None else actor_label,
                action,
                null if subject_type is None else subject_type,
                null if subject_id is None else str(subject_id),
                null if client_id is None else str(client_id),
                null if ip is None else ip,
                detail,
            )
        )
        digest = sha256(text.encode()).hexdigest()
        if digest != stored:
            return count, prev_hash, ChainReport(count, row_id, seq, "content or link does not match its hash")
        prev_hash = digest
        expected += 1
    return count, prev_hash, None


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole trail in chain order and report the first row that breaks it."""
    unchained = session.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.seq.is_(None)))
    if unchained is not None:
        return ChainReport(0, unchained, None, "row written outside the chain")
    columns = (
        AuditEvent.id,
        AuditEvent.seq,
        type_coerce(AuditEvent.at, DateTime()),  # as stored: the walk converts it once, in _iso
        AuditEvent.actor_id,
        AuditEvent.actor_label,
        AuditEvent.action,
        AuditEvent.subject_type,
        AuditEvent.subject_id,
        AuditEvent.client_id,
        AuditEvent.ip,
        cast(AuditEvent.detail, Text),  # the stored JSON text, hashed as it is (no parse, no re-encoding)
        AuditEvent.row_hash,
    )
    connection = session.connection()  # Core rows: the ORM's per-row bookkeeping would double the walk's time
    total = 0
    last_hash = GENESIS
    last_seq = 0
    while True:
        batch = connection.execute(
            select(*columns).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(BATCH)
        ).all()
        if not batch:
            break
        count, last_hash, problem = chain_rows(batch, start_hash=last_hash, start_seq=last_seq)
        if problem is not None:
            return ChainReport(total + count, problem.bad_id, problem.bad_seq, problem.problem)
        total += count
        last_seq = int(batch[-1][1] or 0)
    head = session.execute(select(AuditChain.seq, AuditChain.last_hash).where(AuditChain.id == HEAD_ID)).one_or_none()
    if head is None:
        return ChainReport(total, None, None, "the chain's head row is missing")
    if int(head[0]) != last_seq or head[1] != last_hash:
        return ChainReport(total, None, int(head[0]), f"the head says {head[0]} rows, the trail ends at {last_seq}")
    return ChainReport(total)
