"""A send that a crash interrupts is sent again with the same id and a higher attempt number (at least once, with a
stable id the receiver can deduplicate)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from services.alerts.operations import (
    STALE_EVALUATION,
    Attempt,
    begin_evaluation_attempt,
    record_evaluation_failure,
)
from services.config import Settings
from services.db import Database, utcnow
from services.notifications.channels import sms_signature
from services.notifications.delivery import Outcome, deliver_notification
from services.notifications.models import Notification
from services.notifications.operations import (
    CLAIM_MARGIN,
    STALE_CLAIM,
    claim_notification,
    mark_attempt_failed,
    queue_notification,
    stale_claim_after,
)
from services.ops.liveness import PROCESS_DEAD_AFTER, PROCESS_ROLE
from services.ops.models import Heartbeat
from services.ops.reconcile import find_pending
from tests.factories import make_episode
from tests.unit.alerts.series import submit_phq9


def died_mid_send(db: Database, notification_id: int) -> None:
    """Leave the row as a worker killed after handing the message over leaves it: sending, claim gone stale."""
    with db.unit_of_work() as session:
        session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(status="sending", claimed_at=utcnow() - STALE_CLAIM - timedelta(seconds=1))
        )


def test_an_email_sent_again_keeps_its_message_id_and_counts_the_attempt(db: Database, test_settings: Settings) -> None:
    with db.unit_of_work() as session:
        row = queue_notification(session, channel="email", template="test_message", to_address="ops@example.test")
    path = test_settings.outbox_dir / f"email-{row.id:08d}.eml"
    assert deliver_notification(db, test_settings, row.id) is Outcome.SENT
    first = message_from_bytes(path.read_bytes())
    died_mid_send(db, row.id)
    assert deliver_notification(db, test_settings, row.id) is Outcome.SENT
    again = message_from_bytes(path.read_bytes())
    assert first["Message-ID"] == again["Message-ID"] == f"<rapport-notification-{row.id}@rapport.invalid>"
    assert (first["X-Rapport-Attempt"], again["X-Rapport-Attempt"]) == ("1", "2")


class Gateway(BaseHTTPRequestHandler):
    """An SMS gateway of the test's own that records each call's headers and body."""

    calls: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.calls.append((dict(self.headers), body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()


@pytest.mark.sockets
def test_an_sms_sent_again_keeps_its_idempotency_key_and_counts_the_attempt(
    db: Database, test_settings: Settings, gateway: str
) -> None:
    settings = test_settings.with_overrides(sms_backend="webhook", sms_webhook_url=gateway, sms_webhook_secret="s3")
    with db.unit_of_work() as session:
        row = queue_notification(session, channel="sms", template="test_message", to_address="+44 7700 900001")
    assert deliver_notification(db, settings, row.id) is Outcome.SENT
    died_mid_send(db, row.id)
    assert deliver_notification(db, settings, row.id) is Outcome.SENT
    assert len(Gateway.calls) == 2
    (first, first_body), (again, again_body) = Gateway.calls
    assert first["Idempotency-Key"] == again["Idempotency-Key"] == f"rapport-{row.id}"
    assert (first["X-Rapport-Attempt"], again["X-Rapport-Attempt"]) == ("1", "2")
    assert json.loads(first_body)["id"] == json.loads(again_body)["id"] == f"rapport-{row.id}"
    assert again["X-Rapport-Signature"] == "sha256=" + sms_signature("s3", again_body)


def test_a_sending_claim_is_re_driven_just_after_the_send_tasks_hard_time_limit(
    session: Session, test_settings: Settings
) -> None:
    row = queue_notification(session, channel="email", template="test_message", to_address="ops@example.test")
    now = utcnow()
    stale = stale_claim_after(test_settings.task_time_limit)
    assert stale == timedelta(seconds=test_settings.task_time_limit) + CLAIM_MARGIN  # minutes, not a fixed ten
    assert claim_notification(session, row.id, now=now, stale_after=stale)
    limit = now + timedelta(seconds=test_settings.task_time_limit)
    assert not claim_notification(session, row.id, now=limit, stale_after=stale)  # its task may still be running

    def pending_at(at: datetime) -> list[int]:
        return find_pending(session, grace=timedelta(0), max_attempts=5, now=at, stale_claim=stale).notifications

    assert row.id not in pending_at(limit)
    later = now + stale + timedelta(seconds=1)
    assert row.id in pending_at(later)
    assert claim_notification(session, row.id, now=later, stale_after=stale)


def _heartbeat(session: Session, name: str, at: datetime) -> None:
    session.add(Heartbeat(name=name, role=PROCESS_ROLE, at=at, detail={}))
    session.flush()


def test_a_claim_of_a_process_whose_heartbeat_went_quiet_is_re_driven_and_counted_as_unknown(
    session: Session,
) -> None:
    row = queue_notification(session, channel="email", template="test_message", to_address="ops@example.test")
    now = utcnow()
    assert claim_notification(session, row.id, now=now, claimed_by="host-a:111")
    _heartbeat(session, "host-a:111", now)

    def pending_at(at: datetime) -> list[int]:
        return find_pending(session, grace=timedelta(0), max_attempts=5, now=at).notifications

    alive = now + PROCESS_DEAD_AFTER - timedelta(seconds=1)
    assert row.id not in pending_at(alive)  # its process still beats (or only just stopped)
    assert not claim_notification(session, row.id, now=alive, claimed_by="host-b:222")
    quiet = now + PROCESS_DEAD_AFTER + timedelta(seconds=1)
    assert quiet - now < STALE_CLAIM  # well before the send task's hard time limit
    assert row.id in pending_at(quiet)
    assert claim_notification(session, row.id, now=quiet, claimed_by="host-b:222")
    session.refresh(row)
    # The first attempt's outcome is unknown: the outbox says "sent at least once" from now on.
    assert (row.status, row.claimed_by, row.attempts, row.unknown_attempts) == ("sending", "host-b:222", 2, 1)


def test_a_failed_attempt_sent_again_is_not_counted_as_unknown(db: Database, test_settings: Settings) -> None:
    with db.unit_of_work() as session:
        row = queue_notification(session, channel="email", template="test_message", to_address="ops@example.test")
    with db.unit_of_work() as session:
        assert claim_notification(session, row.id, claimed_by="host-a:1")
    with db.unit_of_work() as session:  # as the worker records an SMTP refusal: the outcome is known
        assert mark_attempt_failed(session, row.id, error="421 try later", retry=True, max_attempts=5) == "pending"
    assert deliver_notification(db, test_settings, row.id) is Outcome.SENT
    with db.session() as session:
        sent = session.get(Notification, row.id)
        assert sent is not None
        assert (sent.status, sent.attempts, sent.unknown_attempts) == ("sent", 2, 0)


def test_an_evaluation_claimed_by_a_live_process_is_left_alone_and_a_dead_ones_is_taken(session: Session) -> None:
    episode = make_episode(session)
    row = submit_phq9(session, episode, 5, week=0)
    now = utcnow()
    assert begin_evaluation_attempt(session, row.id, max_attempts=5, claimed_by="host-a:111", now=now) is Attempt.GO
    _heartbeat(session, "host-a:111", now)

    def pending_at(at: datetime) -> list[int]:
        return find_pending(session, grace=timedelta(0), max_attempts=5, now=at).administrations

    alive = now + timedelta(seconds=30)
    assert row.id not in pending_at(alive)
    assert begin_evaluation_attempt(session, row.id, max_attempts=5, claimed_by="b:2", now=alive) is Attempt.CLAIMED
    quiet = now + PROCESS_DEAD_AFTER + timedelta(seconds=1)
    assert quiet - now < STALE_EVALUATION
    assert row.id in pending_at(quiet)
    assert begin_evaluation_attempt(session, row.id, max_attempts=5, claimed_by="b:2", now=quiet) is Attempt.GO
    session.refresh(row)
    assert (row.eval_claimed_by, row.eval_attempts) == ("b:2", 2)
    # A failure releases the claim, so the next pass re-drives it without waiting for anyone's heartbeat.
    record_evaluation_failure(session, row.id, error="boom", max_attempts=5)
    assert row.id in pending_at(quiet)


def test_an_evaluation_claim_with_no_heartbeat_waits_out_the_tasks_hard_time_limit(session: Session) -> None:
    row = submit_phq9(session, make_episode(session), 5, week=0)
    now = utcnow()
    assert begin_evaluation_attempt(session, row.id, max_attempts=5, claimed_by="cli:1", now=now) is Attempt.GO
    before = now + STALE_EVALUATION - timedelta(seconds=1)
    after = now + STALE_EVALUATION + timedelta(seconds=1)
    assert row.id not in find_pending(session, grace=timedelta(0), max_attempts=5, now=before).administrations
    assert row.id in find_pending(session, grace=timedelta(0), max_attempts=5, now=after).administrations
