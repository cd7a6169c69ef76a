"""Every role's ordinary day in a real browser, on the embedded default started the way `make run` starts it.

One `rapport run` (SQLite, the filesystem broker, gunicorn, a Celery worker and beat, the demo practice) serves the
whole module. Each journey signs in through the login page, and at the end the gunicorn access log must show no
server error at all. Screenshots of each home page land in var/screenshots/ for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.accounts.models import User
from services.clients.models import Appointment, Episode
from services.db import Database
from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD
from tests.embedded import Embedded, embedded_instance

# gunicorn's access log line: ... "GET /path HTTP/1.1" 200 ...
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')
HOMES = {
    "front_desk": "/frontdesk/",
    "clinician": "/clinician/",
    "supervisor": "/supervisor/",
    "manager": "/manager/",
    "admin": "/admin/",
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """`rapport run` with the demo practice; afterwards, its access log must hold no 5xx."""
    with embedded_instance(tmp_path_factory.mktemp("daily") / "var") as instance:
        yield instance
        log = instance.log()
        requests = [m.groupdict() for m in ACCESS_LINE.finditer(log)]
        server_errors = [r for r in requests if r["status"].startswith("5")]
        print(f"\naccess log: {len(requests)} requests, {len(server_errors)} server errors")
        assert requests, "the access log recorded no request"
        assert server_errors == []
        assert "database is locked" not in log
        assert "Traceback" not in log


@pytest.fixture(scope="module")
def database(embedded: Embedded) -> Iterator[Database]:
    """The instance's SQLite database, for picking ids the way a person picks them from a list."""
    db = Database(embedded.database_url)
    yield db
    db.dispose()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    """A desktop browser window with its own cookies."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Any, url: str, email: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login form."""
    page.goto(f"{url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', password)
    with page.expect_navigation():
        page.click('button[type="submit"]')


@pytest.mark.parametrize("role", list(HOMES))
def test_each_role_signs_in_and_reaches_home(embedded: Embedded, desk: Any, screenshots: Path, role: str) -> None:
    sign_in(desk, embedded.url, DEMO_LOGINS[role])
    assert desk.url == f"{embedded.url}{HOMES[role]}"
    assert desk.locator("h1").first.is_visible()
    desk.screenshot(path=str(screenshots / f"home-{role}.png"), full_page=True)


def test_twenty_session_ratings_in_a_row(embedded: Embedded, database: Database, desk: Any) -> None:
    email = DEMO_LOGINS["clinician"]
    with database.read_only_session() as session:
        me = session.scalar(select(User.id).where(User.email == email))
        sessions = list(
            session.scalars(
                select(Appointment.id)
                .join(Episode, Episode.id == Appointment.episode_id)
                .where(
                    Episode.clinician_id == me,
                    Appointment.status != "cancelled",
                    Appointment.starts_at < datetime.now(UTC) - timedelta(hours=1),
                )
                .order_by(Appointment.starts_at.desc())
            )
        )
    sign_in(desk, embedded.url, email)
    saved = 0
    for appointment_id in sessions:
        if saved == 20:
            break
        desk.goto(f"{embedded.url}/clinician/sessions/{appointment_id}/partnership")
        if desk.locator("form.rating-form").count() == 0:
            continue  # already rated in the demo, or not a session that took place
        for index, fieldset in enumerate(desk.locator("form.rating-form fieldset").all()):
            fieldset.locator(f'label.tap:has(input[value="{6 + index % 4}"])').click()
        with desk.expect_navigation():
            desk.click('form.rating-form button[type="submit"]')
        assert "/chart" in desk.url, desk.url
        saved += 1
    assert saved == 20


def test_admin_deactivates_a_user_whose_open_session_then_ends(
    embedded: Embedded, database: Database, browser: Any, desk: Any, screenshots: Path
) -> None:
    with database.read_only_session() as session:
        target = session.scalars(
            select(User).where(User.role == "clinician", User.email != DEMO_LOGINS["clinician"]).order_by(User.id)
        ).first()
        assert target is not None
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    theirs = other.new_page()
    try:
        sign_in(theirs, embedded.url, target.email)
        assert theirs.url.endswith("/clinician/")

        sign_in(desk, embedded.url, DEMO_LOGINS["admin"])
        with desk.expect_navigation():
            desk.click(f'a[href="/admin/users/{target.id}"]')
        with desk.expect_navigation():
            desk.click('button:has-text("Deactivate the account")')
        assert desk.locator("text=Deactivated").first.is_visible()
        desk.screenshot(path=str(screenshots / "admin-deactivated.png"), full_page=True)

        theirs.goto(f"{embedded.url}/clinician/alerts")  # their next click
        assert "/login" in theirs.url
        sign_in(theirs, embedded.url, target.email)
        assert "/login" in theirs.url  # and they cannot sign in again
    finally:
        other.close()
