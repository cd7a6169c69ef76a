"""PostgreSQL: the admin's audit trail page and its CSV export (streamed from a server-side cursor), and a refused
look-up audited, through the real app."""

from __future__ import annotations

import csv
import io
import secrets

from sqlalchemy import select

from services.audit.models import AuditEvent
from services.audit.operations import record_event
from services.config import Settings
from services.db import Database
from tests.factories import make_user
from tests.unit.web.conftest import login
from web.app import create_app


def test_the_trail_pages_and_exports_on_postgresql(it_settings: Settings, it_db: Database) -> None:
    tag = secrets.token_hex(4)
    action = f"pg_probe_{tag}"
    with it_db.unit_of_work() as session:
        admin = make_user(session, role="admin", email=f"admin-{tag}@example.test")
        clinician = make_user(session, role="clinician", email=f"clin-{tag}@example.test")
        for i in range(4_500):  # more than one fetch of the export's cursor
            record_event(
                session, action=action, actor_id=clinician.id, detail={"i": i, "note": "=1+1" if i == 7 else "ok"}
            )
        admin_id, clinician_id = admin.id, clinician.id
    web = create_app(settings=it_settings, database=it_db).test_client()
    assert login(web, f"admin-{tag}@example.test").status_code == 302
    first = web.get("/admin/audit", query_string={"action": action, "person": str(clinician_id)})
    assert first.status_code == 200
    assert "4500 matching events." in first.get_data(as_text=True)
    export = web.get("/admin/audit/export.csv", query_string={"action": action})
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 4_500
    assert [int(row["id"]) for row in rows] == sorted(int(row["id"]) for row in rows)
    assert all(not row["detail"].startswith("=") for row in rows)
    prober = create_app(settings=it_settings, database=it_db).test_client()
    assert login(prober, f"clin-{tag}@example.test").status_code == 302
    assert prober.get("/clinician/clients/1999999999").status_code == 404
    with it_db.session() as session:
        exported = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "audit_trail_exported", AuditEvent.actor_id == admin_id)
        ).one()
        assert exported.detail["rows"] == 4_500
        assert exported.detail["action"] == action
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "access_refused", AuditEvent.actor_id == clinician_id)
        ).one()
        assert refused.detail["ids"] == {"client_id": "1999999999"}
