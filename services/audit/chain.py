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

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from services.audit.models import AuditChain, AuditEvent

GENESIS = "0" * 64
HEAD_ID = 1
BATCH = 20_000


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


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
    detail: Any,
) -> str:
    """The SHA-256 of a row's content (canonical JSON) and its predecessor's hash."""
    payload = json.dumps(
        [seq, _iso(at), actor_id, actor_label, action, subject_type, subject_id, client_id, ip, detail],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


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
        detail=event.detail,
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
    for row in rows:
        (row_id, seq, at, actor_id, actor_label, action, subject_type, subject_id, client_id, ip, detail, stored) = row
        count += 1
        if seq != expected:
            problem = f"row missing before position {seq}" if seq > expected else f"position {seq} out of order"
            return count, prev_hash, ChainReport(count, row_id, seq, problem)
        digest = event_hash(
            prev_hash,
            seq=seq,
            at=at,
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            client_id=client_id,
            ip=ip,
            detail=detail,
        )
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
        AuditEvent.at,
        AuditEvent.actor_id,
        AuditEvent.actor_label,
        AuditEvent.action,
        AuditEvent.subject_type,
        AuditEvent.subject_id,
        AuditEvent.client_id,
        AuditEvent.ip,
        AuditEvent.detail,
        AuditEvent.row_hash,
    )
    total = 0
    last_hash = GENESIS
    last_seq = 0
    while True:
        batch = session.execute(
            select(*columns).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(BATCH)
        ).all()
        if not batch:
            break
        count, last_hash, problem = chain_rows(batch, start_hash=last_hash, start_seq=last_seq)
        if problem is not None:
            return ChainReport(total + count, problem.bad_id, problem.bad_seq, problem.problem)
        total += count
        last_seq = int(batch[-1][1])
    head = session.execute(select(AuditChain.seq, AuditChain.last_hash).where(AuditChain.id == HEAD_ID)).one_or_none()
    if head is None:
        return ChainReport(total, None, None, "the chain's head row is missing")
    if int(head[0]) != last_seq or head[1] != last_hash:
        return ChainReport(total, None, int(head[0]), f"the head says {head[0]} rows, the trail ends at {last_seq}")
    return ChainReport(total)
