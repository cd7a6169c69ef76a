"""Reconcile: every kind of pending work is re-driven, what used up its attempts is marked failed (never retried
forever), a beat run is keyed by its period, and a broker that is down only delays the work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database, utcnow
from services.notifications.operations import queue_notification
from services.ops.models import JobRun
from services.ops.reconcile import find_pending
from services.reporting.models import Report
from services.surveys.models import Invitation
from tests.factories import make_episode
from tests.unit.alerts.series import submit_phq9
from workers.tasks.ops import run_reconcile

GRACE = timedelta(seconds=120)


class PublishRecorder:
    """Records what reconcile publishes instead of sending it to a broker."""

    def __init__(self, calls: list[tuple[str, tuple[int, ...]]]) -> None:
        self.calls = calls

    def __call__(self, name: str, args: Sequence[int]) -> None:
        self.calls.append((name, tuple(args)))


def test_reports_pending_or_stuck_are_re_driven_and_exhausted_ones_fail(session: Session) -> None:
    now = utcnow()
    fresh = Report(scope="practice", period="2026-01", status="pending", updated_at=now)
    waiting = Report(scope="practice", period="2026-02", status="pending", updated_at=now - timedelta(minutes=5))
    stuck = Report(
        scope="practice", period="2026-03", status="running", attempts=1, updated_at=now - timedelta(hours=1)
    )
    running = Report(scope="practice", period="2026-04", status="running", attempts=1, updated_at=now)
    exhausted = Report(
        scope="practice", period="2026-05", status="running", attempts=3, updated_at=now - timedelta(hours=1)
    )
    session.add_all([fresh, waiting, stuck, running, exhausted])
    session.flush()
    work = find_pending(session, grace=GRACE, max_attempts=5, now=now)
    assert sorted(work.reports) == sorted([waiting.id, stuck.id])
    assert work.failed == {"reports": 1}
    session.refresh(exhausted)
    assert (exhausted.status, exhausted.error) == ("failed", "gave up after repeated attempts")
    again = find_pending(session, grace=GRACE, max_attempts=5, now=now)
    assert "reports" not in again.failed


def test_an_invitation_due_and_not_sent_asks_for_the_dispatch_pass(session: Session) -> None:
    now = utcnow()
    episode = make_episode(session)
    assert not find_pending(session, grace=GRACE, max_attempts=5, now=now).invitations_due
    kiosk = Invitation(
        episode_id=episode.id,
        channel="kiosk",
        status="scheduled",
        due_at=now - timedelta(hours=1),
        expires_at=now + timedelta(hours=1),
    )
    expired = Invitation(
        episode_id=episode.id,
        channel="email",
        status="scheduled",
        due_at=now - timedelta(days=3),
        expires_at=now - timedelta(hours=1),
    )
    session.add_all([kiosk, expired])
    session.flush()
    assert not find_pending(session, grace=GRACE, max_attempts=5, now=now).invitations_due
    session.add(
        Invitation(
            episode_id=episode.id,
            channel="email",
            status="scheduled",
            due_at=now - timedelta(minutes=10),
            expires_at=now + timedelta(hours=1),
        )
    )
    session.flush()
    assert find_pending(session, grace=GRACE, max_attempts=5, now=now).invitations_due


def test_a_beat_run_is_keyed_by_its_period_and_publishes_after_the_commit(
    db: Database, test_settings: Settings
) -> None:
    with db.unit_of_work() as session:
        episode = make_episode(session)
        row = submit_phq9(session, episode, 5, week=0)
        row.completed_at = utcnow() - timedelta(minutes=10)
        note = queue_notification(session, channel="email", template="test_message", to_address="x@example.test")
        note.created_at = utcnow() - timedelta(minutes=10)
        admin_id, note_id = row.id, note.id
    calls: list[tuple[str, tuple[int, ...]]] = []
    publish = PublishRecorder(calls)
    period = "2026-03-02T09:15:00+00:00"
    first = run_reconcile(period=period, database=db, settings=test_settings, publish=publish)
    assert first["administrations"] >= 1
    assert ("alerts.evaluate", (admin_id,)) in calls
    assert ("notifications.send", (note_id,)) in calls
    calls.clear()
    assert run_reconcile(period=period, database=db, settings=test_settings, publish=publish) == {"already_ran": 1}
    assert calls == []
    with db.session() as session:
        (job,) = session.scalars(select(JobRun).where(JobRun.job == "ops.reconcile", JobRun.period_key == period))
        assert job.finished_at is not None
        assert job.result["administrations"] == first["administrations"]
    # An operator's `rapport reconcile` has no period: it always runs.
    run_reconcile(database=db, settings=test_settings, publish=publish)
    assert ("alerts.evaluate", (admin_id,)) in calls


def test_a_broker_that_is_down_delays_the_work_and_loses_nothing(db: Database, test_settings: Settings) -> None:
    with db.unit_of_work() as session:
        episode = make_episode(session)
        for week in range(3):
            submit_phq9(session, episode, 5, week=week).completed_at = utcnow() - timedelta(minutes=10)
    attempts: list[str] = []

    def down(name: str, args: Sequence[int]) -> None:
        attempts.append(name)
        raise ConnectionRefusedError("broker down")

    result = run_reconcile(database=db, settings=test_settings, publish=down)
    assert attempts == ["alerts.evaluate"]  # gave up at the first refusal instead of timing out per message
    assert result["unpublished"] == result["administrations"] + result["notifications"]
    calls: list[tuple[str, tuple[int, ...]]] = []
    again = run_reconcile(database=db, settings=test_settings, publish=PublishRecorder(calls))
    assert again["administrations"] == result["administrations"]
    assert "unpublished" not in again
