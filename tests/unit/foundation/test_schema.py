"""Migrations: exactly one head, and the migrated schema matches the models (SQLite here, PostgreSQL in integration)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from services import schema


def test_there_is_exactly_one_migration_head() -> None:
    assert len(schema.heads()) == 1


def test_migrated_sqlite_schema_matches_the_models(engine: Engine) -> None:
    assert schema.current_revision(engine) == schema.heads()[0]
    assert schema.drift(engine) == []


def test_audit_events_refuse_update_and_delete(engine: Engine) -> None:
    with engine.connect() as conn, conn.begin() as outer:
        conn.execute(text("INSERT INTO audit_events (at, action, detail) VALUES ('2026-01-01 00:00:00', 'x', '{}')"))
        with pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text("UPDATE audit_events SET action = 'y'"))
        outer.rollback()
    with engine.connect() as conn, conn.begin() as outer:
        conn.execute(text("INSERT INTO audit_events (at, action, detail) VALUES ('2026-01-01 00:00:00', 'x', '{}')"))
        with pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text("DELETE FROM audit_events"))
        outer.rollback()
