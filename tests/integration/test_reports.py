"""Monthly reports end to end: a real worker on Redis and PostgreSQL generates the rows and files, once."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.accounts.models import Team, User
from services.config import Settings
from services.db import Database
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from services.reporting.models import Report
from services.reporting.operations import request_report
from services.reporting.periods import ReportScope
from tests.integration.conftest import SmtpSink, WorkerProcess, wait_for
from tests.unit.reporting.practice import PERIOD, Practice, Texts, build_practice
from workers.enqueue import enqueue_after_commit, send_notification_after_commit
from workers.tasks.reports import request_month

MANAGER = "reports-manager@example.test"


@pytest.fixture(scope="module")
def practice(it_db: Database) -> Practice:
    """The fixture practice of the unit tests, committed to the integration database (names of its own)."""
    with it_db.unit_of_work() as session:
        built = build_practice(session, texts=Texts(team=" (reports)"))
        session.add(User(email=MANAGER, name="Report Manager", role="manager", password_hash="x"))
    return built


def _reports(db: Database) -> list[Report]:
    with db.session() as session:
        rows = list(session.scalars(select(Report).where(Report.period == PERIOD).order_by(Report.id)))
        for row in rows:
            session.expunge(row)
        return rows


def _done(db: Database, count: int) -> list[Report]:
    rows = _reports(db)
    failed = [r for r in rows if r.status == "failed"]
    assert not failed, [r.error for r in failed]
    return rows if len(rows) == count and all(r.status == "done" for r in rows) else []


def test_the_monthly_job_generates_each_report_once_and_notifies_managers(
    it_db: Database,
    it_settings: Settings,
    practice: Practice,
    running_worker: WorkerProcess,
    smtp: SmtpSink,
    celery_publisher: Any,
) -> None:
    # The integration database is shared by the session: other tests' teams get their reports too.
    with it_db.session() as session:
        teams = session.scalar(select(func.count()).select_from(Team)) or 0
    assert teams >= len(practice.teams)
    result = request_month(it_db, it_settings, PERIOD)
    assert result["requested"] == 1 + teams
    rows = wait_for(lambda: _done(it_db, 1 + teams), timeout=120, what="the practice and team reports done")
    practice_row = next(r for r in rows if r.scope == "practice")
    path = Path(practice_row.file_path or "")
    assert path.parent == it_settings.reports_dir
    content = path.read_bytes()
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == practice_row.sha256

    # The managers hear that it is ready: a link, nothing else.
    [message] = wait_for(lambda: smtp.to(MANAGER), timeout=60, what="the report-ready email")
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"/manager/reports/{practice_row.id}" in body
    assert "PDF" not in body.upper().replace("DOWNLOAD", "")
    assert not message.is_multipart()  # no attachment
    assert not any(c.code in body or c.last_name in body for c in practice.clients)

    # Running the task again (a redelivery, a second beat) gives the same single row and file, and no new email.
    assert request_month(it_db, it_settings, PERIOD)["already_ran"] is True
    with it_db.unit_of_work() as session:
        enqueue_after_commit(session, "reports.generate", practice_row.id)
        enqueue_after_commit(session, "reports.generate", practice_row.id)
    with it_db.unit_of_work() as session:
        # A later message proves the worker has drained what was queued before it.
        note = queue_notification(session, channel="email", template="test_message", to_address="after@example.test")
        send_notification_after_commit(session, note.id)
    wait_for(lambda: smtp.to("after@example.test"), what="the follow-up message")
    again = _reports(it_db)
    assert [(r.id, r.status, r.sha256) for r in again] == [(r.id, r.status, r.sha256) for r in rows]
    assert path.read_bytes() == content
    with it_db.session() as session:
        ready = select(func.count()).where(Notification.template == "report_ready", Notification.to_address == MANAGER)
        assert session.scalar(ready) == 1
    assert len(smtp.to(MANAGER)) == 1


def test_regenerating_replaces_the_row_in_place(
    it_db: Database,
    it_settings: Settings,
    practice: Practice,
    running_worker: WorkerProcess,
    celery_publisher: Any,
) -> None:
    scope = ReportScope("clinician", practice.clinicians[0].id)
    ids = []
    for _ in range(2):
        with it_db.unit_of_work() as session:
            row, fresh = request_report(session, scope=scope, period=PERIOD)
            assert fresh
            enqueue_after_commit(session, "reports.generate", row.id)
            ids.append(row.id)

        def done(report_id: int = row.id) -> bool:
            with it_db.session() as session:
                stored = session.get(Report, report_id)
                assert stored is not None
                assert stored.status != "failed", stored.error
                return stored.status == "done"

        wait_for(done, timeout=90, what="the clinician report done")
    assert ids[0] == ids[1]
    with it_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Report).where(Report.scope == str(scope))) == 1
    assert not list(it_settings.reports_dir.glob("*.tmp"))
