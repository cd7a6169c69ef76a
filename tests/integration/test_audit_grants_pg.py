"""PostgreSQL: with infra/postgres/roles.sql applied, the application's role can append to the audit trail and
read it, and cannot update, delete, truncate or switch off its triggers; the owner is stopped by the triggers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from services import schema
from services.audit.chain import verify_chain
from services.audit.operations import record_event
from services.config import PROJECT_ROOT
from services.db import reset_databases
from tests.integration.conftest import PG_HOST

ROLES_SQL = PROJECT_ROOT / "infra" / "postgres" / "roles.sql"


def _admin() -> psycopg.Connection:
    return psycopg.connect(f"host={PG_HOST} port=5432 user=postgres dbname=postgres", autocommit=True)


@pytest.fixture(scope="module")
def roles() -> Iterator[dict[str, str]]:
    """A database owned by a fresh owner role, migrated as that role, with roles.sql applied for a fresh app role."""
    suffix = secrets.token_hex(3)
    owner, app, name = f"rapport_owner_{suffix}", f"rapport_app_{suffix}", f"rapport_grants_{suffix}"
    with _admin() as admin:
        admin.execute(f'CREATE ROLE "{owner}" NOLOGIN')
        admin.execute(f'CREATE ROLE "{app}" NOLOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    base = f"postgresql+psycopg://postgres@{PG_HOST}:5432/{name}"
    as_owner = create_engine(base, connect_args={"options": f"-c role={owner}"})
    schema.upgrade(as_owner)
    sql = Path(ROLES_SQL).read_text(encoding="utf-8").replace("rapport_owner", owner).replace("rapport_app", app)
    with psycopg.connect(f"host={PG_HOST} port=5432 user=postgres dbname={name}", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]
    as_owner.dispose()
    yield {"owner": owner, "app": app, "url": base}
    reset_databases()
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{app}"')
        admin.execute(f'DROP ROLE IF EXISTS "{owner}"')


def _refused(engine: object, statement: str, match: str) -> None:
    with pytest.raises(Exception, match=match), engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(statement))


def test_the_application_role_appends_and_reads_but_never_rewrites(roles: dict[str, str]) -> None:
    app = create_engine(roles["url"], connect_args={"options": f"-c role={roles['app']}"})
    sessions = sessionmaker(bind=app)
    with sessions() as session, session.begin():
        for i in range(3):
            record_event(session, action="client_viewed", actor_label="grants test", detail={"i": i})
    with sessions() as session:
        report = verify_chain(session)
        assert report.ok, report
        assert report.rows == 3
    with app.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == roles["app"]
    _refused(app, "UPDATE audit_events SET ip = '10.9.9.9'", "permission denied")
    _refused(app, "DELETE FROM audit_events", "permission denied")
    _refused(app, "TRUNCATE audit_events", "permission denied")
    _refused(app, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change", "must be owner")
    _refused(app, "DROP TABLE audit_events", "must be owner")
    # Everything else the application does still works: for example a table it updates.
    with app.begin() as conn:
        conn.execute(text("UPDATE audit_chain SET seq = seq WHERE id = 1"))
    app.dispose()


def test_concurrent_writers_on_postgresql_keep_one_chain(roles: dict[str, str]) -> None:
    import threading

    app = create_engine(roles["url"], connect_args={"options": f"-c role={roles['app']}"}, pool_size=8)
    sessions = sessionmaker(bind=app)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with sessions() as session, session.begin():
                    record_event(session, action="client_viewed", actor_label=f"w{n}", detail={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        report = verify_chain(session)
        total = session.execute(text("SELECT count(*), max(seq) FROM audit_events WHERE seq IS NOT NULL")).one()
    assert report.ok, report
    assert report.rows == 3 + 8 * 20
    assert tuple(total) == (163, 163)
    app.dispose()


def test_the_owner_is_stopped_by_the_triggers(roles: dict[str, str]) -> None:
    owner = create_engine(roles["url"], connect_args={"options": f"-c role={roles['owner']}"})
    with owner.begin() as conn:
        conn.execute(text("INSERT INTO audit_events (at, action, detail) VALUES (now(), 'owner probe', '{}')"))
    _refused(owner, "UPDATE audit_events SET ip = '10.9.9.9'", "append-only")
    _refused(owner, "DELETE FROM audit_events", "append-only")
    _refused(owner, "TRUNCATE audit_events", "append-only")
    with owner.connect() as conn, Session(bind=conn) as session:
        report = verify_chain(session)
    assert report.problem == "row written outside the chain"  # the owner's raw insert went around the chain
    owner.dispose()
