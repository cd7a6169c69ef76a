"""The outbox end to end: a notification written in a transaction is delivered by a real worker over SMTP."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from sqlalchemy import select

from services.config import PROJECT_ROOT, Settings
from services.db import Database
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from tests.integration.conftest import SmtpSink, WorkerProcess, settings_env, wait_for
from workers.enqueue import send_notification_after_commit


def _status(db: Database, notification_id: int) -> str:
    with db.session() as s:
        row = s.get(Notification, notification_id)
        assert row is not None
        return row.status


def _queue(db: Database, address: str) -> int:
    with db.unit_of_work() as session:
        row = queue_notification(session, channel="email", template="test_message", to_address=address)
        send_notification_after_commit(session, row.id)
        return row.id


def test_notification_committed_in_a_transaction_is_delivered_by_the_worker(
    it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    notification_id = _queue(it_db, "ops-one@example.test")
    wait_for(lambda: smtp.to("ops-one@example.test"), what="the message at the SMTP server")
    wait_for(lambda: _status(it_db, notification_id) == "sent", what="status sent")
    [message] = smtp.to("ops-one@example.test")
    assert message["Subject"] == "Rapport test message"
    assert message["X-Rapport-Notification"] == str(notification_id)


def test_rolled_back_transaction_sends_nothing(
    it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    address = "never@example.test"
    try:
        with it_db.unit_of_work() as session:
            row = queue_notification(session, channel="email", template="test_message", to_address=address)
            send_notification_after_commit(session, row.id)
            raise RuntimeError("the request failed after writing")
    except RuntimeError:
        pass
    # A later message proves the worker is draining the queue; the rolled-back one never arrives.
    _queue(it_db, "after-rollback@example.test")
    wait_for(lambda: smtp.to("after-rollback@example.test"), what="the follow-up message")
    assert smtp.to(address) == []
    with it_db.session() as s:
        assert s.scalar(select(Notification).where(Notification.to_address == address)) is None


def test_pending_while_worker_is_down_then_reconcile_delivers_exactly_once(
    it_db: Database, it_settings: Settings, worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    worker.stop()
    address = "while-down@example.test"
    with it_db.unit_of_work() as session:
        # Written without an after-commit publish: as if the broker had been unreachable at commit time.
        row = queue_notification(session, channel="email", template="test_message", to_address=address)
        notification_id = row.id
    assert _status(it_db, notification_id) == "pending"
    worker.start()
    # Nothing re-drives it until reconcile runs.
    assert _status(it_db, notification_id) == "pending"
    for _ in range(2):  # a second reconcile, or beat and an operator together, must not send twice
        out = subprocess.run(
            [sys.executable, "-m", "web.cli", "reconcile"],
            cwd=PROJECT_ROOT,
            env=settings_env(it_settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "notifications=" in out.stdout
    wait_for(lambda: _status(it_db, notification_id) == "sent", what="status sent after reconcile")
    wait_for(lambda: smtp.to(address), what="delivery after reconcile")
    # Give a duplicate, if there were one, time to arrive; then there must be exactly one.
    _queue(it_db, "barrier@example.test")
    wait_for(lambda: smtp.to("barrier@example.test"), what="a later message")
    assert len(smtp.to(address)) == 1
    with it_db.session() as s:
        row = s.get(Notification, notification_id)
        assert row is not None
        assert row.attempts == 1
