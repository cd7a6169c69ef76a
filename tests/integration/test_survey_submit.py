"""The survey against real PostgreSQL, Redis and a Celery worker: answers stored and scored, then evaluated.

Also on PostgreSQL: replayed, expired and tampered links get their pages, and two racing submits store once.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from services.config import Settings
from services.db import Database, utcnow
from services.surveys.invitations import issue_token
from services.surveys.models import Administration, Invitation
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.integration.conftest import WorkerProcess, wait_for

STATE = re.compile(r'name="state" value="([^"]+)"')
PHQ9 = {f"phq9_{i}": "1" for i in range(1, 10)}
GAD7 = {f"gad7_{i}": "2" for i in range(1, 8)}
GOALS = {"goal_1": "6", "goal_2": "3"}


@pytest.fixture(scope="module")
def survey_app(it_settings: Settings, it_db: Database, celery_publisher: Any) -> Flask:
    """The web app on the integration database, publishing to the test Redis."""
    from web.app import create_app

    # The publisher is process-wide and already points at these settings: building the app must not reset it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workers.app.configure", lambda settings: celery_publisher)
        app = create_app(settings=it_settings.with_overrides(token_rate_limit="1000 per minute"), database=it_db)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def browser(survey_app: Flask) -> Iterator[FlaskClient]:
    """A client's browser."""
    with survey_app.test_client() as client:
        yield client


def new_link(
    db: Database,
    instruments: tuple[str, ...] = ("PHQ-9", "GAD-7", "GOAL-PROGRESS"),
    *,
    expires_in: timedelta = timedelta(days=1),
) -> tuple[int, str]:
    """A sent invitation with one link, committed; returns its id and the link's path."""
    with db.unit_of_work() as session:
        clinician = make_user(session, role="clinician")
        person = make_client(session, first_name="Integra")
        episode = make_episode(session, client=person, clinician=clinician, goals=["Sleep", "Walk daily"])
        appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(hours=4))
        invitation = Invitation(
            episode_id=episode.id,
            appointment_id=appointment.id,
            phase="pre",
            instruments=list(instruments),
            channel="email",
            status="sent",
            sent_at=utcnow(),
            expires_at=utcnow() + expires_in,
        )
        session.add(invitation)
        session.flush()
        raw = issue_token(session, invitation, purpose="email")
        return invitation.id, f"/s/{raw}"


def state(html: str) -> str:
    match = STATE.search(html)
    assert match, html[:500]
    return match.group(1)


def walk_to_last_step(browser: FlaskClient, path: str) -> str:
    """Answer the first two steps; returns the page of the last one."""
    html = browser.get(path).get_data(as_text=True)
    for answers in (PHQ9, GAD7):
        response = browser.post(path, data={"state": state(html), "lang": "en", "action": "next", **answers})
        assert response.status_code == 200
        html = response.get_data(as_text=True)
    return html


def administrations(db: Database, invitation_id: int) -> list[Administration]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Administration).where(Administration.invitation_id == invitation_id).order_by(Administration.id)
            )
        )


def test_submitting_stores_answers_and_scores_and_the_worker_evaluates_them(
    browser: FlaskClient, it_db: Database, running_worker: WorkerProcess
) -> None:
    invitation_id, path = new_link(it_db)
    html = walk_to_last_step(browser, path)
    started = time.monotonic()
    response = browser.post(path, data={"state": state(html), "lang": "en", "action": "next", **GOALS})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "Thank you, Integra." in response.get_data(as_text=True)
    assert elapsed < 2.0  # the publish to Redis is fire-and-forget after the commit
    rows = administrations(it_db, invitation_id)
    assert [(row.instrument_code, row.total) for row in rows] == [
        ("PHQ-9", 9.0),
        ("GAD-7", 14.0),
        ("GOAL-PROGRESS", 4.5),
    ]
    assert rows[0].scores["band"] == {"en": "Mild", "es": "Leve"}
    assert rows[1].scores["clinical"] is True

    def evaluated() -> bool:
        return all(row.evaluated_at is not None for row in administrations(it_db, invitation_id))

    wait_for(evaluated, timeout=30, what="the worker to evaluate every administration (alerts.evaluate)")
    with it_db.session() as session:
        invitation = session.get(Invitation, invitation_id)
        assert invitation is not None
        assert invitation.status == "completed"


def test_replayed_expired_and_tampered_links_get_their_pages(browser: FlaskClient, it_db: Database) -> None:
    invitation_id, path = new_link(it_db, ("GAD-7",))
    page = browser.get(path).get_data(as_text=True)
    data = {"state": state(page), "lang": "en", "action": "next", **GAD7}
    assert browser.post(path, data=data).status_code == 200
    replay = browser.post(path, data=data)
    assert replay.status_code == 410
    assert "These answers were already sent" in replay.get_data(as_text=True)
    assert len(administrations(it_db, invitation_id)) == 1

    _expired_id, expired_path = new_link(it_db, ("GAD-7",), expires_in=timedelta(seconds=-1))
    expired = browser.get(expired_path)
    assert expired.status_code == 410
    assert "This link has expired" in expired.get_data(as_text=True)

    tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
    response = browser.get(tampered)
    assert response.status_code == 404
    assert "This link is not valid" in response.get_data(as_text=True)


def test_two_racing_submits_store_the_answers_once(survey_app: Flask, it_db: Database) -> None:
    invitation_id, path = new_link(it_db, ("GAD-7", "PHQ-9"))
    with survey_app.test_client() as first:
        html = first.get(path).get_data(as_text=True)
        html = first.post(path, data={"state": state(html), "lang": "en", **GAD7}).get_data(as_text=True)
    data = {"state": state(html), "lang": "en", "action": "next", **PHQ9}
    barrier = threading.Barrier(4)
    codes: list[int] = []
    lock = threading.Lock()

    def submit() -> None:
        with survey_app.test_client() as client:
            barrier.wait()
            code = client.post(path, data=data).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [200, 410, 410, 410]
    assert [row.instrument_code for row in administrations(it_db, invitation_id)] == ["GAD-7", "PHQ-9"]


def test_the_thank_you_page_does_not_wait_for_a_broker_that_is_down(
    it_settings: Settings, it_db: Database, celery_publisher: Any
) -> None:
    from web.app import create_app
    from workers.app import configure

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens here once the probe closes
    app = create_app(
        settings=it_settings.with_overrides(broker_url=f"redis://127.0.0.1:{dead}/0", token_rate_limit="1000/minute"),
        database=it_db,
    )
    try:
        invitation_id, path = new_link(it_db)
        with app.test_client() as client:
            html = walk_to_last_step(client, path)
            started = time.monotonic()
            response = client.post(path, data={"state": state(html), "lang": "en", "action": "next", **GOALS})
            elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert len(administrations(it_db, invitation_id)) == 3  # stored; reconcile re-drives the evaluation
        assert elapsed < 1.0, f"the thank-you page took {elapsed:.1f}s with the broker down"
    finally:
        configure(it_settings)  # the publisher is process-wide: point it back at the test Redis
