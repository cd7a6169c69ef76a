"""The manager's report pages and the reports API: status, progress, request, download (audited), access."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.audit.models import AuditEvent
from services.config import Settings
from services.db import Database
from services.reporting.models import Report
from services.reporting.operations import request_report
from services.reporting.periods import ReportScope
from tests.unit.reporting.practice import NOW, PERIOD, Practice
from tests.unit.web.conftest import csrf_token
from workers.tasks.reports import generate_report


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    sent: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr("workers.enqueue._publish", lambda name, *args: sent.append((name, args)))
    return sent


def ready_report(db: Database, settings: Settings) -> int:
    with db.unit_of_work() as session:
        row, _ = request_report(session, scope=ReportScope("practice"), period=PERIOD)
        report_id = row.id
    assert generate_report(db, settings, report_id, now=NOW).value == "done"
    return report_id


def audit(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_the_manager_page_lists_reports_with_their_status(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("manager")
    session.add_all(
        [
            Report(scope="practice", period="2026-09", status="done", file_path=None),
            Report(scope="practice", period="2026-10", status="running", progress=40),
        ]
    )
    session.flush()
    page = client.get("/manager/").get_data(as_text=True)
    assert "Being generated" in page
    assert "(40%)" in page
    assert "Ready" in page
    assert 'hx-trigger="every 3s"' in page  # htmx polls while a report is being generated
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page  # and without JavaScript
    assert "Generate a report" in page
    assert 'name="scope"' in page
    assert 'name="period"' in page


def test_the_page_stops_polling_when_nothing_is_under_way(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("manager")
    session.add(Report(scope="practice", period="2026-09", status="done"))
    session.flush()
    page = client.get("/manager/").get_data(as_text=True)
    assert "hx-trigger" not in page
    assert "http-equiv" not in page
    fragment = client.get("/manager/", headers={"HX-Request": "true", "HX-Target": "reports"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith("{#") is False
    assert 'id="reports"' in body
    assert "<html" not in body


def test_a_manager_asks_for_a_report_and_follows_its_progress(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    db: Database,
    practice: Practice,
    test_settings: Settings,
    published: list[Any],
) -> None:
    manager = signed_in("manager")
    team = practice.teams["North"]
    token = csrf_token(client, "/manager/")
    response = client.post(
        "/manager/reports", data={"period": "2026-10", "scope": f"team:{team.id}", "csrf_token": token}
    )
    assert response.status_code == 302
    row = session.scalars(select(Report)).one()
    assert (row.scope, row.period, row.status, row.requested_by_id) == (
        f"team:{team.id}",
        "2026-10",
        "pending",
        manager.id,
    )
    assert published == [("reports.generate", (row.id,))]
    (event,) = audit(session, "report_requested")
    assert (event.actor_id, event.subject_id) == (manager.id, row.id)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Waiting for a worker" in page
    assert "<progress" in page
    assert 'hx-trigger="every 2s"' in page
    assert "Team North" in page

    assert generate_report(db, test_settings, row.id, now=NOW).value == "done"
    fragment = client.get(
        f"/manager/reports/{row.id}", headers={"HX-Request": "true", "HX-Target": "report-status"}
    ).get_data(as_text=True)
    assert "Ready" in fragment
    assert "Download PDF" in fragment
    assert "hx-trigger" not in fragment
    assert "<html" not in fragment


def test_a_second_request_while_one_is_queued_is_not_queued_again(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, practice: Practice, published: list[Any]
) -> None:
    signed_in("admin")
    assert client.get("/manager/").status_code == 403  # the manager's home is the manager's
    page = client.get("/manager/reports").get_data(as_text=True)
    assert "Generate a report" in page
    for _ in range(2):
        token = csrf_token(client, "/manager/reports")
        client.post("/manager/reports", data={"period": "2026-10", "scope": "practice", "csrf_token": token})
    assert len(published) == 1
    assert len(session.scalars(select(Report)).all()) == 1


def test_bad_requests_are_refused_with_a_message(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, published: list[Any]
) -> None:
    signed_in("manager")
    token = csrf_token(client, "/manager/")
    response = client.post("/manager/reports", data={"period": "2031-01", "scope": "practice", "csrf_token": token})
    assert response.status_code == 400
    response = client.post("/manager/reports", data={"period": "2026-10", "scope": "team:9999", "csrf_token": token})
    assert response.status_code == 400
    assert client.post("/manager/reports", data={"period": "2026-10", "scope": "practice"}).status_code == 400  # CSRF
    assert published == []
    assert session.scalars(select(Report)).all() == []


def test_download_is_audited_before_it_is_sent(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    db: Database,
    practice: Practice,
    test_settings: Settings,
    published: list[Any],
) -> None:
    manager = signed_in("manager")
    report_id = ready_report(db, test_settings)
    response = client.get(f"/manager/reports/{report_id}/download")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert "attachment; filename=rapport-monthly-practice-2026-10.pdf" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    response.close()
    (event,) = audit(session, "report_downloaded")
    assert (event.actor_id, event.subject_type, event.subject_id) == (manager.id, "report", report_id)
    assert event.detail["sha256"] == session.get(Report, report_id).sha256  # type: ignore[union-attr]


def test_regenerating_keeps_the_old_file_downloadable(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    db: Database,
    practice: Practice,
    test_settings: Settings,
    published: list[Any],
) -> None:
    signed_in("manager")
    report_id = ready_report(db, test_settings)
    token = csrf_token(client, f"/manager/reports/{report_id}")
    response = client.post(f"/manager/reports/{report_id}/regenerate", data={"csrf_token": token})
    assert response.status_code == 302
    assert published[-1] == ("reports.generate", (report_id,))
    page = client.get(f"/manager/reports/{report_id}").get_data(as_text=True)
    assert "Waiting for a worker" in page
    assert "previous version" in page
    download = client.get(f"/manager/reports/{report_id}/download")
    assert download.status_code == 200
    download.close()
    assert len(audit(session, "report_regeneration_requested")) == 1


def test_a_report_without_a_file_cannot_be_downloaded(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("manager")
    row = Report(scope="practice", period="2026-10", status="failed", error="could not be assembled: x")
    session.add(row)
    session.flush()
    assert client.get(f"/manager/reports/{row.id}/download").status_code == 404
    page = client.get(f"/manager/reports/{row.id}").get_data(as_text=True)
    assert "could not be assembled" in page
    assert client.get("/manager/reports/999999").status_code == 404
    assert audit(session, "report_downloaded") == []


@pytest.mark.parametrize("role", ["clinician", "supervisor", "front_desk"])
def test_only_managers_and_admins_reach_reports(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, test_settings: Settings, role: str
) -> None:
    path = test_settings.reports_dir / "monthly-practice-2026-10.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.7 test")
    row = Report(scope="practice", period="2026-10", status="done", file_path=str(path), sha256="0" * 64)
    session.add(row)
    session.flush()
    signed_in(role)
    for url in ("/manager/", "/manager/reports", f"/manager/reports/{row.id}", f"/manager/reports/{row.id}/download"):
        assert client.get(url).status_code == 403, url
    assert client.post("/manager/reports", data={"period": "2026-10", "scope": "practice"}).status_code in (400, 403)
    assert client.post(f"/manager/reports/{row.id}/regenerate").status_code in (400, 403)
    assert audit(session, "report_downloaded") == []
    assert session.get(Report, row.id).status == "done"  # type: ignore[union-attr]


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, session: Session) -> None:
    row = Report(scope="practice", period="2026-10", status="done")
    session.add(row)
    session.flush()
    response = client.get(f"/manager/reports/{row.id}/download")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_no_client_data_on_the_report_pages(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, practice: Practice
) -> None:
    signed_in("manager")
    row = Report(scope=f"clinician:{practice.clinicians[0].id}", period="2026-10", status="running", progress=30)
    session.add(row)
    session.flush()
    for path in ("/manager/", f"/manager/reports/{row.id}"):
        page = client.get(path).get_data(as_text=True)
        assert practice.clinicians[0].name in page  # the scope is named
        assert not any(c.code in page or c.last_name in page or c.first_name in page for c in practice.clients)


# ---------------------------------------------------------------------------------------------------------------
# The API


def bearer(session: Session, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_token(session, user=user)}"}


def test_the_api_lists_requests_and_downloads_reports(
    client: FlaskClient,
    staff: Callable[..., User],
    session: Session,
    db: Database,
    practice: Practice,
    test_settings: Settings,
    published: list[Any],
) -> None:
    manager = staff("manager")
    headers = bearer(session, manager)
    response = client.post("/api/v1/reports", json={"period": "2026-10", "scope": "practice"}, headers=headers)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["download_url"]) == ("pending", None)
    assert published == [("reports.generate", (body["id"],))]
    assert response.headers["Location"].endswith(f"/api/v1/reports/{body['id']}")
    generate_report(db, test_settings, body["id"], now=NOW)
    listed = client.get("/api/v1/reports", headers=headers).get_json()["reports"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert listed[0]["status"] == "done"
    one = client.get(f"/api/v1/reports/{body['id']}", headers=headers).get_json()
    assert one["sha256"]
    assert one["download_url"] == f"/api/v1/reports/{body['id']}/download"
    pdf = client.get(one["download_url"], headers=headers)
    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF-")
    pdf.close()
    (event,) = audit(session, "report_downloaded")
    assert event.actor_id == manager.id
    assert event.detail["via"] == "api"
    assert client.get("/api/v1/reports?period=2026-09", headers=headers).get_json() == {"reports": []}


def test_the_api_refuses_bad_input_and_other_roles(
    client: FlaskClient, staff: Callable[..., User], session: Session, practice: Practice, published: list[Any]
) -> None:
    headers = bearer(session, staff("admin"))
    for payload, status in (
        ({"period": "2026-13"}, 400),
        ({"period": "2031-01"}, 400),
        ({"period": 202610}, 400),
        ({"period": "2026-10", "scope": "team:999999"}, 404),
        ({"period": "2026-10", "scope": "everyone"}, 400),
    ):
        response = client.post("/api/v1/reports", json=payload, headers=headers)
        assert response.status_code == status, payload
        assert response.get_json()["error"]["status"] == status
    assert client.post("/api/v1/reports", data="nope", headers=headers).status_code == 400
    assert client.get("/api/v1/reports?period=October", headers=headers).status_code == 400
    assert client.get("/api/v1/reports/123456", headers=headers).status_code == 404
    clinician = bearer(session, staff("clinician"))
    assert client.get("/api/v1/reports", headers=clinician).status_code == 403
    assert client.post("/api/v1/reports", json={"period": "2026-10"}, headers=clinician).status_code == 403
    assert client.get("/api/v1/reports").status_code == 401
    assert published == []


def test_the_openapi_document_describes_the_report_endpoints(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert {"/reports", "/reports/{report_id}", "/reports/{report_id}/download"} <= set(document["paths"])
    assert document["paths"]["/reports"]["post"]["operationId"] == "requestReport"
    assert "Report" in document["components"]["schemas"]
