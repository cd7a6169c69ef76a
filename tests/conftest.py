"""Shared fixtures: settings, a database migrated once per session, one rolled-back transaction per test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine

from services import schema
from services.config import Settings
from services.db import Database, make_engine, reset_databases

# Tests check behaviour, not speed (benchmarks do that): no per-example deadline, which a busy machine would miss.
hypothesis_settings.register_profile("rapport", deadline=None)
hypothesis_settings.load_profile("rapport")

TEST_SECRET = "test-secret-key-that-is-long-enough-for-production-rules"


def build_settings(var_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: everything local, nothing from the developer's environment."""
    var_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "env": "test",
        "var_dir": var_dir,
        "database_url": f"sqlite:///{var_dir / 'rapport.sqlite3'}",
        "broker_url": "memory://",
        "secret_key": TEST_SECRET,
        "base_url": "http://rapport.test",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Quick-tier settings: SQLite in a per-process temporary folder."""
    return build_settings(tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="session")
def engine(test_settings: Settings) -> Iterator[Engine]:
    """The test database, migrated once per session (per xdist worker)."""
    eng = make_engine(test_settings.database_url)
    schema.upgrade(eng)
    yield eng
    eng.dispose()
    reset_databases()


@pytest.fixture
def db(engine: Engine) -> Iterator[Database]:
    """A Database whose every session joins one outer transaction, rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield Database.bound_to(connection)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def session(db: Database) -> Iterator[Any]:
    """A session inside the test's outer transaction."""
    with db.session() as s:
        yield s


@pytest.fixture
def app(test_settings: Settings, db: Database) -> Any:
    """The Flask app on the test database."""
    from web.app import create_app

    application = create_app(settings=test_settings, database=db)
    application.config.update(TESTING=True)
    return application


@pytest.fixture
def client(app: Any) -> Any:
    """A test client for the app."""
    return app.test_client()


_real_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def _no_stray_sockets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick-tier tests may not open network sockets: anything real belongs in the integration tier."""
    if any(request.node.get_closest_marker(m) for m in ("integration", "e2e", "fault", "sockets")):
        return

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"quick-tier test tried to open a socket to {address!r}; mark it or fix it")
        return _real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
