"""Engine, sessions and the unit of work shared by requests, tasks and CLI commands."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every Rapport table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def upsert_insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (PostgreSQL's, else SQLite's)."""
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY_OPTION = "rapport_read_only"


def _sqlite_begin(connection: Any) -> None:
    # Every transaction takes the write lock up front, where SQLite's busy timeout lets it wait its turn: a read
    # transaction that later writes cannot wait (its snapshot may be stale) and fails at once with "database is
    # locked". Only sessions declared read-only (Database.read_only_session) begin deferred, so a long read such as
    # a report render keeps its snapshot without holding writers back.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the pragmas and pool settings Rapport relies on."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("poolclass", NullPool)
        kwargs.setdefault("connect_args", {"timeout": 15})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: hand out no connection the server has already closed, at the cost of a syscall.

    An idle connection in the pool has nothing to read unless the server is ending it: a restart or shutdown
    sends "terminating connection" and closes the socket, a killed backend closes it. Either makes the socket
    readable, so the pool drops that connection and checks out (or opens) another, instead of the request failing
    on its first statement. This replaces pool_pre_ping's SELECT 1 round trip on every checkout (measured at a
    few percent of a survey submission); a silently dead network path is caught by neither, only by the TCP
    timeouts.
    """
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        raise DisconnectionError("connection already closed")
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError("connection socket unusable") from exc
    if readable:
        raise DisconnectionError("the server closed this idle connection")


AfterCommit = Callable[[], None]


def after_commit(session: Session, callback: AfterCommit) -> None:
    """Run callback once the session's current transaction commits (dropped on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


def _run_after_commit(session: Session) -> None:
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The row that asked for this work is committed; reconcile re-drives it.
            log.exception("after-commit callback failed; reconcile will re-drive")


def _drop_after_commit(session: Session, *_: Any) -> None:
    session.info.pop("after_commit", None)


def is_disconnect(exc: BaseException) -> bool:
    """True when exc is a database error because the connection dropped (the server ended it, the network broke)."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or _driver_disconnect(exc.orig)
    # Statements run on the driver's connection directly (services.surveys.submission) raise the driver's own error.
    return _driver_disconnect(exc)


def _driver_disconnect(exc: BaseException | None) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if not isinstance(exc, psycopg.OperationalError):
        return False
    # Admin/crash shutdown, cannot connect now, the connection exception class; or no SQLSTATE at all, which psycopg
    # gives only for a connection that broke ("server closed the connection unexpectedly", "the connection is lost").
    state = exc.sqlstate
    return state is None or state in {"57P01", "57P02", "57P03"} or state.startswith("08")


# How long to wait for a transaction whose connection dropped during COMMIT to be known committed or aborted.
STATUS_WAIT = 2.0


class NotCommitted(Exception):
    """The connection dropped before or during COMMIT and the server says the transaction did not commit.

    Nothing of the transaction was written, so running the whole unit of work again is safe.
    """


def commit_checked(session: Session) -> None:
    """Commit; when the connection drops during COMMIT, ask the server whether it committed instead of guessing.

    On PostgreSQL the transaction's id is read before COMMIT (no round trip for a transaction that wrote nothing
    is saved: one small SELECT per writing commit). If COMMIT then fails on a dropped connection, a fresh connection
    asks pg_xact_status: committed -> the after-commit hooks run and this returns as if nothing happened; aborted
    -> NotCommitted (safe to retry); still unknown -> the original error. A drop before COMMIT is NotCommitted too.
    SQLite has no dropped connections; its commit is a plain commit.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or not session.in_transaction():
        session.commit()  # SQLite, or nothing begun: nothing whose outcome could be in doubt
        return
    try:
        session.flush()
        xid = session.execute(text("SELECT pg_current_xact_id_if_assigned()::text")).scalar()
    except DBAPIError as exc:
        if is_disconnect(exc):
            raise NotCommitted("the connection dropped before COMMIT") from exc
        raise
    hooks: list[AfterCommit] = list(session.info.get("after_commit", []))
    try:
        session.commit()
    except DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        _forget(session)
        status = _transaction_status(bind, xid) if xid is not None else "aborted"
        log.warning("the connection dropped during COMMIT; the server says the transaction is %s", status)
        if status == "committed":
            session.info["after_commit"] = hooks
            _run_after_commit(session)
            return
        if status == "aborted":
            raise NotCommitted("the connection dropped during COMMIT, which did not happen") from exc
        raise


def _forget(session: Session) -> None:
    try:
        session.rollback()
    except DBAPIError:
        log.debug("rollback after a dropped connection failed", exc_info=True)


def _transaction_status(bind: Engine | Connection, xid: str) -> str | None:
    """pg_xact_status of a transaction id, asked on a fresh connection (None when the server cannot say)."""
    deadline = time.monotonic() + STATUS_WAIT
    while True:
        try:
            with bind.engine.connect() as conn:
                status = conn.execute(text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": xid}).scalar()
        except DBAPIError as exc:
            if not is_disconnect(exc) or time.monotonic() > deadline:
                raise
            continue
        if status != "in progress":
            return None if status is None else str(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)  # the ended backend is still finishing; its outcome is known in a moment


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.session_factory: sessionmaker[Session] = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.read_only_factory: sessionmaker[Session] = sessionmaker(
            bind=self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @classmethod
    def bound_to(cls, connection: Connection) -> Database:
        """A Database whose sessions join an outer transaction on connection (tests roll it back)."""
        db = cls.__new__(cls)
        db.url = connection.engine.url.render_as_string(hide_password=False)
        db.engine = connection.engine
        db.session_factory = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        db.read_only_factory = db.session_factory
        return db

    @property
    def dialect(self) -> str:
        """The dialect's name: sqlite or postgresql."""
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session; the caller owns its transaction."""
        return self.session_factory()

    def read_only_session(self) -> Session:
        """A new session for reading only: on SQLite its transactions begin deferred and never take the write lock."""
        return self.read_only_factory()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on error, then run after-commit hooks."""
        with self.session_factory() as session:
            try:
                yield session
                commit_checked(session)
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close pooled connections (after fork, at exit)."""
        self.engine.dispose()


@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    _run_after_commit(session)


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, _previous: Any) -> None:
    _drop_after_commit(session)


_databases: dict[str, Database] = {}


def get_database(url: str) -> Database:
    """The process-wide Database for a URL (created on first use)."""
    db = _databases.get(url)
    if db is None:
        db = _databases[url] = Database(url)
    return db


def reset_databases() -> None:
    """Dispose every cached engine (after a fork, or between test sessions)."""
    for db in _databases.values():
        db.dispose()
    _databases.clear()
