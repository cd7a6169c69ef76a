"""Alerts in the JSON API: scoped like the pages (404 outside), paginated, validated, audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.alerts.models import Alert, AlertAction
from services.audit.models import AuditEvent
from tests.factories import make_episode
from tests.unit.clinician.conftest import alliance_alert, risk_alert


@pytest.fixture
def bearer(session: Session, staff: Callable[..., User]) -> Callable[..., tuple[User, dict[str, str]]]:
    """A staff user and the Authorization header of a fresh API token."""

    def build(role: str = "clinician", **kw: Any) -> tuple[User, dict[str, str]]:
        user = staff(role, **kw)
        token = create_api_token(session, user=user)
        session.flush()
        return user, {"Authorization": f"Bearer {token}"}

    return build


def test_list_is_scoped_ordered_filtered_and_paged(
    client: FlaskClient,
    session: Session,
    bearer: Callable[..., tuple[User, dict[str, str]]],
    staff: Callable[..., User],
) -> None:
    me, auth = bearer("clinician", team="Team Api")
    alliance = alliance_alert(session, me)
    risk = risk_alert(session, make_episode(session, clinician=me))
    alliance_alert(session, staff("clinician", team="Team Elsewhere"))
    body = client.get("/api/v1/alerts", headers=auth).get_json()
    assert [a["id"] for a in body["alerts"]] == [risk.id, alliance.id]
    assert body["total"] == 2
    assert body["alerts"][1]["summary"].startswith("Partnership score fell from 36 to 27")
    assert body["alerts"][1]["client"]["code"] == alliance.episode.client.code
    assert "name" not in body["alerts"][1]["client"]
    assert body["alerts"][1]["page_url"] == f"/clinician/alerts/{alliance.id}"
    only = client.get("/api/v1/alerts?kind=alliance&status=open", headers=auth).get_json()
    assert [a["id"] for a in only["alerts"]] == [alliance.id]
    paged = client.get("/api/v1/alerts?per_page=1&page=2", headers=auth).get_json()
    assert [a["id"] for a in paged["alerts"]] == [alliance.id]
    assert paged["pages"] == 2
    for bad in ("status=closed", "kind=bad", "page=0", "per_page=101", "page=x", "colour=red"):
        response = client.get(f"/api/v1/alerts?{bad}", headers=auth)
        assert response.status_code == 400, bad
        assert response.get_json()["error"]["status"] == 400


def test_supervisor_sees_the_team_only(
    client: FlaskClient,
    session: Session,
    bearer: Callable[..., tuple[User, dict[str, str]]],
    staff: Callable[..., User],
) -> None:
    _, auth = bearer("supervisor", team="Team Owl")
    inside = alliance_alert(session, staff("clinician", team="Team Owl"))
    outside = alliance_alert(session, staff("clinician", team="Team Hawk"))
    body = client.get("/api/v1/alerts", headers=auth).get_json()
    assert [a["id"] for a in body["alerts"]] == [inside.id]
    assert client.get(f"/api/v1/alerts/{inside.id}", headers=auth).status_code == 200
    assert client.get(f"/api/v1/alerts/{outside.id}", headers=auth).status_code == 404


def test_detail_has_evidence_actions_and_suggestions_and_is_audited(
    client: FlaskClient, session: Session, bearer: Callable[..., tuple[User, dict[str, str]]]
) -> None:
    me, auth = bearer()
    alert = alliance_alert(session, me)
    body = client.get(f"/api/v1/alerts/{alert.id}", headers=auth).get_json()
    kinds = [e["kind"] for e in body["evidence"]]
    assert kinds == ["RUPTURE_DEV", "RUPTURE_DROP", "LOW_ALLIANCE"]
    dev = body["evidence"][0]["numbers"]
    assert (dev["m"], dev["s"], dev["threshold"]) == (35.75, 3.0, 29.75)
    assert body["suggestions"][0]["key"].startswith("shared_responsibility.")
    assert body["actions"] == []
    views = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "client_viewed", AuditEvent.actor_id == me.id)
    )
    assert [e.detail["what"] for e in views] == [f"alert:{alert.id}:api"]


def test_actions_are_recorded_audited_and_acknowledging_twice_is_harmless(
    client: FlaskClient, session: Session, bearer: Callable[..., tuple[User, dict[str, str]]]
) -> None:
    me, auth = bearer()
    alert = alliance_alert(session, me)
    base = f"/api/v1/alerts/{alert.id}"
    first = client.post(f"{base}/acknowledge", headers=auth)
    assert first.status_code == 200
    assert first.get_json()["action"]["action"] == "acknowledged"
    assert first.get_json()["alert"]["status"] == "acknowledged"
    second = client.post(f"{base}/acknowledge", headers=auth, json={})
    assert second.status_code == 200
    assert second.get_json()["action"] is None
    note = client.post(f"{base}/notes", headers=auth, json={"text": "Discussed in supervision"})
    assert note.status_code == 201
    step = client.post(
        f"{base}/repair-steps", headers=auth, json={"suggestion": "general.invite_feedback", "text": "Asked"}
    )
    assert step.status_code == 201
    assert step.get_json()["action"]["component"] == "general"
    resolved = client.post(f"{base}/resolve", headers=auth, json={"reason": "repaired"})
    assert resolved.status_code == 200
    assert resolved.get_json()["alert"]["status"] == "resolved"
    assert [a["action"] for a in resolved.get_json()["alert"]["actions"]] == [
        "acknowledged",
        "note",
        "repair_step",
        "resolved",
    ]
    again = client.post(f"{base}/resolve", headers=auth, json={"reason": "repaired"})
    assert again.status_code == 409
    audited = [
        e.action
        for e in session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_type == "alert", AuditEvent.subject_id == alert.id)
            .order_by(AuditEvent.id)
        )
    ]
    assert audited == ["alert_acknowledged", "alert_note", "alert_repair_step", "alert_resolved"]


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("notes", None, 400),
        ("notes", {"text": ""}, 400),
        ("notes", {"text": 5}, 400),
        ("notes", {"text": "x" * 2001}, 400),
        ("notes", {"text": "ok", "extra": 1}, 400),
        ("repair-steps", {}, 400),
        ("repair-steps", {"suggestion": "nope.nope"}, 400),
        ("repair-steps", {"text": "x", "component": "moon"}, 400),
        ("resolve", {}, 400),
        ("resolve", {"reason": "because"}, 400),
        ("resolve", {"reason": "other"}, 400),
        ("acknowledge", {"surprise": True}, 400),
    ],
)
def test_bad_bodies_are_400_and_write_nothing(
    client: FlaskClient,
    session: Session,
    bearer: Callable[..., tuple[User, dict[str, str]]],
    path: str,
    payload: dict[str, Any] | None,
    status: int,
) -> None:
    me, auth = bearer()
    alert = alliance_alert(session, me)
    url = f"/api/v1/alerts/{alert.id}/{path}"
    response = (
        client.post(url, headers=auth, data="not json", content_type="text/plain")
        if payload is None
        else client.post(url, headers=auth, json=payload)
    )
    assert response.status_code == status
    assert response.get_json()["error"]["detail"]
    assert list(session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id))) == []
    session.expire_all()
    assert session.get(Alert, alert.id).status == "open"  # type: ignore[union-attr]


def test_clinician_a_gets_404_for_clinician_b_alerts_in_the_api(
    client: FlaskClient,
    session: Session,
    bearer: Callable[..., tuple[User, dict[str, str]]],
    staff: Callable[..., User],
) -> None:
    _, auth = bearer("clinician", team="Team A")
    b = staff("clinician", team="Team B")
    theirs = alliance_alert(session, b)
    base = f"/api/v1/alerts/{theirs.id}"
    assert client.get(base, headers=auth).status_code == 404
    for path, payload in (
        ("acknowledge", {}),
        ("notes", {"text": "x"}),
        ("repair-steps", {"text": "x"}),
        ("resolve", {"reason": "not_a_rupture"}),
    ):
        assert client.post(f"{base}/{path}", headers=auth, json=payload).status_code == 404, path
    assert client.get("/api/v1/alerts", headers=auth).get_json()["alerts"] == []
    assert list(session.scalars(select(AlertAction).where(AlertAction.alert_id == theirs.id))) == []


def test_other_roles_and_anonymous_callers_are_refused(
    client: FlaskClient, session: Session, bearer: Callable[..., tuple[User, dict[str, str]]]
) -> None:
    assert client.get("/api/v1/alerts").status_code == 401
    for role in ("front_desk", "manager", "admin"):
        _, auth = bearer(role)
        assert client.get("/api/v1/alerts", headers=auth).status_code == 403, role


def test_openapi_describes_the_alert_endpoints(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    for path in (
        "/alerts",
        "/alerts/{alert_id}",
        "/alerts/{alert_id}/acknowledge",
        "/alerts/{alert_id}/notes",
        "/alerts/{alert_id}/repair-steps",
        "/alerts/{alert_id}/resolve",
    ):
        assert path in document["paths"], path
    assert document["paths"]["/alerts/{alert_id}/resolve"]["post"]["responses"]["409"]
    schemas = document["components"]["schemas"]
    for name in ("Alert", "AlertDetail", "AlertList", "AlertAction", "AlertNote", "AlertRepairStep", "AlertResolve"):
        assert name in schemas
    refs = {ref for ref in _refs(document) if ref.startswith("#/components/schemas/")}
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
