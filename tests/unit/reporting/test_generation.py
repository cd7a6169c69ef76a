"""Generating reports: one row per scope and period, atomic file replacement, failures, notifications, beat job."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import reports.assemble
from reports.pdf import RefusedFetch, RefusedResourceError
from services.accounts.models import User
from services.config import Settings
from services.db import Database
from services.notifications.models import Notification
from services.ops.models import JobRun
from services.reporting import operations
from services.reporting.models import Report
from services.reporting.operations import request_report, store_file_atomically
from services.reporting.periods import ReportScope
from tests.unit.reporting.practice import NOW, PERIOD, Practice
from workers.tasks import reports as tasks
from workers.tasks.reports import Outcome, generate_report, request_month


def _request(db: Database, scope: ReportScope | None = None, **kw: Any) -> int:
    with db.unit_of_work() as session:
        row, fresh = request_report(session, scope=scope or ReportScope("practice"), period=PERIOD, **kw)
        assert fresh
        return row.id


def _row(db: Database, report_id: int) -> Report:
    with db.session() as session:
        row = session.get(Report, report_id)
        assert row is not None
        session.expunge(row)
        return row


def _manager(session: Session, n: int = 1) -> User:
    user = User(email=f"manager{n}@example.test", name=f"Manager {n}", role="manager", password_hash="x")
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    sent: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr("workers.enqueue._publish", lambda name, *args: sent.append((name, args)))
    return sent


def test_a_report_is_generated_stored_and_marked_done(
    db: Database, practice: Practice, report_settings: Settings
) -> None:
    report_id = _request(db)
    progress: list[int] = []
    assert generate_report(db, report_settings, report_id, now=NOW, on_progress=progress.append) is Outcome.DONE
    row = _row(db, report_id)
    assert (row.status, row.progress, row.error) == ("done", 100, None)
    path = Path(row.file_path or "")
    assert path.parent == report_settings.reports_dir
    content = path.read_bytes()
    assert content.startswith(b"%PDF-")
    assert row.sha256 == hashlib.sha256(content).hexdigest()
    assert row.size_bytes == len(content)
    assert progress == sorted(progress)
    assert progress[-1] == 100
    # A redelivered task finds the row done and does nothing.
    assert generate_report(db, report_settings, report_id, now=NOW) is Outcome.SKIPPED
    with db.session() as session:
        assert len(session.scalars(select(Report)).all()) == 1


def test_one_row_per_scope_and_period(db: Database, practice: Practice) -> None:
    with db.unit_of_work() as session:
        first, fresh = request_report(session, scope=ReportScope("practice"), period=PERIOD)
        again, fresh_again = request_report(session, scope=ReportScope("practice"), period=PERIOD)
        other, _ = request_report(session, scope=ReportScope("team", practice.teams["North"].id), period=PERIOD)
    assert fresh
    assert not fresh_again
    assert first.id == again.id != other.id


def test_regenerating_replaces_the_file_atomically(
    db: Database, practice: Practice, report_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_id = _request(db)
    generate_report(db, report_settings, report_id, now=NOW)
    path = Path(_row(db, report_id).file_path or "")
    old = path.read_bytes()
    inode = path.stat().st_ino
    with db.unit_of_work() as session:
        row, fresh = request_report(session, scope=ReportScope("practice"), period=PERIOD)
    assert fresh
    assert row.id == report_id
    assert path.read_bytes() == old  # the old file stays until the new one is ready

    seen: list[tuple[Path, Path, bytes]] = []
    real_replace = os.replace

    def watching(src: Any, dst: Any) -> None:
        seen.append((Path(src), Path(dst), Path(dst).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(operations.os, "replace", watching)
    later = NOW.replace(day=26)
    assert generate_report(db, report_settings, report_id, now=later) is Outcome.DONE
    ((src, dst, before),) = seen
    assert dst == path
    assert src.parent == path.parent
    assert src.name.startswith(f".{path.name}.")
    assert before == old  # at the instant of the swap the reader still had the whole old file
    new = path.read_bytes()
    assert new != old
    assert path.stat().st_ino != inode
    assert _row(db, report_id).sha256 == hashlib.sha256(new).hexdigest()
    assert list(path.parent.glob("*.tmp")) == []
    with db.session() as session:
        assert len(session.scalars(select(Report)).all()) == 1


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.pdf"
    store_file_atomically(target, b"%PDF-old")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(operations.os, "fsync", broken)
    with pytest.raises(OSError, match="No space"):
        store_file_atomically(target, b"%PDF-new-and-longer")
    assert target.read_bytes() == b"%PDF-old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.pdf"]


def test_a_refused_resource_fails_the_report_for_good(
    db: Database, practice: Practice, report_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(html: str, **_: Any) -> bytes:
        raise RefusedResourceError([RefusedFetch("file:///etc/passwd", "outside the report assets folder")])

    monkeypatch.setattr(reports.assemble, "render_pdf", refuse)
    report_id = _request(db)
    assert generate_report(db, report_settings, report_id, now=NOW) is Outcome.FAILED
    row = _row(db, report_id)
    assert row.status == "failed"
    assert "outside its bundled assets" in (row.error or "")
    assert "passwd" not in (row.error or "")
    assert row.file_path is None
    assert generate_report(db, report_settings, report_id, now=NOW) is Outcome.SKIPPED  # not retried


def test_a_transient_error_puts_the_report_back_for_a_retry(
    db: Database, practice: Practice, report_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = reports.assemble.render_pdf

    def flaky(html: str, **kw: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real(html, **kw)

    monkeypatch.setattr(reports.assemble, "render_pdf", flaky)
    report_id = _request(db)
    assert generate_report(db, report_settings, report_id, now=NOW) is Outcome.RETRY
    assert _row(db, report_id).status == "pending"
    assert generate_report(db, report_settings, report_id, now=NOW) is Outcome.DONE


def test_a_report_whose_worker_keeps_dying_is_given_up(
    db: Database, practice: Practice, report_settings: Settings
) -> None:
    report_id = _request(db)
    with db.unit_of_work() as session:
        session.get(Report, report_id).attempts = operations.MAX_ATTEMPTS  # type: ignore[union-attr]
    assert generate_report(db, report_settings, report_id) is Outcome.SKIPPED
    assert _row(db, report_id).status == "failed"


def test_the_requester_is_notified_with_a_link_and_nothing_else(
    db: Database, session: Session, practice: Practice, report_settings: Settings, published: list[Any]
) -> None:
    manager = _manager(session)
    other = _manager(session, 2)
    session.commit()
    report_id = _request(db, requested_by_id=manager.id)
    generate_report(db, report_settings, report_id, now=NOW)
    with db.session() as s:
        (note,) = s.scalars(select(Notification)).all()
        assert (note.template, note.channel, note.to_address) == ("report_ready", "email", manager.email)
        assert note.context == {"link": f"http://rapport.test/manager/reports/{report_id}", "language": "en"}
        assert other.email != note.to_address
    assert ("notifications.send", (note.id,)) in published


def test_scheduled_reports_notify_managers_once_for_the_practice(
    db: Database, session: Session, practice: Practice, report_settings: Settings, published: list[Any]
) -> None:
    managers = [_manager(session, 1), _manager(session, 2)]
    session.commit()
    result = request_month(db, report_settings, PERIOD)
    assert result == {"period": PERIOD, "requested": 3, "already_ran": False}  # the practice and two teams
    assert [name for name, _ in published] == ["reports.generate"] * 3
    assert request_month(db, report_settings, PERIOD)["already_ran"] is True  # keyed by period: a no-op
    with db.session() as s:
        rows = s.scalars(select(Report).order_by(Report.id)).all()
        assert [r.scope for r in rows] == ["practice", *(f"team:{t.id}" for t in practice.teams.values())]
        assert s.scalar(select(JobRun.result).where(JobRun.job == "reports.monthly")) == {
            "reports": [r.id for r in rows]
        }
        ids = [r.id for r in rows]
    for report_id in ids:
        generate_report(db, report_settings, report_id, now=NOW)
    with db.session() as s:
        notes = s.scalars(select(Notification)).all()
        assert sorted(n.to_address for n in notes) == sorted(m.email for m in managers)
        assert {n.context["link"] for n in notes} == {f"http://rapport.test/manager/reports/{ids[0]}"}


def test_the_monthly_job_asks_for_the_month_just_ended(
    db: Database, report_settings: Settings, published: list[Any]
) -> None:
    from datetime import UTC, datetime

    # 00:30 on 1 November in London is still 31 October in UTC: the month just ended is October either way.
    result = request_month(db, report_settings, now=datetime(2026, 11, 1, 0, 30, tzinfo=UTC))
    assert result["period"] == "2026-10"
    result = request_month(db, report_settings, now=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    assert result["period"] == "2026-09"


def test_the_beat_schedule_runs_the_monthly_job_on_the_first(report_settings: Settings) -> None:
    from workers.schedule import beat_schedule

    entry = beat_schedule(report_settings)["monthly-reports"]
    assert entry["task"] == "reports.monthly"
    schedule = entry["schedule"]
    assert schedule.day_of_month == {1}
    assert schedule.hour == {6}
    assert schedule.minute == {30}


def test_the_task_takes_its_time_limits_from_settings() -> None:
    from workers import runtime

    task = tasks.generate
    settings = runtime.settings()
    assert task.soft_time_limit == settings.report_soft_time_limit
    assert task.time_limit == settings.report_time_limit
    assert task.acks_late
    assert task.reject_on_worker_lost


def test_the_memory_limit_applies_during_the_task_only() -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    with tasks.address_space_limit(256 * 1024 * 1024):
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        assert soft != resource.RLIM_INFINITY
        with pytest.raises(MemoryError):
            bytearray(512 * 1024 * 1024)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
