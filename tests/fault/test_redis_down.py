"""Redis stops; clients submit their surveys through the web page and still get their thank-you page at once; Redis
comes back; within two reconcile periods every submission is evaluated, once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from services.alerts.models import SignalRecord
from services.config import Settings
from services.db import Database, utcnow
from services.surveys.invitations import issue_token
from services.surveys.models import Administration, Invitation
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.fault.conftest import BEAT_PERIOD, BeatProcess, RedisServer, evaluated
from tests.integration.conftest import WorkerProcess, wait_for

STATE = re.compile(r'name="state" value="([^"]+)"')
PHQ9 = {f"phq9_{i}": "1" for i in range(1, 10)}
SUBMISSIONS = 3


@pytest.fixture
def survey_app(fault_settings: Settings, fault_db: Database, fault_publisher: Any) -> Flask:
    """The web app on the fault database, publishing to our Redis."""
    from web.app import create_app

    app = create_app(settings=fault_settings, database=fault_db)
    app.config.update(TESTING=True)
    return app


def new_link(db: Database) -> tuple[int, str]:
    """A sent one-instrument (PHQ-9) invitation with its link; returns its id and path."""
    with db.unit_of_work() as session:
        clinician = make_user(session, role="clinician", team="Team Outage")
        person = make_client(session, first_name="Outage")
        episode = make_episode(session, client=person, clinician=clinician)
        appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(hours=4))
        invitation = Invitation(
            episode_id=episode.id,
            appointment_id=appointment.id,
            phase="pre",
            instruments=["PHQ-9"],
            channel="email",
            status="sent",
            sent_at=utcnow(),
            expires_at=utcnow() + timedelta(days=1),
        )
        session.add(invitation)
        session.flush()
        return invitation.id, f"/s/{issue_token(session, invitation, purpose='email')}"


def administration_ids(db: Database, invitation_ids: list[int]) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(Administration.id).where(Administration.invitation_id.in_(invitation_ids))))


def test_surveys_submitted_while_redis_is_down_are_evaluated_once_when_it_returns(
    survey_app: Flask,
    fault_db: Database,
    redis_up: RedisServer,
    worker_up: WorkerProcess,
    beats: Callable[[str], BeatProcess],
) -> None:
    beat = beats("outage")
    wait_for(lambda: "sending the schedule" in beat.log(), timeout=30, what="the beat to lead")
    links = [new_link(fault_db) for _ in range(SUBMISSIONS)]
    outage_log = worker_up.log_path.stat().st_size
    redis_up.stop()

    client = survey_app.test_client()
    for _invitation_id, path in links:
        page = client.get(path).get_data(as_text=True)
        match = STATE.search(page)
        assert match, page[:300]
        started = time.monotonic()
        response = client.post(path, data={"state": match.group(1), "lang": "en", "action": "next", **PHQ9})
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert "Thank you, Outage." in response.get_data(as_text=True)
        assert elapsed < 3.0, f"the thank-you page took {elapsed:.1f}s with Redis down"
    ids = administration_ids(fault_db, [invitation_id for invitation_id, _ in links])
    assert len(ids) == SUBMISSIONS  # the answers are committed
    time.sleep(BEAT_PERIOD)
    assert not any(evaluated(fault_db, [i]) for i in ids)  # nothing could carry the work while Redis was down

    redis_up.start()
    # The worker reconnects by itself (broker_connection_max_retries=None); wait until it consumes again.
    wait_for(lambda: consuming_again(worker_up, outage_log), timeout=30, what="a worker consuming again")
    back = time.monotonic()
    wait_for(lambda: evaluated(fault_db, ids), timeout=2 * BEAT_PERIOD + 5, what="every submission evaluated")
    took = time.monotonic() - back
    with fault_db.session() as session:
        attempts = list(session.scalars(select(Administration.eval_attempts).where(Administration.id.in_(ids))))
    # Evaluated once each. A worker that reconnects may also receive a redelivered copy while reconcile's copy
    # runs; the copy waits on the episode lock, counts an attempt, finds the row evaluated and does nothing.
    assert all(1 <= a <= 2 for a in attempts), attempts
    with fault_db.session() as session:
        kinds = list(
            session.execute(
                select(SignalRecord.administration_id, SignalRecord.kind).where(SignalRecord.administration_id.in_(ids))
            )
        )
    assert len(kinds) == len(set(kinds))  # no signal stored twice
    assert took < 2 * BEAT_PERIOD + 5


def consuming_again(worker: WorkerProcess, since: int) -> bool:
    """True once the worker consumes from the broker again: reconnected, or exited and restarted (as systemd would)."""
    if not worker.running:
        worker.start()
        return True
    return b"Connected to redis" in worker.log_path.read_bytes()[since:]
