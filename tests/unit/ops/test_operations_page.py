"""The admin's operations page: the broker queue, waiting work and its oldest item, the scheduler's last runs,
heartbeats, and failures with their reasons; and the filesystem broker's queue depth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.db import utcnow
from services.notifications.models import Notification
from services.ops.models import Heartbeat, JobRun
from services.reporting.models import Report
from tests.conftest import build_settings
from tests.factories import make_episode
from tests.unit.alerts.series import submit_phq9
from workers.tasks.ops import queue_depth


def test_the_page_shows_waiting_work_failures_runs_and_heartbeats(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("admin")
    now = utcnow()
    episode = make_episode(session)
    waiting = submit_phq9(session, episode, 5, week=0)
    failed = submit_phq9(session, episode, 5, week=1)
    failed.eval_failed_at, failed.last_error = now, "gave up after repeated failures: OperationalError('boom')"
    session.add(
        Notification(
            channel="email",
            template="test_message",
            to_address="x@example.test",
            status="failed",
            last_error="SMTP error: mailbox unavailable",
        )
    )
    session.add(Report(scope="practice", period="2026-01", status="failed", error="took longer than 600 s"))
    session.add(
        JobRun(
            job="ops.reconcile", period_key="2026-03-02T09:15:00+00:00", finished_at=now, result={"administrations": 1}
        )
    )
    session.add(Heartbeat(name="beat@host:7", role="beat", at=now, detail={}))
    session.add(Heartbeat(name="worker-1@host", role="worker", at=now - timedelta(seconds=10), detail={}))
    session.flush()
    page = client.get("/admin/operations").get_data(as_text=True)
    assert '<p class="stat">1</p><p>Answers waiting for evaluation' in page
    assert '<p class="stat">1</p><p>Evaluations that failed' in page
    assert '<p class="stat">1</p><p>Messages that failed for good' in page
    assert "this broker&#39;s queue cannot be inspected" in page  # the quick tier's memory broker
    assert "OperationalError(&#39;boom&#39;)" in page
    assert "SMTP error: mailbox unavailable" in page
    assert "took longer than 600 s" in page
    assert "2026-03-02T09:15:00+00:00" in page
    assert "administrations=1" in page
    assert "The scheduler holding the lock is beat@host:7" in page
    assert "worker-1@host" in page
    assert waiting.id  # the waiting row is what the first count shows


def test_only_admins_see_the_page(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("supervisor")
    assert client.get("/admin/operations").status_code == 403


def test_the_filesystem_broker_queue_depth_counts_its_files(tmp_path: Path) -> None:
    settings = build_settings(tmp_path, broker_url="filesystem://")
    assert queue_depth(settings).waiting == 0
    folder = settings.broker_dir / "queue"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}_abc.celery.msg").write_text("{}")
    (folder / "9_abc.celery.pidbox.msg").write_text("{}")
    depth = queue_depth(settings)
    assert (depth.broker, depth.waiting) == ("filesystem", 3)


def test_the_messages_page_says_sent_at_least_once_when_an_attempt_outcome_is_unknown(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("admin")
    plain = Notification(channel="email", template="test_message", to_address="a@example.test", status="sent")
    plain.attempts = 1
    doubled = Notification(channel="email", template="alert", to_address="b@example.test", status="sent")
    doubled.attempts, doubled.unknown_attempts = 2, 1
    session.add_all([plain, doubled])
    session.flush()
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert page.count("sent at least once</strong>") == 1
    assert "Attempt 2 went through; 1 earlier attempt stopped mid-send and may also have arrived." in page
    assert "a@example.test" not in page
    assert "b@example.test" not in page
    operations = client.get("/admin/operations").get_data(as_text=True)
    assert '/admin/outbox">1</a>' in operations
