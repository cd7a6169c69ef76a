"""The audit trail is a hash chain: verify names the first altered, removed or unchained row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services import schema
from services.audit.chain import GENESIS, verify_chain
from services.audit.models import AuditChain, AuditEvent
from services.audit.operations import record_event
from services.db import Database, reset_databases
from web.cli import cli


def _events(session: Session, n: int) -> list[AuditEvent]:
    events = [
        record_event(session, action="client_viewed", actor_label=f"s{i}", subject_id=i, detail={"what": f"chart {i}"})
        for i in range(n)
    ]
    session.flush()
    return events


def _without_guard(session: Session) -> None:
    """Drop the append-only triggers inside the test's transaction (rolled back): what an intruder with DDL does."""
    session.execute(text("DROP TRIGGER audit_events_no_update"))
    session.execute(text("DROP TRIGGER audit_events_no_delete"))


def test_an_untouched_chain_verifies(session: Session) -> None:
    before = verify_chain(session)
    assert before.ok, before
    events = _events(session, 5)
    report = verify_chain(session)
    assert report.ok, report
    assert report.rows == before.rows + 5
    assert [e.seq for e in events] == list(range(events[0].seq or 0, (events[0].seq or 0) + 5))
    assert all(e.row_hash and len(e.row_hash) == 64 and e.row_hash != GENESIS for e in events)


@pytest.mark.parametrize(
    ("column", "value"),
    [("detail", '{"what": "nothing to see"}'), ("actor_label", "someone else"), ("action", "login"), ("at", None)],
)
def test_an_altered_row_is_named(session: Session, column: str, value: str | None) -> None:
    events = _events(session, 4)
    _without_guard(session)
    target = events[1]
    if column == "at":
        session.execute(
            text("UPDATE audit_events SET at = '2020-01-01 00:00:00.000000' WHERE id = :i"), {"i": target.id}
        )
    else:
        session.execute(text(f"UPDATE audit_events SET {column} = :v WHERE id = :i"), {"v": value, "i": target.id})
    report = verify_chain(session)
    assert not report.ok
    assert (report.bad_id, report.bad_seq) == (target.id, target.seq)
    assert report.problem == "content or link does not match its hash"


def test_a_rehashed_row_still_breaks_the_link_to_the_next(session: Session) -> None:
    events = _events(session, 3)
    _without_guard(session)
    session.execute(text("UPDATE audit_events SET row_hash = :h WHERE id = :i"), {"h": "f" * 64, "i": events[0].id})
    report = verify_chain(session)
    assert report.bad_id == events[0].id


def test_a_removed_row_and_a_cut_off_end_are_named(session: Session) -> None:
    events = _events(session, 4)
    _without_guard(session)
    session.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": events[3].id})
    cut = verify_chain(session)
    assert not cut.ok
    assert cut.bad_id is None
    assert "the trail ends at" in (cut.problem or "")
    session.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": events[1].id})
    gap = verify_chain(session)
    assert (gap.bad_id, gap.problem) == (events[2].id, f"row missing before position {events[2].seq}")


def test_a_row_written_around_the_chain_is_named(session: Session) -> None:
    _events(session, 2)
    session.execute(
        text("INSERT INTO audit_events (at, action, detail) VALUES ('2026-12-01 10:00:00', 'forged', '{}')")
    )
    forged = session.scalar(select(func.max(AuditEvent.id)))
    report = verify_chain(session)
    assert (report.bad_id, report.problem) == (forged, "row written outside the chain")


@pytest.fixture
def file_database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite file of its own: real concurrent connections, and what the CLI opens."""
    database = Database(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    schema.upgrade(database.engine)
    yield database
    database.dispose()
    reset_databases()


def test_concurrent_writers_cannot_fork_the_chain(file_database: Database) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with file_database.unit_of_work() as session:
                    record_event(session, action="client_viewed", actor_label=f"w{n}", detail={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with file_database.session() as session:
        report = verify_chain(session)
        seqs = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        head = session.get(AuditChain, 1)
    assert report.ok, report
    assert report.rows == 90
    assert seqs == list(range(1, 91))
    assert head is not None
    assert head.seq == 90


def test_rapport_audit_verify_exits_nonzero_and_names_the_row(file_database: Database, tmp_path: Path) -> None:
    with file_database.unit_of_work() as session:
        ids = [e.id for e in _events(session, 3)]
    env = {
        "RAPPORT_ENV": "test",
        "RAPPORT_DATABASE_URL": str(file_database.url),
        "RAPPORT_VAR_DIR": str(tmp_path / "var"),
        "RAPPORT_SECRET_KEY": "x" * 40,
        "RAPPORT_BROKER_URL": "memory://",
    }
    intact = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact: 3 rows verified" in intact.output
    with file_database.unit_of_work() as session:
        _without_guard(session)
        session.execute(text("UPDATE audit_events SET ip = '10.0.0.9' WHERE id = :i"), {"i": ids[1]})
    broken = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert f"BROKEN at row id {ids[1]} (position 2)" in broken.output


def test_the_nightly_check_emails_each_admin_once_on_a_break(
    file_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.notifications.models import Notification
    from services.notifications.templates import render_message
    from tests.conftest import build_settings
    from tests.factories import make_user
    from workers import runtime
    from workers.schedule import beat_schedule
    from workers.tasks.ops import verify_audit

    settings = build_settings(tmp_path / "var", database_url=str(file_database.url))
    monkeypatch.setattr(runtime, "_settings", settings)
    assert any(entry["task"] == "ops.verify_audit" for entry in beat_schedule(settings).values())
    with file_database.unit_of_work() as session:
        admins = [make_user(session, role="admin").id for _ in range(2)]
        make_user(session, role="manager")
        ids = [e.id for e in _events(session, 3)]
    assert verify_audit() == {"ok": True, "rows": 3}
    with file_database.unit_of_work() as session:
        _without_guard(session)
        session.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": ids[0]})
    result = verify_audit()
    assert result["ok"] is False
    assert result["notified"] == 2
    assert verify_audit()["notified"] == 2  # the same day: the same two messages, not two more
    with file_database.session() as session:
        sent = session.scalars(select(Notification).where(Notification.template == "audit_chain_broken")).all()
    assert sorted(n.recipient_user_id for n in sent) == admins
    subject, body = render_message("audit_chain_broken", dict(sent[0].context), language="es")
    assert "auditoría" in subject
    assert "/admin/operations" in body
