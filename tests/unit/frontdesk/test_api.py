"""The front desk's JSON API: bearer auth and role, validation with JSON 4xx, CRUD, import, invitations, OpenAPI."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.clients.models import Appointment, Client
from services.db import utcnow
from services.surveys.invitations import dispatch_invitations, find_invitation_by_token
from services.surveys.models import Administration, Invitation
from tests.factories import make_client, make_episode
from tests.unit.frontdesk.conftest import POLICY, Booking


@pytest.fixture
def api(client: FlaskClient, staff: Callable[..., User], session: Session) -> Callable[..., Any]:
    """api(method, path, json=..., role="front_desk") with a bearer token of a fresh user of that role."""
    tokens: dict[str, str] = {}

    def call(method: str, path: str, *, role: str = "front_desk", **kw: Any) -> Any:
        if role not in tokens:
            tokens[role] = create_api_token(session, user=staff(role), name="test")
        headers = {"Authorization": f"Bearer {tokens[role]}", **kw.pop("headers", {})}
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kw)

    return call


def test_only_front_desk_tokens_may_use_these_endpoints(client: FlaskClient, api: Callable[..., Any]) -> None:
    assert client.get("/api/v1/clients").status_code == 401
    for role in ("clinician", "supervisor", "manager", "admin"):
        response = api("GET", "/clients", role=role)
        assert response.status_code == 403
        assert response.json["error"]["status"] == 403
    # A browser session cookie is not an API credential.
    assert client.post("/api/v1/clients", json={"first_name": "A", "last_name": "B"}).status_code == 401


def test_client_lifecycle_through_the_api(api: Callable[..., Any], session: Session) -> None:
    response = api(
        "POST",
        "/clients",
        json={"first_name": "Api", "last_name": "Client", "email": "API@example.test", "consent_email": True},
    )
    assert response.status_code == 201, response.json
    created = response.json
    assert created["email"] == "api@example.test"
    assert created["code"].startswith("C")
    got = api("GET", f"/clients/{created['id']}")
    assert got.status_code == 200
    assert got.json == created
    patched = api("PATCH", f"/clients/{created['id']}", json={"language": "es", "consent_email": False})
    assert patched.status_code == 200
    assert (patched.json["language"], patched.json["consent_email"], patched.json["first_name"]) == ("es", False, "Api")
    listed = api("GET", "/clients?q=Client&per_page=1")
    assert listed.status_code == 200
    assert listed.json["per_page"] == 1
    assert listed.json["total"] >= 1
    assert api("GET", "/clients/999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (None, "Send a JSON object"),
        ([1, 2], "Send a JSON object"),
        ({"first_name": "A"}, "Missing field(s): last_name"),
        ({"first_name": "A", "last_name": "B", "shoe_size": 42}, "Unknown field(s): shoe_size"),
        ({"first_name": "A", "last_name": "B", "consent_email": "yes"}, "consent_email must be true or false"),
        ({"first_name": "A", "last_name": "B", "consent_sms": True}, "needs a phone number"),
        ({"first_name": "A", "last_name": "B", "language": "fr"}, "Unknown language"),
        ({"first_name": 7, "last_name": "B"}, "first_name must be a string"),
    ],
)
def test_invalid_client_input_is_a_json_400_and_writes_nothing(
    api: Callable[..., Any], session: Session, body: Any, detail: str
) -> None:
    before = session.scalar(select(func.count()).select_from(Client))
    kwargs: dict[str, Any] = {"data": "not json", "content_type": "text/plain"} if body is None else {"json": body}
    response = api("POST", "/clients", **kwargs)
    assert response.status_code == 400
    assert detail in response.json["error"]["detail"]
    assert session.scalar(select(func.count()).select_from(Client)) == before


def test_episodes_and_appointments_through_the_api(
    api: Callable[..., Any], session: Session, staff: Callable[..., User]
) -> None:
    person = make_client(session)
    clinician = staff("clinician")
    response = api(
        "POST",
        "/episodes",
        json={
            "client_id": person.id,
            "clinician_id": clinician.id,
            "goals": ["Feel calmer"],
            "started_on": "2026-03-02",
        },
    )
    assert response.status_code == 201, response.json
    episode = response.json
    assert episode["protocol_code"] == "standard"
    assert api("GET", f"/clients/{person.id}/episodes").json["items"] == [episode]
    assert api("GET", f"/episodes/{episode['id']}").json == episode
    clinicians = api("GET", "/clinicians").json["items"]
    assert {"id": clinician.id, "name": clinician.name, "email": clinician.email} in clinicians
    protocols = {p["code"]: p for p in api("GET", "/protocols").json["items"]}
    assert protocols["standard"]["is_default"]
    start = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    made = api(
        "POST",
        "/appointments",
        json={
            "episode_id": episode["id"],
            "starts_at": start.isoformat(),
            "duration_minutes": 50,
            "source": "scheduler",
            "external_id": "S-1",
        },
    )
    assert made.status_code == 201, made.json
    appointment = made.json
    assert (appointment["status"], appointment["external_id"], appointment["client_id"]) == (
        "scheduled",
        "S-1",
        person.id,
    )
    duplicate = api(
        "POST",
        "/appointments",
        json={
            "episode_id": episode["id"],
            "starts_at": start.isoformat(),
            "duration_minutes": 50,
            "source": "scheduler",
            "external_id": "S-1",
        },
    )
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json["error"]["detail"]
    moved = api(
        "PATCH",
        f"/appointments/{appointment['id']}",
        json={
            "starts_at": (start + timedelta(days=1)).isoformat(),
            "ends_at": (start + timedelta(days=1, hours=1)).isoformat(),
        },
    )
    assert moved.status_code == 200
    assert moved.json["starts_at"] == (start + timedelta(days=1)).isoformat()
    listed = api("GET", f"/appointments?client_id={person.id}&status=scheduled")
    assert [a["id"] for a in listed.json["items"]] == [appointment["id"]]
    cancelled = api("POST", f"/appointments/{appointment['id']}/cancel", json={"reason": "client ill"})
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    assert api("POST", f"/appointments/{appointment['id']}/cancel").status_code == 200  # harmless repeat
    assert api("GET", "/appointments/999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"starts_at": "2026-03-02T10:00:00", "duration_minutes": 50}, "needs a UTC offset"),
        ({"starts_at": "tomorrow", "duration_minutes": 50}, "not an ISO 8601"),
        ({"starts_at": "2026-03-02T10:00:00Z"}, "Give ends_at, or duration_minutes"),
        ({"starts_at": "2026-03-02T10:00:00Z", "duration_minutes": 9000}, "Give ends_at, or duration_minutes"),
        ({"starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T09:00:00Z"}, "must end after it starts"),
    ],
)
def test_appointment_times_are_validated(
    api: Callable[..., Any], session: Session, body: dict[str, Any], detail: str
) -> None:
    episode = make_episode(session)
    response = api("POST", "/appointments", json={"episode_id": episode.id, **body})
    assert response.status_code == 400
    assert detail in response.json["error"]["detail"]
    assert (
        session.scalar(select(func.count()).select_from(Appointment).where(Appointment.episode_id == episode.id)) == 0
    )


def test_check_in_kiosk_link_and_invitations(
    api: Callable[..., Any], session: Session, book: Callable[..., Booking]
) -> None:
    booking = book(starts_in=timedelta(minutes=20))
    path = f"/appointments/{booking.appointment.id}"
    refused = api("POST", f"{path}/kiosk")
    assert refused.status_code == 400
    assert "Check the client in" in refused.json["error"]["detail"]
    assert api("POST", f"{path}/check-in").json["checked_in_at"] is not None
    kiosk = api("POST", f"{path}/kiosk", json={"phase": "pre"})
    assert kiosk.status_code == 201
    assert kiosk.json["invitation"]["channel"] == "kiosk"
    assert "link" not in kiosk.json
    link = api("POST", f"{path}/link", json={"phase": "post"})
    assert link.status_code == 201
    match = re.fullmatch(r"http://rapport\.test/s/([A-Za-z0-9_-]{43})", link.json["link"])
    assert match
    found = find_invitation_by_token(session, match.group(1))
    assert found is not None
    assert found.phase == "post"
    assert api("POST", f"{path}/link", json={"phase": "during"}).status_code == 400
    listed = api("GET", f"/invitations?client_id={booking.client.id}")
    assert {i["phase"] for i in listed.json["items"]} == {"pre", "post"}
    assert api("GET", f"{path}").json["invitations"] == {"pre": "sent", "post": "sent"}
    one = listed.json["items"][0]
    assert api("GET", f"/invitations/{one['id']}").json == one
    cancelled = api("POST", f"/invitations/{one['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    again = api("POST", f"/invitations/{one['id']}/cancel")
    assert again.status_code == 409
    assert api("GET", "/invitations/999999").status_code == 404
    assert api("GET", "/invitations?status=bogus").status_code == 400
    assert api("GET", "/invitations?page=0").status_code == 400


def test_api_never_shows_answers_or_scores(
    api: Callable[..., Any], session: Session, book: Callable[..., Booking]
) -> None:
    booking = book(starts_in=timedelta(hours=20))
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    session.add(
        Administration(
            invitation_id=invitation.id,
            episode_id=booking.episode.id,
            instrument_code="PHQ-9",
            instrument_version="1",
            total=17.5,
            answers={"phq9_9": 2},
            scores={"total": 17.5},
        )
    )
    session.flush()
    for path in (
        f"/invitations?client_id={booking.client.id}",
        f"/appointments/{booking.appointment.id}",
        f"/clients/{booking.client.id}",
    ):
        response = api("GET", path)
        text = response.get_data(as_text=True)
        for secret in ("PHQ", "phq9", "scores", "answers"):
            assert secret not in text, (path, secret)
        # The score as a number anywhere in the document (a timestamp's "17.52..." seconds is not a leak).
        assert 17.5 not in list(json_leaves(response.get_json())), path


def json_leaves(value: Any) -> Iterator[Any]:
    """Every scalar in a JSON document."""
    if isinstance(value, dict):
        for item in value.values():
            yield from json_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_leaves(item)
    else:
        yield value


def test_import_through_the_api(api: Callable[..., Any], session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(days=1))
    start = (utcnow() + timedelta(days=8)).replace(microsecond=0).strftime("%Y%m%dT%H%M%SZ")
    ics = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:api-1\r\n"
        f"DTSTART:{start}\r\nDURATION:PT50M\r\nX-RAPPORT-CLIENT:{booking.client.code}\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:api-2\r\nDTSTART;VALUE=DATE:20260706\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    response = api(
        "POST",
        "/appointments/import",
        data={"file": (io.BytesIO(ics.encode()), "feed.ics"), "source": "ehr"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    report = response.json
    assert (report["source"], report["imported"], report["updated"], report["skipped"]) == ("ehr", 1, 0, 1)
    assert report["rows"][1]["reason"] == "an all-day event, not an appointment"
    missing = api("POST", "/appointments/import", data={"source": "x"}, content_type="multipart/form-data")
    assert missing.status_code == 400
    private = api("POST", "/appointments/import", json={"url": "http://192.168.1.10/cal.ics"})
    assert private.status_code == 400
    assert "private network" in private.json["error"]["detail"]
    unknown = api("POST", "/appointments/import", json={"url": "https://example.test/x", "format": "xml"})
    assert unknown.status_code == 400


def test_funnel_through_the_api(api: Callable[..., Any], session: Session, book: Callable[..., Booking]) -> None:
    book(starts_in=timedelta(hours=20))
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    data = api("GET", "/funnel").json
    assert data["total"] == {"sent": 1, "opened": 0, "started": 0, "completed": 0}
    assert [g["key"] for g in data["by_channel"]] == ["email"]
    assert api("GET", "/funnel?from=2026-05-01&to=2026-04-01").status_code == 400


def test_openapi_describes_every_front_desk_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json

    def openapi_path(rule: str) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.removeprefix("/api/v1"))

    ours = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and app.view_functions[rule.endpoint].__module__ == "web.api.frontdesk"
    ]
    assert len(ours) >= 20
    methods = {
        (openapi_path(rule.rule), method.lower())
        for rule in ours
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, m) for path, item in doc["paths"].items() for m in item if m != "parameters"}
    assert methods <= documented, sorted(methods - documented)
    refs = set(re.findall(r"#/components/schemas/(\w+)", str(doc)))
    assert refs <= set(doc["components"]["schemas"])
    for path in {path for path, _ in methods}:
        for name in re.findall(r"{(\w+)}", path):
            assert any(p["name"] == name for p in doc["paths"][path].get("parameters", [])), path
