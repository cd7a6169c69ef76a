"""The application's PostgreSQL backends are terminated under it: a request whose connection dropped before its
commit runs once more on a fresh connection, so clients see no server error and nothing is stored twice."""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from services.config import Settings
from services.db import Database
from services.surveys.models import Administration
from tests.fault.test_redis_down import PHQ9, STATE, new_link
from tests.fault.test_redis_frozen import Timings, new_opener
from tests.integration.conftest import free_port
from web.access import public
from web.request_db import commit, db_session

SURVEYS = 120
# A pause between surveys, so the burst spans several rounds of terminations.
THINK = 0.05
CLIENTS = 4
# Rounds of terminating every backend of the app, as a database failover or an operator would.
KILL_EVERY = 0.4
RETRY_LOG = "running it again"


def dsn(settings: Settings) -> str:
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://")


def terminate(settings: Settings, pid: int) -> None:
    """End one backend and wait until it is gone (PostgreSQL 14+: the timeout argument waits)."""
    with psycopg.connect(dsn(settings), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def terminate_all_but_me(settings: Settings) -> int:
    """End every other backend of the test database (the app's pooled and in-use connections); how many."""
    with psycopg.connect(dsn(settings), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
    return len(rows)


@pytest.fixture
def probe_table(fault_db: Database) -> Iterator[str]:
    """A scratch table of this test's own."""
    with fault_db.unit_of_work() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS fault_probe (id serial PRIMARY KEY, label text NOT NULL)"))
    yield "fault_probe"
    with fault_db.unit_of_work() as session:
        session.execute(text("DROP TABLE fault_probe"))


@pytest.fixture
def app(fault_settings: Settings, fault_db: Database, fault_publisher: Any) -> Flask:
    """The web app on the fault database, with a probe route that loses its own connection on its first run."""
    from web.app import create_app

    application = create_app(settings=fault_settings, database=fault_db)
    runs: dict[str, int] = {}

    @application.get("/_probe/<label>/<when>")
    @public
    def probe(label: str, when: str) -> str:
        session = db_session()
        session.execute(text("INSERT INTO fault_probe (label) VALUES (:label)"), {"label": label})
        runs[label] = runs.get(label, 0) + 1
        if runs[label] == 1:
            terminate(fault_settings, int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            if when == "mid":
                session.execute(text("SELECT 1"))  # fails: the connection is gone
        commit()  # "commit": the COMMIT itself finds the connection gone; the server says it did not commit
        return f"runs={runs[label]}"

    return application


def stored(db: Database, label: str) -> int:
    with db.session() as session:
        return int(session.scalar(text("SELECT count(*) FROM fault_probe WHERE label = :l"), {"l": label}) or 0)


@pytest.mark.parametrize("when", ["mid", "commit"])
def test_a_request_whose_connection_drops_before_commit_runs_once_more(
    app: Flask, fault_db: Database, probe_table: str, when: str, caplog: pytest.LogCaptureFixture
) -> None:
    label = f"drop-{when}-{time.monotonic_ns()}"
    with caplog.at_level(logging.WARNING, logger="web.request_db"):
        response = app.test_client().get(f"/_probe/{label}/{when}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.get_data(as_text=True) == "runs=2"
    assert stored(fault_db, label) == 1  # the first run's insert died with its connection
    assert sum(RETRY_LOG in r.getMessage() for r in caplog.records) == 1


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)


def answer(base: str, paths: list[str], timings: Timings, thanked: list[str]) -> None:
    for path in paths:
        opener = new_opener()
        status, page = timings.call(opener, "survey GET", urllib.request.Request(base + path))
        match = STATE.search(page)
        if status != 200 or not match:
            continue
        data = urllib.parse.urlencode({"state": match.group(1), "lang": "en", "action": "next", **PHQ9}).encode()
        status, page = timings.call(opener, "survey POST", urllib.request.Request(base + path, data=data))
        if status == 200 and "Thank you, Outage." in page:
            thanked.append(path)
        time.sleep(THINK)


def test_terminated_backends_during_a_burst_give_no_server_error(
    served: str, fault_db: Database, fault_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    links = [new_link(fault_db) for _ in range(SURVEYS)]
    paths = [path for _, path in links]
    timings, done = Timings(), threading.Event()
    thanked_paths: list[str] = []
    killed: list[int] = []

    def killer() -> None:
        while not done.is_set():
            killed.append(terminate_all_but_me(fault_settings))
            time.sleep(KILL_EVERY)

    clients = [
        threading.Thread(target=answer, args=(served, paths[i::CLIENTS], timings, thanked_paths), daemon=True)
        for i in range(CLIENTS)
    ]
    with caplog.at_level(logging.WARNING, logger="web.request_db"):
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=120)
        done.set()
        kill_thread.join(timeout=10)
    retries = sum(RETRY_LOG in r.getMessage() for r in caplog.records)
    errors = [row for row in timings.rows if row[1] >= 500]
    summary = f"{len(timings.rows)} requests, {sum(killed)} backends terminated, {retries} retried, 5xx: {errors}"
    print(summary)
    assert len(killed) >= 3, summary
    # The burst really lost connections mid-request (how many depends on timing: 2 to 14 of 240 in our runs; a
    # backend killed while idle in the pool is replaced at checkout and needs no retry).
    assert retries >= 1, summary
    assert not errors, summary
    assert len(thanked_paths) == SURVEYS, summary
    ids = [invitation_id for invitation_id, _ in links]
    with fault_db.session() as session:
        per_invitation = session.execute(
            select(Administration.invitation_id, func.count())
            .where(Administration.invitation_id.in_(ids))
            .group_by(Administration.invitation_id)
        ).all()
    assert len(per_invitation) == SURVEYS, summary
    assert all(count == 1 for _, count in per_invitation), summary  # stored once each
