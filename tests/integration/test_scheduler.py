"""The scheduler's jobs through a real worker on Redis and PostgreSQL: an escalation and a review reminder reach
people over SMTP once (with a link and nothing about the client), and `rapport health` reads the live system."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert
from services.config import PROJECT_ROOT, Settings
from services.db import Database, utcnow
from services.ops.models import Heartbeat, JobRun
from services.reviews.models import Review
from services.reviews.operations import open_review
from services.reviews.policy import ReviewPolicy
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_client, make_episode, make_user
from tests.integration.conftest import SmtpSink, WorkerProcess, settings_env, wait_for
from tests.unit.alerts.series import submit_phq9


def body_of(message: Any) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return f"{message['Subject']}\n{payload.decode()}"


def job_ran(db: Database, job: str, period: str) -> bool:
    with db.session() as session:
        run = session.scalar(select(JobRun).where(JobRun.job == job, JobRun.period_key == period))
        return run is not None and run.finished_at is not None


def test_an_unacknowledged_risk_alert_reaches_the_on_call_clinician_once(
    it_db: Database, it_settings: Settings, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    with it_db.unit_of_work() as session:
        on_call = make_user(session, role="clinician", team="Team Night")
        on_call.on_call = True
        clinician = make_user(session, role="clinician", team="Team Day")
        person = make_client(session, first_name="Escala")
        episode = make_episode(session, client=person, clinician=clinician)
        row = submit_phq9(session, episode, 14, week=0, item9=2)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, notify=False)
        alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
        assert alert is not None
        # Opened an hour and a minute ago, nobody has acknowledged it: past the risk window.
        session.execute(update(Alert).where(Alert.id == alert.id).values(opened_at=utcnow() - timedelta(minutes=61)))
        alert_id, address, client_code = alert.id, on_call.email, person.code

    for period in ("it-escalate-1", "it-escalate-1", "it-escalate-2"):
        celery_publisher.send_task("alerts.escalate", kwargs={"period": period})
    wait_for(lambda: job_ran(it_db, "alerts.escalate", "it-escalate-2"), what="both escalation periods run")
    link = f"/clinician/alerts/{alert_id}"
    wait_for(lambda: [m for m in smtp.to(address) if link in body_of(m)], what="the escalation email")
    # The shared database may hold other tests' old alerts (escalated too); this one's message arrived once.
    (message,) = [m for m in smtp.to(address) if link in body_of(m)]
    text = body_of(message)
    assert "the on-call clinician" in text
    assert "Escala" not in text
    assert client_code not in text
    with it_db.session() as session:
        stored = session.get(Alert, alert_id)
        assert stored is not None
        assert (stored.escalation_level, stored.escalated_at is not None) == (1, True)


def test_a_review_due_tomorrow_reminds_its_reviewer_once(
    it_db: Database, it_settings: Settings, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    with it_db.unit_of_work() as session:
        supervisor = make_user(session, role="supervisor", team="Team Review")
        clinician = make_user(session, role="clinician", team="Team Review")
        person = make_client(session, first_name="Revisa")
        episode = make_episode(session, client=person, clinician=clinician)
        review = open_review(
            session,
            reason="FOLLOW_UP",
            key=f"follow_up:review:it-{episode.id}",
            episode_id=episode.id,
            alert_id=None,
            now=utcnow(),
            policy=ReviewPolicy(),
            tz=it_settings.tz,
            trigger={},
            due_at=utcnow() + timedelta(hours=20),
        )
        assert review is not None
        assert review.reviewer_id == supervisor.id
        review_id, address = review.id, supervisor.email

    for period in ("it-reviews-1", "it-reviews-2"):
        celery_publisher.send_task("reviews.scan", kwargs={"period": period})
    wait_for(lambda: job_ran(it_db, "reviews.scan", "it-reviews-2"), what="both review passes run")
    link = re.compile(rf"/reviews/{review_id}\b")
    wait_for(lambda: [m for m in smtp.to(address) if link.search(body_of(m))], what="the reminder email")
    # The shared database may hold other tests' reviews; this one's reminder arrived once.
    (message,) = [m for m in smtp.to(address) if link.search(body_of(m))]
    text = body_of(message)
    assert message["Subject"] == "A case review is due in Rapport"
    assert "Revisa" not in text
    with it_db.session() as session:
        stored = session.get(Review, review_id)
        assert stored is not None
        assert stored.reminded_at is not None


def rapport(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=PROJECT_ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_health_commands_read_the_live_worker_and_the_missing_beat(
    it_db: Database, it_settings: Settings, running_worker: WorkerProcess, celery_publisher: Any
) -> None:
    with it_db.unit_of_work() as session:
        session.execute(delete(Heartbeat))
    # No heartbeat yet: the worker still answers a ping over the broker.
    pinged = rapport(it_settings, "health", "worker")
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    assert "answered a ping" in pinged.stdout
    celery_publisher.send_task("ops.heartbeat")

    def heartbeat_seen() -> bool:
        with it_db.session() as session:
            return session.scalar(select(Heartbeat).where(Heartbeat.role == "worker")) is not None

    wait_for(heartbeat_seen, what="the worker's heartbeat row")
    fresh = rapport(it_settings, "health", "worker", "--no-ping")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert f"{running_worker.name}-" in fresh.stdout  # named after the worker node that consumed it
    no_beat = rapport(it_settings, "health", "beat")
    assert no_beat.returncode == 1
    assert "no beat holds the lock" in no_beat.stdout
