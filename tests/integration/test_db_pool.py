"""The connection pool on PostgreSQL: a connection the server closed while idle is never handed to a request."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from services.db import Database
from tests.integration.conftest import wait_for


def _terminate(url: str, pid: int) -> None:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database, autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

        def gone() -> bool:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            return row is not None and row[0] == 0

        wait_for(gone, timeout=10, what=f"backend {pid} to end")


def test_a_connection_killed_while_idle_is_replaced_at_checkout(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        with db.session() as session:
            first = session.scalar(text("SELECT pg_backend_pid()"))
        assert first is not None
        _terminate(pg_url, first)  # as a server restart or an idle-session timeout would
        with db.session() as session:
            second = session.scalar(text("SELECT pg_backend_pid()"))
        assert second is not None
        assert second != first
    finally:
        db.dispose()


def test_without_the_checkout_check_the_same_request_would_fail(pg_url: str) -> None:
    # The control: a plain pool without pre-ping hands out the dead connection and the first statement fails.
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            pid = connection.scalar(text("SELECT pg_backend_pid()"))
        assert pid is not None
        _terminate(pg_url, pid)
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.scalar(text("SELECT 1"))
    finally:
        engine.dispose()
