"""Report claims tied to liveness: a report whose worker process died is taken again at once, not after 20 min."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import schema
from services.accounts.models import User
from services.config import Settings
from services.db import Database, make_engine, utcnow
from services.ops.liveness import PROCESS_DEAD_AFTER, PROCESS_ROLE, pid_gone_here, process_name
from services.ops.models import Heartbeat
from services.ops.reconcile import find_pending
from services.reporting.models import Report
from services.reporting.operations import (
    STALE_RUNNING,
    claim_report,
    request_report,
    stale_running_after,
)
from services.reporting.periods import ReportScope
from tests.conftest import build_settings
from tests.unit.reporting.practice import NOW, PERIOD, Practice
from tests.unit.web.conftest import csrf_token
from workers import app as worker_app
from workers import runtime
from workers.tasks.reports import Outcome, generate_report

GRACE = timedelta(seconds=30)


def _running(
    db: Database, *, claimed_by: str | None, untouched: timedelta, heartbeat_age: timedelta | None = None
) -> int:
    """A report claimed by claimed_by and last touched `untouched` ago; its process beat `heartbeat_age` ago."""
    now = utcnow()
    with db.unit_of_work() as session:
        row, fresh = request_report(session, scope=ReportScope("practice"), period=PERIOD)
        assert fresh
        assert claim_report(session, row.id, claimed_by=claimed_by)
        session.flush()
        session.execute(
            Report.__table__.update().where(Report.id == row.id).values(updated_at=now - untouched)  # type: ignore[attr-defined]
        )
        if claimed_by is not None and heartbeat_age is not None:
            session.add(Heartbeat(name=claimed_by, role=PROCESS_ROLE, at=now - heartbeat_age, detail={}))
        return row.id


def _row(db: Database, report_id: int) -> Report:
    with db.session() as session:
        row = session.get(Report, report_id)
        assert row is not None
        session.expunge(row)
        return row


def _redriven(db: Database, *, now: datetime | None = None, stale_report: timedelta = STALE_RUNNING) -> list[int]:
    with db.unit_of_work() as session:
        return find_pending(session, grace=GRACE, max_attempts=3, now=now, stale_report=stale_report).reports


def test_a_report_whose_process_stopped_beating_is_redriven_and_claimed_at_once(
    db: Database, practice: Practice
) -> None:
    report_id = _running(
        db, claimed_by="host-a:111", untouched=timedelta(seconds=100), heartbeat_age=timedelta(seconds=100)
    )
    assert _redriven(db) == [report_id]
    with db.unit_of_work() as session:
        assert claim_report(session, report_id, claimed_by="host-b:222")
        # Claimed again by a live process: no second claim until that one dies too.
        assert not claim_report(session, report_id, claimed_by="host-c:333")
    row = _row(db, report_id)
    assert (row.status, row.claimed_by, row.attempts) == ("running", "host-b:222", 2)


def test_a_report_whose_process_beats_is_left_to_it(db: Database, practice: Practice) -> None:
    report_id = _running(
        db, claimed_by="host-a:111", untouched=timedelta(minutes=10), heartbeat_age=timedelta(seconds=10)
    )
    assert _redriven(db) == []
    with db.unit_of_work() as session:
        assert not claim_report(session, report_id, claimed_by="host-b:222")
        _, fresh = request_report(session, scope=ReportScope("practice"), period=PERIOD)
    assert not fresh
    assert _row(db, report_id).claimed_by == "host-a:111"


def test_just_under_the_dead_limit_a_process_counts_as_alive(db: Database, practice: Practice) -> None:
    report_id = _running(db, claimed_by="host-a:111", untouched=timedelta(minutes=2), heartbeat_age=PROCESS_DEAD_AFTER)
    now = utcnow()
    assert _redriven(db, now=now - timedelta(seconds=5)) == []
    assert _redriven(db, now=now + timedelta(seconds=5)) == [report_id]


@pytest.mark.parametrize("claimed_by", [None, "cli-host:42"])
def test_without_a_heartbeat_a_claim_lasts_the_hard_time_limit_plus_a_margin(
    db: Database, practice: Practice, claimed_by: str | None
) -> None:
    report_id = _running(db, claimed_by=claimed_by, untouched=timedelta(minutes=10))
    assert _redriven(db) == []
    assert timedelta(seconds=900) + timedelta(minutes=2) == STALE_RUNNING
    # The configured limit is what counts, not a fixed 20 minutes: a 5-minute limit goes stale after 7.
    assert _redriven(db, stale_report=stale_running_after(300)) == [report_id]
    assert _redriven(db, now=utcnow() + STALE_RUNNING - timedelta(minutes=10) + timedelta(seconds=1)) == [report_id]


def test_a_process_taken_for_dead_that_wakes_up_changes_nothing(
    db: Database, practice: Practice, report_settings: Settings
) -> None:
    with db.unit_of_work() as session:
        row, _ = request_report(session, scope=ReportScope("practice"), period=PERIOD)
        report_id = row.id

    def taken_over(value: int) -> None:
        if value != 15:
            return
        # While "slow:1" renders, its heartbeat goes quiet and another process takes the report.
        with db.unit_of_work() as session:
            session.add(Heartbeat(name="slow:1", role=PROCESS_ROLE, at=utcnow() - timedelta(minutes=5), detail={}))
            session.flush()
            assert claim_report(session, report_id, claimed_by="fast:2")

    outcome = generate_report(db, report_settings, report_id, now=NOW, claimed_by="slow:1", on_progress=taken_over)
    assert outcome is Outcome.SKIPPED
    row = _row(db, report_id)
    assert (row.status, row.claimed_by, row.progress, row.file_path) == ("running", "fast:2", 5, None)
    assert list(report_settings.reports_dir.glob("*.pdf")) == []
    # A duplicate message for the report finds it held by a live claimant and leaves it.
    assert generate_report(db, report_settings, report_id, now=NOW, claimed_by="other:3") is Outcome.SKIPPED
    with db.unit_of_work() as session:
        session.execute(
            Report.__table__.update().where(Report.id == report_id).values(status="pending")  # type: ignore[attr-defined]
        )
    assert generate_report(db, report_settings, report_id, now=NOW, claimed_by="fast:2") is Outcome.DONE
    assert _row(db, report_id).status == "done"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_claim_of_a_process_gone_from_this_host_is_taken_at_once(
    db: Database, practice: Practice, report_settings: Settings
) -> None:
    dead = process_name(pid=_dead_pid())
    assert pid_gone_here(dead)
    assert not pid_gone_here(process_name())
    assert not pid_gone_here(f"another-host:{_dead_pid()}")
    assert not pid_gone_here(None)
    # Its heartbeat is still fresh: only the pid says it died (a worker child SIGKILLed a moment ago).
    report_id = _running(db, claimed_by=dead, untouched=timedelta(seconds=5), heartbeat_age=timedelta(seconds=5))
    assert _redriven(db) == []
    assert generate_report(db, report_settings, report_id, now=NOW) is Outcome.DONE
    row = _row(db, report_id)
    assert (row.status, row.attempts, row.claimed_by) == ("done", 2, process_name())


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    sent: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr("workers.enqueue._publish", lambda name, *args: sent.append((name, args)))
    return sent


@pytest.mark.parametrize(("heartbeat_age", "requeued"), [(timedelta(minutes=3), True), (timedelta(seconds=5), False)])
def test_regenerate_works_at_once_for_a_report_whose_worker_died(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    db: Database,
    practice: Practice,
    published: list[Any],
    heartbeat_age: timedelta,
    requeued: bool,
) -> None:
    signed_in("manager")
    report_id = _running(db, claimed_by="gone:7", untouched=heartbeat_age, heartbeat_age=heartbeat_age)
    token = csrf_token(client, f"/manager/reports/{report_id}")
    response = client.post(f"/manager/reports/{report_id}/regenerate", data={"csrf_token": token})
    assert response.status_code == 302
    row = _row(db, report_id)
    if requeued:
        assert published[-1] == ("reports.generate", (report_id,))
        assert (row.status, row.claimed_by, row.attempts) == ("pending", None, 0)
    else:
        assert ("reports.generate", (report_id,)) not in published
        assert (row.status, row.claimed_by) == ("running", "gone:7")


def test_each_worker_process_beats_for_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = build_settings(tmp_path / "var")
    engine = make_engine(settings.database_url)
    schema.upgrade(engine)
    engine.dispose()
    monkeypatch.setattr(runtime, "_settings", settings)
    monkeypatch.setattr(worker_app, "_heartbeat_pid", None)
    database = runtime.database()

    def beats() -> list[tuple[str, str, datetime]]:
        with database.session() as session:
            return [(hb.name, hb.role, hb.at) for hb in session.scalars(select(Heartbeat))]

    stop = worker_app.start_process_heartbeat(every=0.05)
    try:
        seen: set[datetime] = set()
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            for name, role, at in beats():
                assert (name, role) == (process_name(), PROCESS_ROLE)
                seen.add(at)
            time.sleep(0.02)
        assert len(seen) >= 3
        # A second start in the same process adds no second thread.
        worker_app.start_process_heartbeat(every=0.05)
        assert sum(thread.name == "rapport-process-heartbeat" for thread in threading.enumerate()) == 1
    finally:
        stop.set()
    time.sleep(0.1)
    assert socket.gethostname() in process_name()
