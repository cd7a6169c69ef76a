"""Fault tier: real Celery worker and beat processes, a Redis server of our own (stopped, started and flushed on
purpose), a fresh PostgreSQL database and a real SMTP server.

The helpers and the PostgreSQL and SMTP fixtures are those of tests/integration/conftest.py, imported. The Redis
server is not the shared one: it runs on a free port for this package only, so stopping or flushing it can never
touch anyone else's work. Everything here is package-scoped: the worker, Redis and the database are gone before the
next test package starts. Tests commit for real (the worker is another process), so each makes its own data.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select

from services import schema
from services.config import PROJECT_ROOT, Settings
from services.db import Database, reset_databases
from services.surveys.models import Administration
from tests.conftest import build_settings
from tests.integration.conftest import (  # noqa: F401  (pg_url and smtp are fixtures, used by name)
    SmtpSink,
    WorkerProcess,
    free_port,
    pg_url,
    settings_env,
    smtp,
    wait_for,
)

HERE = Path(__file__).parent
# The test beat (tests/fault/fast_beat.py) sends every periodic job this often.
BEAT_PERIOD = 2.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/fault kills or stops something on purpose."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fault)


class RedisServer:
    """A redis-server of our own on a free port: no persistence, stopped and started by the tests."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # No retries: a stopped server must read as stopped at once (redis-py retries with backoff by default).
        self.client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0)
        )

    def start(self) -> None:
        """Start the server (daemonized) and wait until it answers."""
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.workdir),
                "--pidfile",
                str(self.workdir / "redis.pid"),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            check=True,
            timeout=10,
        )
        wait_for(self.answers, timeout=10, what=f"our redis-server on port {self.port}")

    def answers(self) -> bool:
        """True while the server answers a PING."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Shut the server down (no save) and wait until it is gone."""
        if self.answers():
            with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
                self.client.shutdown(nosave=True)
        wait_for(lambda: not self.answers(), timeout=10, what="our redis-server to stop")

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in a Celery queue (all priority lists)."""
        return sum(int(self.client.llen(name)) for name in (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))))


@pytest.fixture(scope="package")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Our own Redis for this package, stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("fault-redis"))
    server.start()
    yield server
    server.stop()
    server.client.close()


@pytest.fixture
def redis_up(fault_redis: RedisServer) -> RedisServer:
    """Our Redis, started again if an earlier test left it stopped."""
    if not fault_redis.answers():
        fault_redis.start()
    return fault_redis


@pytest.fixture(scope="package")
def fault_settings(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,  # noqa: F811  (the imported fixture)
    fault_redis: RedisServer,
    smtp: SmtpSink,  # noqa: F811  (the imported fixture)
) -> Settings:
    """Settings on a fresh PostgreSQL database, our Redis and the test SMTP server; reconcile without grace."""
    return build_settings(
        tmp_path_factory.mktemp("fault-var"),
        database_url=pg_url,
        broker_url=fault_redis.url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        reconcile_grace_seconds=0,
        ratelimit_storage_url="memory://",
        token_rate_limit="1000 per minute",
    )


@pytest.fixture(scope="package")
def fault_db(fault_settings: Settings) -> Iterator[Database]:
    """The migrated fault-tier database."""
    database = Database(fault_settings.database_url)
    schema.upgrade(database.engine)
    yield database
    database.dispose()
    reset_databases()


@pytest.fixture(scope="package")
def fault_publisher(fault_settings: Settings, fault_db: Database) -> Any:
    """This process's Celery app and task runtime, pointed at our Redis and the fault database."""
    from workers import runtime
    from workers.app import configure

    app = configure(fault_settings)
    runtime.use_settings(fault_settings)
    return app


@pytest.fixture(scope="package")
def fault_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where worker and beat logs go (printed on failure by the tests that read them)."""
    return tmp_path_factory.mktemp("fault-logs")


@pytest.fixture(scope="package")
def fault_worker(fault_settings: Settings, fault_db: Database, fault_logs: Path) -> Iterator[WorkerProcess]:
    """One worker for the package (tests that stop or kill it start it again)."""
    proc = WorkerProcess(fault_settings, fault_logs, name="fault")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def worker_up(fault_worker: WorkerProcess, redis_up: RedisServer) -> WorkerProcess:
    """The package's worker, restarted if an earlier test left it stopped or killed."""
    if not fault_worker.running:
        fault_worker.start()
    return fault_worker


class BeatProcess:
    """A real `celery beat` with Rapport's scheduler and the fast test schedule (every job every BEAT_PERIOD s)."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self.settings = settings
        self.name = name
        self.log_path = log_dir / f"beat-{name}.log"
        self.schedule_path = log_dir / f"beat-{name}-schedule"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start beat; it ticks at once (as leader or standby)."""
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.fault.fast_beat",
            "beat",
            "--scheduler",
            "workers.beat:RapportScheduler",
            "--schedule",
            str(self.schedule_path),
            "--max-interval",
            "1",
            "--loglevel=INFO",
        ]
        env = {**settings_env(self.settings), "RAPPORT_TEST_BEAT_SECONDS": str(BEAT_PERIOD)}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        """The beat's process id (its heartbeat is named beat@host:pid)."""
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        """The beat's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def beats(fault_settings: Settings, fault_db: Database, fault_logs: Path) -> Iterator[Callable[[str], BeatProcess]]:
    """Start beat processes by name; every one still running is stopped after the test."""
    started: list[BeatProcess] = []

    def start(name: str) -> BeatProcess:
        proc = BeatProcess(fault_settings, fault_logs, name)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def evaluated(db: Database, administration_ids: list[int]) -> bool:
    """True once every administration has been evaluated."""
    with db.session() as session:
        waiting = session.scalars(
            select(Administration.id).where(
                Administration.id.in_(administration_ids), Administration.evaluated_at.is_(None)
            )
        ).all()
        return not waiting


def waiting_on_a_lock(settings: Settings) -> bool:
    """True while some backend of the test database waits on a row lock (a worker blocked mid-task)."""
    dsn = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        return bool(row and row[0])


def pause(seconds: float) -> None:
    """Let background processes get on with it (used only where a test waits for 'nothing more happens')."""
    time.sleep(seconds)
