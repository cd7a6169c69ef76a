"""Several people at once on the embedded default: `rapport run` (SQLite, filesystem broker) without a server error.

Three clinicians open charts and save session ratings, the front desk hands out survey links through the API, three
clients answer them step by step, staff sign in and out every few seconds, and the worker and beat write beside
them, for RAPPORT_CONCURRENCY_SECONDS (default 35). Every request must get an answer below 500, the log must hold
no "database is locked" and no traceback, and every survey a client finished must be stored and evaluated.
"""

from __future__ import annotations

import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.accounts.models import Role, User
from services.clients.models import Appointment, Episode
from services.db import Database
from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD
from services.surveys.models import Administration, Invitation
from tests.embedded import Browser, Embedded, embedded_instance, post_forms

DURATION = float(os.environ.get("RAPPORT_CONCURRENCY_SECONDS", "35"))


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """A fresh `rapport run` with the demo practice."""
    with embedded_instance(tmp_path_factory.mktemp("embedded") / "var") as instance:
        yield instance


def _api_token(instance: Embedded, email: str) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "rapport"), "api-token", "create", "--email", email, "--scope", "write"],
        env=instance.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


def _answer_everything(browser: Browser, link: str) -> bool:
    """Answer each step of a survey with the first choice of every question; True when the thank-you page came."""
    page = browser.get(link)
    for _step in range(12):
        forms = [f for f in post_forms(page.text) if "state" in f[1]]
        if page.status != 200 or not forms:
            return page.status == 200 and "state" not in page.text
        _action, _hidden, choices = forms[0]
        values = {name: options[0] for name, options in choices.items()}
        page = browser.submit(page, {**values, "action": "next"}, form=post_forms(page.text).index(forms[0]))
    return False


class Mix:
    """The threads of mixed use and what they did."""

    def __init__(self, instance: Embedded, database: Database) -> None:
        self.instance = instance
        self.database = database
        self.deadline = time.monotonic() + DURATION
        self.browsers: list[Browser] = []
        self.links: queue.Queue[tuple[int, str]] = queue.Queue()
        self.finished: list[int] = []
        self.ratings_saved = 0
        self.logins = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def browser(self) -> Browser:
        browser = Browser(self.instance.url)
        with self.lock:
            self.browsers.append(browser)
        return browser

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def guarded(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except Exception as exc:  # a broken connection or an unexpected page: reported, not swallowed
                with self.lock:
                    self.failures.append(f"{getattr(body, '__name__', 'thread')}: {exc!r}")

        return run

    def clinician(self, email: str) -> Callable[[], None]:
        def clinician_at_work() -> None:
            browser = self.browser()
            assert browser.login(email, DEMO_PASSWORD).status == 200
            with self.database.read_only_session() as session:
                me = session.scalar(select(User.id).where(User.email == email))
                rows = session.execute(
                    select(Appointment.id, Episode.client_id)
                    .join(Episode, Episode.id == Appointment.episode_id)
                    .where(Episode.clinician_id == me, Appointment.starts_at < datetime.now(UTC) - timedelta(hours=1))
                    .order_by(Appointment.starts_at.desc())
                ).all()
            for appointment_id, client_id in rows:
                if not self.running():
                    break
                browser.get("/clinician/")
                browser.get(f"/clinician/clients/{client_id}/chart")
                form = browser.get(f"/clinician/sessions/{appointment_id}/partnership")
                if form.status != 200 or not post_forms(form.text):
                    continue
                choices = post_forms(form.text)[-1][2]
                saved = browser.submit(form, {name: options[len(options) // 2] for name, options in choices.items()})
                if saved.status == 200 and "/chart" in saved.url:
                    with self.lock:
                        self.ratings_saved += 1

        return clinician_at_work

    def front_desk(self, token: str) -> None:
        browser = self.browser()
        with self.database.read_only_session() as session:
            episodes = list(session.scalars(select(Episode.id).where(Episode.ended_on.is_(None)).limit(40)))
        rng = random.Random(11)
        while self.running():
            starts = (datetime.now(UTC) + timedelta(minutes=rng.randint(30, 600))).isoformat()
            status, body = browser.api(
                "POST",
                "/api/v1/appointments",
                token,
                {"episode_id": rng.choice(episodes), "starts_at": starts, "duration_minutes": 50},
            )
            if status != 201:
                continue
            status, handed = browser.api("POST", f"/api/v1/appointments/{body['id']}/link", token)
            if status == 201:
                self.links.put((handed["invitation"]["id"], handed["link"]))
            time.sleep(0.2)

    def client_answering(self) -> None:
        browser = self.browser()
        while self.running():
            try:
                invitation_id, link = self.links.get(timeout=1)
            except queue.Empty:
                continue
            if _answer_everything(browser, link):
                with self.lock:
                    self.finished.append(invitation_id)

    def signing_in(self) -> None:
        emails = list(DEMO_LOGINS.values())
        while self.running():
            browser = self.browser()
            home = browser.login(random.choice(emails), DEMO_PASSWORD)
            if home.status == 200:
                with self.lock:
                    self.logins += 1
                logout = [i for i, f in enumerate(post_forms(home.text)) if f[0].endswith("/logout")]
                if logout:
                    browser.submit(home, {}, form=logout[0])
            time.sleep(1.5)


def test_mixed_use_on_the_embedded_default_gets_no_server_error(embedded: Embedded) -> None:
    database = Database(embedded.database_url)
    token = _api_token(embedded, DEMO_LOGINS["front_desk"])
    with database.read_only_session() as session:
        clinicians = list(
            session.scalars(select(User.email).where(User.role == Role.CLINICIAN.value).order_by(User.id).limit(3))
        )
    mix = Mix(embedded, database)
    bodies: list[Callable[[], None]] = [mix.clinician(email) for email in clinicians]
    bodies += [lambda: mix.front_desk(token), mix.signing_in] + [mix.client_answering] * 3
    threads = [threading.Thread(target=mix.guarded(body)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION + 120)

    statuses = [row for browser in mix.browsers for row in browser.statuses]
    errors = [row for browser in mix.browsers for row in browser.server_errors()]
    print(
        f"\nmixed use for {DURATION:.0f}s: {len(statuses)} requests, {len(errors)} server errors, "
        f"{mix.logins} sign-ins, {mix.ratings_saved} ratings saved, {len(mix.finished)} surveys finished"
    )
    assert not mix.failures, mix.failures
    assert errors == []
    assert mix.ratings_saved >= 3, "the clinicians saved (almost) no ratings"
    assert mix.logins >= 3
    assert len(mix.finished) >= 3, "the clients finished (almost) no surveys"

    def stored_and_evaluated() -> bool:
        with database.read_only_session() as session:
            completed = session.scalar(
                select(func.count())
                .select_from(Invitation)
                .where(Invitation.id.in_(mix.finished), Invitation.status == "completed")
            )
            waiting = session.scalar(
                select(func.count())
                .select_from(Administration)
                .where(Administration.invitation_id.in_(mix.finished), Administration.evaluated_at.is_(None))
            )
            return completed == len(mix.finished) and waiting == 0

    deadline = time.monotonic() + 90
    while not stored_and_evaluated():
        assert time.monotonic() < deadline, "finished surveys were not all stored and evaluated within 90 s"
        time.sleep(1)
    log = embedded.log()
    print(f"rapport run log: {log.count('database is locked')} lines with 'database is locked' ({embedded.log_path})")
    assert log.count("database is locked") == 0
    assert "Traceback" not in log, log[log.index("Traceback") - 500 : log.index("Traceback") + 3000]
    database.dispose()
