"""Migration 0006: the default "en" becomes "not chosen", a chosen "es" stays, references survive the rebuild."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from services import schema
from services.db import make_engine


def test_language_becomes_null_unless_chosen_and_the_migration_goes_both_ways(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        schema.upgrade(engine, "0004")
        with engine.begin() as c:
            for n, language in enumerate(("en", "es"), start=1):
                c.execute(
                    text(
                        "INSERT INTO users (email, name, role, password_hash, active, on_call, notify_mode, language,"
                        f" created_at) VALUES ('u{n}@example.test', 'U', 'clinician', 'x', 1, 0, 'immediate',"
                        f" '{language}', '2026-01-01 00:00:00')"
                    )
                )
            c.execute(
                text(
                    "INSERT INTO clients (code, first_name, last_name, language, consent_email, consent_sms,"
                    " created_at) VALUES ('CMIG0006', 'A', 'B', 'en', 1, 0, '2026-01-01 00:00:00')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO episodes (client_id, clinician_id, protocol_code, started_on, goals, created_at)"
                    " VALUES (1, 1, 'standard', '2026-01-01', '[]', '2026-01-01 00:00:00')"
                )
            )
        schema.upgrade(engine)
        assert schema.drift(engine) == []
        with engine.connect() as c:
            assert c.execute(text("SELECT email, language FROM users ORDER BY id")).all() == [
                ("u1@example.test", None),
                ("u2@example.test", "es"),
            ]
            assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        cfg = schema.alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0004")
        with engine.connect() as c:
            assert c.execute(text("SELECT language FROM users ORDER BY id")).scalars().all() == ["en", "es"]
            assert c.execute(text("SELECT clinician_id FROM episodes")).scalars().all() == [1]
    finally:
        engine.dispose()
