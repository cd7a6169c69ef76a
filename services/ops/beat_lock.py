"""The beat lock: whichever beat process holds it sends the schedule; any other waits, harmless, as a standby.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on a dedicated connection for as long as
  the beat lives. It needs no table and no expiry: when the process dies its connection closes and PostgreSQL
  releases the lock at once, so a standby takes over on its next try. The connection is checked on every tick
  (a lost connection means a lost lock: the beat stops sending until it holds it again), the server ends it after
  a minute of silence (idle_session_timeout), so a beat whose machine vanished cannot keep the lock for the two
  hours of default TCP keepalive, and client-side keepalives and timeouts keep a check from hanging a tick.
- SQLite (local use): an exclusive `flock` on var/beat.lock; the kernel releases it when the process dies.

A lock cannot rule out a few seconds in which an old holder that lost its connection has not noticed yet; periodic
jobs are also keyed by their period (job_runs), so a send in that window is a no-op.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LOCK_NAME = "rapport:beat"
# A stable 64-bit key for pg_advisory_lock (advisory locks are per database, so deployments never collide).
ADVISORY_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


class BeatLock(Protocol):
    """Exactly one holder at a time; acquiring never blocks."""

    kind: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free (True also when this process already holds it)."""

    def held(self) -> bool:
        """Whether this process still holds the lock (checks the connection, so a lost lock is noticed)."""

    def release(self) -> None:
        """Give the lock up (on shutdown)."""


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection of its own."""

    kind = "postgresql-advisory"

    def __init__(self, url: str, key: int = ADVISORY_KEY) -> None:
        self.key = key
        self._engine: Engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": 5,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "application_name": "rapport-beat-lock",
            },
        )
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free (True also when this process already holds it)."""
        if self.held():
            return True
        try:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError:
            log.warning("beat lock: the database is not answering; not sending the schedule", exc_info=True)
            return False
        try:
            connection.execute(text("SET idle_session_timeout = '60s'"))
            connection.execute(text("SET statement_timeout = '5s'"))
            got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
        except DBAPIError:
            log.warning("beat lock: could not ask for the lock", exc_info=True)
            connection.close()
            return False
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Whether this process still holds the lock (its session is alive)."""
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
        except DBAPIError:
            log.error("beat lock: lost the connection that held the lock; not sending until it is held again")
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Give the lock up by ending its session."""
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()  # NullPool: the session ends, and with it the lock
            except DBAPIError:
                log.debug("beat lock: closing a broken connection", exc_info=True)


class FileLock:
    """An exclusive flock on a file (one machine: the local SQLite set-up)."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free (True also when this process already holds it)."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        """Whether this process holds the lock (a flock lasts as long as the descriptor)."""
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up."""
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def beat_lock_for(database_url: str, var_dir: Path) -> BeatLock:
    """The lock that fits the database: advisory on PostgreSQL, a file lock under var/ otherwise."""
    if database_url.startswith("postgresql"):
        return AdvisoryLock(database_url)
    return FileLock(var_dir / "beat.lock")
