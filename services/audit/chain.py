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
from collections.abc import Generator, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, cast, func, literal, select, type_coerce, update
from sqlalchemy.orm import Session

from services.audit.models import AuditChain, AuditEvent

GENESIS = "0" * 64
SEPARATOR = "\x1f"  # ASCII unit separator; None is "\x1e" so it differs from an empty string
NULL = "\x1e"
HEAD_ID = 1
BATCH = 20_000
STREAM_CHUNK = 2_000  # rows per chunk PostgreSQL sends while the walk hashes the previous ones


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


def link_hash(prev_hash: str, fields: Iterable[str]) -> str:
    """The one definition of a row's hash: SHA-256 of the previous hash and the row's fields as text, unit-separated.

    The fields are, in order: seq, at (naive UTC ISO text with microseconds), actor_id, actor_label, action,
    subject_type, subject_id, client_id, ip, detail (the stored JSON text); None is NULL. The writer renders them
    with _field, the verifier asks the database for the same text (hashed_columns), so both hash identical bytes.
    """
    return hashlib.sha256(SEPARATOR.join((prev_hash, *fields)).encode()).hexdigest()


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
    """The hash of a row from its values (text never holds control characters)."""
    fields = (seq, _iso(at), actor_id, actor_label, action, subject_type, subject_id, client_id, ip, detail_json)
    return link_hash(prev_hash, map(_field, fields))


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


def _as_text(column: Any) -> ColumnElement[str]:
    """A column as _field renders it: its text, or NULL for None."""
    return func.coalesce(cast(column, Text), literal(NULL, Text))


def hashed_columns(dialect: str) -> tuple[Any, ...]:
    """id, seq, the hashed fields after seq rendered as text by the database (exactly as _field and _iso would), hash.

    Rendering in the database spares the walk a datetime, an int and a str conversion per field and row: the
    verifier only joins and hashes the strings it gets.
    """
    if dialect == "postgresql":
        at = func.to_char(func.timezone("UTC", AuditEvent.at), literal('YYYY-MM-DD"T"HH24:MI:SS.US', Text))
    else:  # SQLite keeps SQLAlchemy's text "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC, always with microseconds)
        at = func.replace(cast(type_coerce(AuditEvent.at, Text), Text), " ", "T")
    return (
        AuditEvent.id,
        AuditEvent.seq,
        at,
        _as_text(AuditEvent.actor_id),
        _as_text(AuditEvent.actor_label),
        AuditEvent.action,
        _as_text(AuditEvent.subject_type),
        _as_text(AuditEvent.subject_id),
        _as_text(AuditEvent.client_id),
        _as_text(AuditEvent.ip),
        cast(AuditEvent.detail, Text),  # the stored JSON text, hashed as it is (no parse, no re-encoding)
        AuditEvent.row_hash,
    )


def chain_rows(
    rows: Iterable[Any], *, start_hash: str = GENESIS, start_seq: int = 0
) -> tuple[int, str, ChainReport | None]:
    """Check rows (id, seq, the fields as text..., row_hash) in chain order: (count, last hash, first problem)."""
    prev_hash = start_hash
    expected = start_seq + 1
    count = 0
    digest_of = link_hash
    for row_id, seq, *fields, stored in rows:
        count += 1
        if seq != expected:
            problem = f"row missing before position {seq}" if seq > expected else f"position {seq} out of order"
            return count, prev_hash, ChainReport(count, row_id, seq, problem)
        digest = digest_of(prev_hash, (str(seq), *fields))
        if digest != stored:
            return count, prev_hash, ChainReport(count, row_id, seq, "content or link does not match its hash")
        prev_hash = digest
        expected += 1
    return count, prev_hash, None


def stream_chain_rows(session: Session) -> Generator[Any]:
    """Every chained row in chain order as plain tuples, streamed (close it when stopping early).

    On PostgreSQL the rows are streamed on the driver's own connection (inside the session's transaction) in
    chunks: plain tuples without SQLAlchemy's per-row objects (which cost the walk more than the hashing did), and
    the server keeps sending while the walk hashes, instead of waiting for a cursor's next FETCH.
    """
    connection = session.connection()
    query = select(*hashed_columns(connection.dialect.name)).where(AuditEvent.seq.is_not(None)).order_by(AuditEvent.seq)
    if connection.dialect.name == "postgresql":
        compiled = query.compile(dialect=connection.dialect)
        driver = connection.connection.driver_connection
        if driver is None:  # pragma: no cover - a pooled connection always has its driver connection
            raise RuntimeError("no driver connection to stream the audit trail from")
        with driver.cursor() as cursor:
            yield from cursor.stream(str(compiled), compiled.params, size=STREAM_CHUNK)
        return
    for partition in connection.execution_options(yield_per=BATCH).execute(query).partitions():
        yield from partition


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole trail in chain order and report the first row that breaks it."""
    unchained = session.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.seq.is_(None)))
    if unchained is not None:
        return ChainReport(0, unchained, None, "row written outside the chain")
    with closing(stream_chain_rows(session)) as rows:
        total, last_hash, problem = chain_rows(rows)
    if problem is not None:
        return problem
    last_seq = total
    head = session.execute(select(AuditChain.seq, AuditChain.last_hash).where(AuditChain.id == HEAD_ID)).one_or_none()
    if head is None:
        return ChainReport(total, None, None, "the chain's head row is missing")
    if int(head[0]) != last_seq or head[1] != last_hash:
        return ChainReport(total, None, int(head[0]), f"the head says {head[0]} rows, the trail ends at {last_seq}")
    return ChainReport(total)
