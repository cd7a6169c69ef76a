"""Periodic-job bookkeeping: a period is claimed once, its result recorded, and old rows pruned."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.db import utcnow
from services.ops.models import Heartbeat, JobRun
from services.ops.operations import beat, claim_period, finish_period, prune_bookkeeping


def test_a_period_is_claimed_once_and_its_result_recorded(session: Session) -> None:
    run = claim_period(session, job="test.job", period_key="2026-03-02T09:15:00+00:00")
    assert run is not None
    assert claim_period(session, job="test.job", period_key="2026-03-02T09:15:00+00:00") is None
    assert claim_period(session, job="other.job", period_key="2026-03-02T09:15:00+00:00") is not None
    finish_period(session, run, {"done": 3})
    session.expire_all()
    stored = session.scalar(select(JobRun).where(JobRun.job == "test.job"))
    assert stored is not None
    assert (stored.result, stored.finished_at is not None) == ({"done": 3}, True)


def test_old_job_runs_and_heartbeats_are_pruned(session: Session) -> None:
    now = utcnow()
    old = claim_period(session, job="test.job", period_key="old")
    assert old is not None
    old.started_at = now - timedelta(days=40)
    claim_period(session, job="test.job", period_key="new")
    beat(session, name="worker@gone", role="worker")
    session.scalars(select(Heartbeat)).one().at = now - timedelta(days=40)
    beat(session, name="worker@here", role="worker")
    session.flush()
    assert prune_bookkeeping(session, now=now, keep=timedelta(days=30)) == {"job_runs": 1, "heartbeats": 1}
    assert session.scalar(select(func.count()).select_from(JobRun)) == 1
    assert [hb.name for hb in session.scalars(select(Heartbeat))] == ["worker@here"]


def test_a_heartbeat_waits_for_another_writer_on_sqlite_instead_of_failing(tmp_path: Path) -> None:
    import threading
    import time

    from services import schema
    from services.db import Database

    database = Database(f"sqlite:///{tmp_path / 'beat.sqlite3'}")
    schema.upgrade(database.engine)
    try:
        with database.unit_of_work() as session:
            beat(session, name="worker@one", role="worker")
        writing = threading.Event()

        def long_writer() -> None:
            with database.unit_of_work() as session:
                claim_period(session, job="test.slow", period_key="p")  # holds the write lock ...
                writing.set()
                time.sleep(0.5)  # ... for a while

        thread = threading.Thread(target=long_writer)
        thread.start()
        assert writing.wait(5)
        started = time.monotonic()
        with database.unit_of_work() as session:
            beat(session, name="worker@one", role="worker", detail={"n": 2})
            beat(session, name="worker@two", role="worker")
        waited = time.monotonic() - started
        thread.join(5)
        assert waited > 0.2  # it waited for the lock rather than failing with "database is locked"
        with database.session() as session:
            rows = {hb.name: hb for hb in session.scalars(select(Heartbeat))}
        assert sorted(rows) == ["worker@one", "worker@two"]
        assert rows["worker@one"].detail == {"n": 2}
    finally:
        database.dispose()
