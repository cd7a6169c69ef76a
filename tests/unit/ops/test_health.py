"""Health: the worker and beat verdicts from heartbeats, and `rapport health worker|beat|web` exit codes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from services import schema
from services.db import Database, reset_databases, utcnow
from services.ops.models import Heartbeat
from services.ops.queries import beat_health, worker_health
from web.cli import cli


def test_worker_health_needs_a_recent_heartbeat(session: Session) -> None:
    now = utcnow()
    assert not worker_health(session, now=now).ok
    session.add(Heartbeat(name="celery@a", role="worker", at=now - timedelta(minutes=5), detail={}))
    session.flush()
    verdict = worker_health(session, now=now)
    assert (verdict.ok, verdict.detail) == (False, "the last worker heartbeat (celery@a) is 300 s old")
    session.add(Heartbeat(name="celery@b", role="worker", at=now - timedelta(seconds=20), detail={}))
    session.flush()
    assert worker_health(session, now=now).ok


def test_beat_health_reads_the_lock_holders_heartbeat_only(session: Session) -> None:
    now = utcnow()
    session.add(Heartbeat(name="beat@b:2", role="beat-standby", at=now, detail={}))
    session.flush()
    assert beat_health(session, now=now).detail == "no beat holds the lock (none has ticked as the leader)"
    session.add(Heartbeat(name="beat@a:1", role="beat", at=now - timedelta(seconds=90), detail={}))
    session.flush()
    assert not beat_health(session, now=now).ok
    assert beat_health(session, now=now - timedelta(seconds=60)).ok


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Database]]:
    """A database of the CLI's own (it opens its own connections)."""
    url = f"sqlite:///{tmp_path / 'health.sqlite3'}"
    database = Database(url)
    schema.upgrade(database.engine)
    env = {
        "RAPPORT_ENV": "test",
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_VAR_DIR": str(tmp_path / "var"),
        "RAPPORT_SECRET_KEY": "x" * 40,
        "RAPPORT_BROKER_URL": "memory://",
    }
    yield env, database
    database.dispose()
    reset_databases()


def test_the_health_command_exits_non_zero_when_unhealthy(cli_env: tuple[dict[str, str], Database]) -> None:
    env, database = cli_env
    runner = CliRunner()
    for role in ("worker", "beat"):
        result = runner.invoke(cli, ["health", role, "--no-ping"], env=env)
        assert result.exit_code == 1, result.output
        assert f"{role}: UNHEALTHY" in result.output
    with database.unit_of_work() as session:
        session.add(Heartbeat(name="worker-1@host", role="worker", at=utcnow(), detail={}))
        session.add(Heartbeat(name="beat@host:1", role="beat", at=utcnow(), detail={}))
    for role in ("worker", "beat"):
        result = runner.invoke(cli, ["health", role, "--no-ping"], env=env)
        assert result.exit_code == 0, result.output
        assert f"{role}: ok" in result.output


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.sockets
def test_the_web_health_command_asks_healthz(cli_env: tuple[dict[str, str], Database]) -> None:
    env, _ = cli_env
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        ok = CliRunner().invoke(cli, ["health", "web", "--url", url], env=env)
        assert (ok.exit_code, ok.output.strip()) == (0, f"web: ok: {url}/healthz answered 200")
        missing = CliRunner().invoke(cli, ["health", "web", "--url", f"{url}/nowhere"], env=env)
        assert missing.exit_code == 1
        assert "answered 404" in missing.output
    finally:
        server.shutdown()
        server.server_close()
    down = CliRunner().invoke(cli, ["health", "web", "--url", url], env=env)
    assert down.exit_code == 1
    assert "did not answer" in down.output
