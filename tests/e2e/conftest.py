"""Browser tier: a live Rapport server in a thread (SQLite, in-memory broker) and Debian's Chromium via Playwright.

Everything under tests/e2e is marked e2e. Screenshots land in var/screenshots/.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from services import schema
from services.config import PROJECT_ROOT, Settings
from services.db import Database, utcnow
from services.surveys.invitations import issue_token
from services.surveys.models import Invitation
from tests.conftest import build_settings
from tests.factories import make_appointment, make_client, make_episode

HERE = Path(__file__).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e drives a browser."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """The app served over HTTP on a local port, and its database."""

    url: str
    settings: Settings
    database: Database


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real HTTP server (werkzeug, threaded) on 127.0.0.1 for the whole session."""
    from web.app import create_app

    var_dir = tmp_path_factory.mktemp("e2e-var")
    port = free_port()
    settings = build_settings(
        var_dir, base_url=f"http://127.0.0.1:{port}", token_rate_limit="10000 per minute", broker_url="memory://"
    )
    database = Database(settings.database_url)
    schema.upgrade(database.engine)
    app = create_app(settings=settings, database=database)
    server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield LiveServer(url=settings.base_url, settings=settings, database=database)
    server.shutdown()
    thread.join(timeout=5)
    database.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh 390-px-wide touch screen (its own cookies)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where screenshots are kept for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


class SurveySite(Protocol):
    """A served Rapport: where it answers and its database (LiveServer and the accessibility test's site)."""

    url: str
    database: Database


def make_survey_link(
    server: SurveySite, instruments: tuple[str, ...], *, language: str = "en", goals: tuple[str, ...] = ()
) -> str:
    """A sent invitation with a fresh link; returns the link's URL."""
    with server.database.unit_of_work() as session:
        person = make_client(session, first_name="Alexa", language=language)
        episode = make_episode(session, client=person, goals=list(goals))
        appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(hours=3))
        invitation = Invitation(
            episode_id=episode.id,
            appointment_id=appointment.id,
            phase="pre",
            instruments=list(instruments),
            channel="email",
            status="sent",
            sent_at=utcnow(),
            expires_at=utcnow() + timedelta(days=1),
        )
        session.add(invitation)
        session.flush()
        raw = issue_token(session, invitation, purpose="email")
    return f"{server.url}/s/{raw}"
