"""The beat: only the holder of the beat lock sends the schedule, a standby takes over when the holder goes, every
keyed entry is sent with its period's key, and both record heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.beat import Scheduler
from celery.schedules import crontab
from sqlalchemy import select

from services.config import Settings
from services.db import Database
from services.ops.beat_lock import FileLock, beat_lock_for
from services.ops.liveness import PROCESS_DEAD_AFTER, RECONCILE_EVERY
from services.ops.models import Heartbeat
from services.ops.operations import period_key
from workers import runtime
from workers.app import create_celery
from workers.beat import RapportScheduler
from workers.schedule import PERIOD, beat_schedule, scheduled_jobs

LONDON = ZoneInfo("Europe/London")
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def test_period_keys_are_the_periods_start_in_the_practice_zone() -> None:
    minute = timedelta(minutes=1)
    assert period_key(datetime(2026, 7, 1, 9, 15, 59, tzinfo=UTC), minute, LONDON) == "2026-07-01T10:15:00+01:00"
    assert period_key(datetime(2026, 7, 1, 9, 15, 0, tzinfo=UTC), minute, LONDON) == "2026-07-01T10:15:00+01:00"
    assert period_key(datetime(2026, 1, 1, 9, 15, 1, tzinfo=UTC), timedelta(seconds=2), LONDON) == (
        "2026-01-01T09:15:00+00:00"
    )
    # The repeated hour of the autumn change gives two different keys.
    first = period_key(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), minute, LONDON)
    second = period_key(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), minute, LONDON)
    assert (first, second) == ("2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00")
    with pytest.raises(ValueError, match="at least one second"):
        period_key(datetime(2026, 1, 1, tzinfo=UTC), timedelta(milliseconds=10), LONDON)


def test_the_schedule_keeps_every_job_and_keys_the_scheduler_jobs(test_settings: Settings) -> None:
    schedule = beat_schedule(test_settings)
    assert {entry["task"] for entry in schedule.values()} == {
        "ops.reconcile",
        "ops.heartbeat",
        "surveys.dispatch",
        "reviews.scan",
        "alerts.escalate",
        "alerts.send_digests",
        "ops.prune_sessions",
        "reports.monthly",
        "calibration.fit_expected_recovery",
        "ops.verify_audit",
    }
    keyed = {entry["task"] for entry in schedule.values() if PERIOD in entry.get("kwargs", {})}
    assert keyed == {"ops.reconcile", "reviews.scan", "alerts.escalate"}
    every = {entry["task"]: entry["schedule"] for entry in schedule.values() if entry["task"] in keyed}
    # Reconcile re-drives dead processes' claims: every 30 s keeps the worst case (services.ops.liveness) under 2 min.
    assert every == {"ops.reconcile": 30.0, "reviews.scan": 60.0, "alerts.escalate": 60.0}
    assert (PROCESS_DEAD_AFTER + RECONCILE_EVERY).total_seconds() <= 90
    assert scheduled_jobs(test_settings) == sorted({str(entry["task"]) for entry in schedule.values()})


def test_a_file_lock_has_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "beat.lock"), FileLock(tmp_path / "beat.lock")
    assert first.try_acquire()
    assert first.try_acquire()  # already held: still True
    assert not second.try_acquire()
    first.release()
    assert not first.held()
    assert second.try_acquire()
    second.release()
    assert isinstance(beat_lock_for("sqlite:///x.sqlite3", tmp_path), FileLock)


@pytest.fixture
def beat_env(
    test_settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """A Celery app with a one-second keyed entry and a crontab entry; sends are recorded, not published."""
    settings = test_settings.with_overrides(var_dir=tmp_path)
    monkeypatch.setattr(runtime, "_settings", settings)
    monkeypatch.setattr(runtime, "database", lambda: db)  # heartbeats inside the test's rolled-back transaction
    app = create_celery(settings)
    app.conf.beat_schedule = {
        "keyed": {"task": "ops.reconcile", "schedule": 1.0, "kwargs": {PERIOD: None}, "last_run_at": LONG_AGO},
        "nightly": {"task": "ops.prune_sessions", "schedule": crontab(hour=3, minute=17)},
    }
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(self: Scheduler, entry: Any, producer: Any = None, advance: bool = True, **kw: Any) -> None:
        sent.append((entry.task, dict(entry.kwargs)))

    monkeypatch.setattr(Scheduler, "apply_async", record)
    return app, sent


def test_only_the_lock_holder_sends_and_a_standby_takes_over_when_it_goes(
    beat_env: tuple[Any, list[tuple[str, dict[str, Any]]]], tmp_path: Path, session: Any
) -> None:
    app, sent = beat_env
    leader = RapportScheduler(app=app, schedule_filename=str(tmp_path / "leader-schedule"))
    standby = RapportScheduler(app=app, schedule_filename=str(tmp_path / "standby-schedule"))
    standby._name = "beat@test:standby"  # two beats in one test process: give the second its own heartbeat row
    assert leader.tick() == 0  # sent the due entry
    assert [task for task, _ in sent] == ["ops.reconcile"]
    (kwargs,) = [kw for _, kw in sent]
    assert kwargs[PERIOD] is not None
    assert kwargs[PERIOD].endswith(("+00:00", "+01:00"))
    # The stored entry keeps its placeholder, so the next send gets the next period's key.
    assert leader.schedule["keyed"].kwargs == {PERIOD: None}

    assert standby.tick() == 2.0
    assert standby.tick() == 2.0
    assert len(sent) == 1  # the standby sends nothing
    assert not list(tmp_path.glob("standby-schedule*"))  # nor touches a schedule file
    roles = {hb.name: hb.role for hb in session.scalars(select(Heartbeat))}
    assert sorted(roles.values()) == ["beat", "beat-standby"]

    leader.close()  # the leader stops: its lock is released
    assert standby.tick() == 0
    assert [task for task, _ in sent] == ["ops.reconcile", "ops.reconcile"]
    session.expire_all()
    assert sorted(hb.role for hb in session.scalars(select(Heartbeat))) == ["beat", "beat"]
    standby.close()


def test_an_entry_without_a_placeholder_is_sent_as_it_is(
    beat_env: tuple[Any, list[tuple[str, dict[str, Any]]]], tmp_path: Path
) -> None:
    app, _ = beat_env
    scheduler = RapportScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    scheduler.tick()
    nightly = scheduler.schedule["nightly"]
    assert scheduler.with_period(nightly) is nightly
    keyed = scheduler.schedule["keyed"]
    before = period_key(datetime.now(UTC), timedelta(seconds=1), LONDON)
    filled = scheduler.with_period(keyed)
    after = period_key(datetime.now(UTC), timedelta(seconds=1), LONDON)
    assert filled is not keyed
    assert filled.kwargs[PERIOD] in {before, after}
    scheduler.close()
