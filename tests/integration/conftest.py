"""Integration tier: real PostgreSQL, Redis, SMTP (aiosmtpd) and Celery worker processes.

Everything here is session-scoped and started once. A missing PostgreSQL or Redis fails the run, never skips it.
Tests here commit for real (a worker in another process must see the rows), so each test makes its own data.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller

from services import schema
from services.config import PROJECT_ROOT, Settings
from services.db import Database
from tests.conftest import build_settings

PG_HOST = os.environ.get("RAPPORT_TEST_PG_HOST", "127.0.0.1")
REDIS_HOST = os.environ.get("RAPPORT_TEST_REDIS_HOST", "127.0.0.1")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is in the integration tier."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll predicate until it returns something truthy, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"rapport_it_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(
            f"host={PG_HOST} port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable on {PG_HOST}:5432 ({exc}). Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@{PG_HOST}:5432/{name}"
    with psycopg.connect(f"host={PG_HOST} port=5432 user=postgres dbname=postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number of our own (leased, so parallel test sessions never share one), emptied around use."""
    base = f"redis://{REDIS_HOST}:6379"
    control = redis.Redis.from_url(f"{base}/0", socket_connect_timeout=3)
    try:
        control.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable on {REDIS_HOST}:6379 ({exc}). Start it with: "
            'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
        )
    lease = secrets.token_hex(8)
    candidates = [int(os.environ["RAPPORT_TEST_REDIS_DB"])] if "RAPPORT_TEST_REDIS_DB" in os.environ else range(2, 16)
    number = next((n for n in candidates if control.set(f"rapport-test-lease:{n}", lease, nx=True, ex=7200)), None)
    if number is None:
        pytest.fail("every Redis database from 2 to 15 is leased by another test session")
    client = redis.Redis.from_url(f"{base}/{number}", socket_connect_timeout=3)
    client.flushdb()
    yield f"{base}/{number}"
    client.flushdb()
    client.close()
    if control.get(f"rapport-test-lease:{number}") == lease.encode():
        control.delete(f"rapport-test-lease:{number}")
    control.close()


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        """Messages received for address."""
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    """An SMTP server on a free local port for the whole session."""
    port = free_port()
    sink = SmtpSink("127.0.0.1", port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture(scope="session")
def it_settings(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_url: str, smtp: SmtpSink) -> Settings:
    """Settings pointing at the real services."""
    return build_settings(
        tmp_path_factory.mktemp("it-var"),
        database_url=pg_url,
        broker_url=redis_url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        reconcile_grace_seconds=0,
        ratelimit_storage_url=redis_url,
    )


@pytest.fixture(scope="session")
def it_db(it_settings: Settings) -> Iterator[Database]:
    """The migrated integration database."""
    database = Database(it_settings.database_url)
    schema.upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def celery_publisher(it_settings: Settings) -> Any:
    """This process's Celery app, publishing to the test Redis (process-wide: a test that builds an app on settings
    of its own must point it back when done, as tests/integration/test_hostile_everywhere.py does)."""
    from workers.app import configure

    return configure(it_settings)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process load settings equal to these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_") and k not in {"COVERAGE_PROCESS_START"}}
    env.update(
        {
            "RAPPORT_ENV": "test",
            "RAPPORT_VAR_DIR": str(settings.var_dir),
            "RAPPORT_DATABASE_URL": settings.database_url,
            "RAPPORT_BROKER_URL": settings.broker_url,
            "RAPPORT_SECRET_KEY": settings.secret_key,
            "RAPPORT_BASE_URL": settings.base_url,
            "RAPPORT_RECONCILE_GRACE_SECONDS": str(settings.reconcile_grace_seconds),
            "RAPPORT_MAX_ATTEMPTS": str(settings.max_attempts),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.smtp_host:
        env["RAPPORT_SMTP_HOST"] = settings.smtp_host
        env["RAPPORT_SMTP_PORT"] = str(settings.smtp_port)
    return env


class WorkerProcess:
    """A real `celery worker` process that a test can stop, kill and start again."""

    def __init__(self, settings: Settings, log_dir: Path, *, name: str = "it") -> None:
        self.settings = settings
        self.log_path = log_dir / f"worker-{name}.log"
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the worker and wait until it consumes."""
        assert self.proc is None or self.proc.poll() is not None, "worker already running"
        self.starts += 1
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--loglevel=INFO",
            "--pool=prefork",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={self.name}-{self.starts}@%h",
        ]
        marker_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT
            )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            return b" ready." in self.log_path.read_bytes()[marker_offset:]

        wait_for(ready, timeout=60, what="the Celery worker to be ready")

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), as an operator would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run(["pkill", "-KILL", "-P", str(self.proc.pid)], check=False)
            self.proc.kill()
            self.proc.wait()

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def worker(it_settings: Settings, it_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One Celery worker for the whole session (tests that stop it start it again)."""
    proc = WorkerProcess(it_settings, tmp_path_factory.mktemp("logs"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def running_worker(worker: WorkerProcess) -> WorkerProcess:
    """The session worker, restarted if an earlier test left it stopped."""
    if not worker.running:
        worker.start()
    return worker
