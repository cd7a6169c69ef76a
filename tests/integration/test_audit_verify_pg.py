"""PostgreSQL: the streamed verify walk checks the writer's chain, names an altered row mid-stream, and leaves the
session usable after stopping early (the stream is closed, not left half-read on the connection)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from services.audit.chain import verify_chain
from services.audit.operations import record_event
from services.db import Database


def test_verify_streams_the_chain_and_names_an_altered_row(it_db: Database) -> None:
    with it_db.session() as session:
        before = verify_chain(session)
        assert before.ok, before
        for i in range(5_000):  # more than a streamed chunk, so the walk stops inside the stream
            record_event(
                session,
                action="verify_probe",
                actor_label=None if i % 3 else f"probe {i}",
                subject_type="client" if i % 2 else None,
                subject_id=i or None,
                ip="10.0.0.1" if i % 5 else None,
                detail={"i": i, "text": "ñ ü \\" + '"'},
            )
        session.flush()
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        whole = verify_chain(session)
        assert whole.ok, whole
        assert whole.rows == before.rows + 5_000
        target = before.rows + 1_500
        session.execute(
            text("UPDATE audit_events SET at = :at WHERE seq = :seq"),
            {"at": datetime(2026, 1, 1, tzinfo=UTC), "seq": target},
        )
        report = verify_chain(session)
        assert report.bad_seq == target
        assert report.problem == "content or link does not match its hash"
        assert session.execute(text("SELECT 1")).scalar_one() == 1  # the connection is free for the next query
        session.rollback()
