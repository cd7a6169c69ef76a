"""The alerts.evaluate task body (called twice: one effect), bounded attempts, reconcile, and the digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services import schema
from services.alerts.digest import digest_slot, send_digests
from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert, SignalRecord
from services.alerts.operations import Attempt, begin_evaluation_attempt, record_evaluation_failure
from services.config import Settings
from services.db import Database, utcnow
from services.notifications.models import Notification
from services.ops.reconcile import find_pending
from services.signals import DEFAULT_SETTINGS
from services.surveys.models import Administration
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9
from workers.tasks import alerts as alert_tasks

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Tasks published after commit, captured instead of sent to a broker."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr("workers.enqueue._publish", lambda name, *args: calls.append((name, args)))
    return calls


def _b1_up_to_session_5(db: Database) -> list[int]:
    with db.unit_of_work() as session:
        clinician = make_user(session, role="clinician")
        episode = make_episode(session, clinician=clinician)
        return [submit_partnership(session, episode, split_total(t), week=w).id for w, t in enumerate(B1[:5])]


def test_the_task_body_run_twice_has_one_effect(
    db: Database, test_settings: Settings, published: list[tuple[str, tuple[int, ...]]]
) -> None:
    ids = _b1_up_to_session_5(db)
    assert alert_tasks.evaluate_now(db, test_settings, ids[-1]) == "evaluated"
    assert alert_tasks.evaluate_now(db, test_settings, ids[-1]) == "done"
    for earlier in ids[:-1]:
        assert alert_tasks.evaluate_now(db, test_settings, earlier) == "done"
    with db.session() as s:
        episode_id = s.scalar(select(Administration.episode_id).where(Administration.id == ids[0]))
        (alert,) = s.scalars(select(Alert).where(Alert.episode_id == episode_id)).all()
        (note,) = s.scalars(select(Notification).where(Notification.dedupe_key == f"alert:{alert.id}:opened")).all()
        assert (
            s.scalar(select(func.count()).select_from(SignalRecord).where(SignalRecord.episode_id == episode_id)) == 4
        )
        attempts = s.scalars(select(Administration.eval_attempts).where(Administration.id.in_(ids))).all()
    # Only the task that did the work counted an attempt (the earlier rows were caught up inside it).
    assert sorted(attempts) == [0, 0, 0, 0, 1]
    assert published == [("notifications.send", (note.id,))]


def test_nothing_is_published_when_the_evaluation_rolls_back(
    db: Database, test_settings: Settings, published: list[tuple[str, tuple[int, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _b1_up_to_session_5(db)

    def broken(session: Session, administration_id: int, **kw: Any) -> Any:
        evaluate_administration(session, administration_id, **kw)
        raise RuntimeError("a bug after the writes")

    monkeypatch.setattr(alert_tasks, "evaluate_administration", broken)
    with pytest.raises(RuntimeError, match="a bug after the writes"):
        alert_tasks.evaluate_now(db, test_settings, ids[-1])
    assert published == []
    with db.session() as s:
        row = s.get(Administration, ids[-1])
        assert row is not None
        assert (row.evaluated_at, row.eval_attempts, row.eval_failed_at) == (None, 1, None)
        assert row.last_error is not None
        assert "a bug after the writes" in row.last_error
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.episode_id == row.episode_id)) == 0


def test_transient_failures_are_retried_then_given_up_after_max_attempts(
    db: Database, test_settings: Settings, published: list[tuple[str, tuple[int, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _b1_up_to_session_5(db)

    def locked(*_: Any, **__: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(alert_tasks, "evaluate_administration", locked)
    for attempt in range(1, test_settings.max_attempts):
        with pytest.raises(alert_tasks.TransientEvaluationError):
            alert_tasks.evaluate_now(db, test_settings, ids[-1])
        with db.session() as s:
            row = s.get(Administration, ids[-1])
            assert row is not None
            assert (row.eval_attempts, row.eval_failed_at) == (attempt, None)
    assert alert_tasks.evaluate_now(db, test_settings, ids[-1]) == "failed"
    # Failed for good: later deliveries neither evaluate nor count.
    assert alert_tasks.evaluate_now(db, test_settings, ids[-1]) == "failed"
    with db.session() as s:
        row = s.get(Administration, ids[-1])
        assert row is not None
        assert row.eval_attempts == test_settings.max_attempts
        assert row.eval_failed_at is not None
        assert row.last_error is not None
        assert "database is locked" in row.last_error
    assert published == []


def test_a_batch_evaluates_in_order_retries_only_the_transient_and_records_the_broken(
    db: Database, test_settings: Settings, published: list[tuple[str, tuple[int, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _b1_up_to_session_5(db)
    with db.unit_of_work() as session:
        other = make_episode(session, clinician=make_user(session, role="clinician"))
        broken_id = submit_phq9(session, other, 12, week=0).id
    locked_id = ids[-1]
    real = alert_tasks.evaluate_administration

    def flaky(session: Session, administration_id: int, **kw: Any) -> Any:
        if administration_id == locked_id:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))
        if administration_id == broken_id:
            raise RuntimeError("a bug in one evaluation")
        return real(session, administration_id, **kw)

    monkeypatch.setattr(alert_tasks, "evaluate_administration", flaky)
    batch = alert_tasks.evaluate_batch_now(db, test_settings, [*ids[:-1], broken_id, locked_id])
    assert batch.outcome == {**{str(i): "evaluated" for i in ids[:-1]}, str(broken_id): "error"}
    assert batch.retry == [locked_id]
    batch_ids = [*ids, broken_id]
    with db.session() as s:
        rows = {row.id: row for row in s.scalars(select(Administration).where(Administration.id.in_(batch_ids)))}
        assert len(rows) == len(batch_ids)
        assert all(rows[i].evaluated_at is not None for i in ids[:-1])
        assert rows[locked_id].evaluated_at is None
        assert rows[locked_id].eval_attempts == 1
        assert rows[broken_id].evaluated_at is None
        assert "a bug in one evaluation" in (rows[broken_id].last_error or "")
    # The retry (the lock is gone now) finishes the job; the rest are untouched no-ops.
    monkeypatch.setattr(alert_tasks, "evaluate_administration", real)
    again = alert_tasks.evaluate_batch_now(db, test_settings, [*ids, broken_id])
    assert again.retry == []
    assert again.outcome[str(locked_id)] == "evaluated"
    assert again.outcome[str(broken_id)] == "evaluated"
    assert {again.outcome[str(i)] for i in ids[:-1]} == {"done"}


def test_a_row_with_no_attempts_left_is_marked_failed_when_delivered_again(session: Session) -> None:
    episode = make_episode(session)
    row = submit_phq9(session, episode, 5, week=0)
    row.eval_attempts = 3
    session.flush()
    assert begin_evaluation_attempt(session, row.id, max_attempts=3) is Attempt.EXHAUSTED
    session.refresh(row)
    assert row.eval_failed_at is not None
    assert row.last_error == "gave up after repeated failures: "
    assert begin_evaluation_attempt(session, row.id, max_attempts=3) is Attempt.FAILED
    assert begin_evaluation_attempt(session, 987654321, max_attempts=3) is Attempt.MISSING


def test_a_success_after_a_give_up_clears_the_failure(session: Session) -> None:
    episode = make_episode(session)
    row = submit_phq9(session, episode, 5, week=0, item9=1)
    row.eval_attempts = 2
    session.flush()
    assert record_evaluation_failure(session, row.id, error="boom", max_attempts=2)
    session.refresh(row)
    assert row.eval_failed_at is not None
    evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS)
    assert row.evaluated_at is not None
    assert row.eval_failed_at is None


def test_reconcile_finds_unevaluated_rows_past_grace_and_gives_up_exhausted_ones(session: Session) -> None:
    episode = make_episode(session)
    now = utcnow()
    old = submit_phq9(session, episode, 5, week=0)
    old.completed_at = now - timedelta(minutes=10)
    fresh = submit_phq9(session, episode, 5, week=1)
    fresh.completed_at = now - timedelta(seconds=5)
    done = submit_phq9(session, episode, 5, week=2)
    done.completed_at = now - timedelta(minutes=10)
    done.evaluated_at = now
    exhausted = submit_phq9(session, episode, 5, week=3)
    exhausted.completed_at = now - timedelta(minutes=10)
    exhausted.eval_attempts = 5
    exhausted.last_error = "OperationalError('locked')"
    session.flush()
    work = find_pending(session, grace=timedelta(seconds=120), max_attempts=5, now=now)
    assert old.id in work.administrations
    assert fresh.id not in work.administrations
    assert done.id not in work.administrations
    assert exhausted.id not in work.administrations
    assert work.failed["administrations"] >= 1
    session.refresh(exhausted)
    assert exhausted.eval_failed_at is not None
    assert exhausted.last_error == "gave up after repeated failures: OperationalError('locked')"
    again = find_pending(session, grace=timedelta(seconds=120), max_attempts=5, now=now)
    assert exhausted.id not in again.administrations
    assert "administrations" not in again.failed


def test_digest_slots_are_at_eight_and_four_practice_time() -> None:
    assert digest_slot(datetime(2026, 7, 1, 7, 30, tzinfo=UTC), LONDON) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert digest_slot(datetime(2026, 7, 1, 6, 59, tzinfo=UTC), LONDON) == datetime(2026, 6, 30, 15, 0, tzinfo=UTC)
    assert digest_slot(datetime(2026, 1, 5, 16, 0, tzinfo=UTC), LONDON) == datetime(2026, 1, 5, 16, 0, tzinfo=UTC)


def test_digest_sends_once_per_slot_and_only_what_was_not_announced(session: Session) -> None:
    digest_user = make_user(session, role="clinician")
    digest_user.notify_mode = "digest"
    immediate_user = make_user(session, role="clinician")
    opened = datetime(2026, 1, 12, 20, 0, tzinfo=UTC)
    for user in (digest_user, immediate_user):
        episode = make_episode(session, clinician=user)
        for week, total in enumerate(B1[:5]):
            row = submit_partnership(session, episode, split_total(total), week=week)
            evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=opened, base_url="http://r.test")
        # A risk alert is never in a digest: it went out at once.
        evaluate_administration(
            session, submit_phq9(session, episode, 9, week=6, item9=1).id, settings=DEFAULT_SETTINGS, now=opened
        )
    first = send_digests(session, now=datetime(2026, 1, 13, 8, 0, 3, tzinfo=UTC), tz=LONDON, base_url="http://r.test")
    assert first.ran
    assert first.period_key == "2026-01-13T08:00"
    assert first.since == datetime(2026, 1, 12, 16, 0, tzinfo=UTC)
    (note_id,) = first.notification_ids
    note = session.get(Notification, note_id)
    assert note is not None
    assert (note.template, note.to_address, note.dedupe_key) == (
        "alert_digest",
        digest_user.email,
        f"digest:{digest_user.id}:2026-01-13T08:00",
    )
    assert note.context == {"count": 1, "link": "http://r.test/clinician/alerts", "language": "en"}
    again = send_digests(session, now=datetime(2026, 1, 13, 8, 0, 9, tzinfo=UTC), tz=LONDON, base_url="http://r.test")
    assert (again.ran, again.notification_ids) == (False, [])
    later = send_digests(session, now=datetime(2026, 1, 13, 16, 0, 1, tzinfo=UTC), tz=LONDON, base_url="http://r.test")
    assert later.ran
    assert later.since == datetime(2026, 1, 13, 8, 0, tzinfo=UTC)
    assert later.notification_ids == []


def test_the_digest_task_body_runs_once_per_slot(
    db: Database,
    test_settings: Settings,
    published: list[tuple[str, tuple[int, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alert_tasks, "utcnow", lambda: datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    first = alert_tasks.send_digests_now(db, test_settings)
    second = alert_tasks.send_digests_now(db, test_settings)
    assert first["ran"] is True
    assert first["period"] == "2026-03-02T08:00"
    assert (second["ran"], second["period"]) == (False, first["period"])
    assert published == []


def test_two_threads_evaluating_one_administration_on_sqlite_give_one_effect(tmp_path: Path) -> None:
    import threading

    database = Database(f"sqlite:///{tmp_path / 'race.sqlite3'}")
    schema.upgrade(database.engine)
    try:
        with database.unit_of_work() as session:
            clinician = make_user(session, role="clinician")
            episode = make_episode(session, clinician=clinician)
            ids = [submit_partnership(session, episode, split_total(t), week=w).id for w, t in enumerate(B1[:5])]
        barrier = threading.Barrier(2)
        statuses: list[str] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                barrier.wait()
                with database.unit_of_work() as s:
                    statuses.append(evaluate_administration(s, ids[-1], settings=DEFAULT_SETTINGS).status)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert sorted(statuses) == ["already_evaluated", "evaluated"]
        with database.session() as s:
            assert s.scalar(select(func.count()).select_from(Alert)) == 1
            assert s.scalar(select(func.count()).select_from(Notification)) == 1
            assert s.scalar(select(func.count()).select_from(SignalRecord)) == 4
    finally:
        database.dispose()


def test_the_morning_digest_says_how_many_of_todays_briefs_are_waiting(session: Session) -> None:
    """Two of the digest clinician's sessions today have answers since the last session; one was opened. The
    immediate-mode clinician's waiting brief adds nothing to anyone's inbox; neither does the afternoon digest."""
    from services.audit.operations import record_client_view
    from services.notifications.templates import render_message
    from tests.factories import make_appointment

    me = make_user(session, role="clinician")
    me.notify_mode = "digest"
    other = make_user(session, role="clinician")
    morning = datetime(2026, 1, 13, 8, 0, 3, tzinfo=UTC)
    for user, sessions in ((me, 3), (other, 1)):
        for n in range(sessions):
            episode = make_episode(session, clinician=user)
            make_appointment(
                session, episode=episode, starts_at=datetime(2026, 1, 6, 10, tzinfo=UTC), status="completed"
            )
            make_appointment(session, episode=episode, starts_at=datetime(2026, 1, 13, 10 + n, tzinfo=UTC))
            if n < 2:  # the third session has no answers since the last one
                row = submit_phq9(session, episode, 9, week=0)
                row.completed_at = datetime(2026, 1, 12, 18, tzinfo=UTC)
            if user is me and n == 1:
                record_client_view(session, actor_id=me.id, client_id=episode.client_id, what="chart")
    session.flush()
    run = send_digests(session, now=morning, tz=LONDON, base_url="http://r.test")
    (note_id,) = run.notification_ids
    note = session.get(Notification, note_id)
    assert note is not None
    assert (note.template, note.to_address) == ("briefs_waiting", me.email)
    assert note.context == {"count": 0, "briefs": 1, "link": "http://r.test/clinician/", "language": "en"}
    _subject, body = render_message(note.template, note.context)
    assert body.startswith("1 brief(s) for today's sessions are waiting")
    afternoon = send_digests(
        session, now=datetime(2026, 1, 13, 16, 0, 1, tzinfo=UTC), tz=LONDON, base_url="http://r.test"
    )
    assert afternoon.notification_ids == []
