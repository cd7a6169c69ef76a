"""The JSON API's bearer auth and OpenAPI document, and /healthz."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.db import utcnow


def test_healthz_checks_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_reports_a_dead_database_without_details(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.orm import Session as OrmSession

    def broken(self: OrmSession, *args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused to secret-host"))

    monkeypatch.setattr(OrmSession, "execute", broken)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unavailable"}


def test_api_needs_a_bearer_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.is_json
    assert response.json["error"]["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer rpt_not-a-real-token"})
    assert bad.status_code == 401
    wrong_scheme = client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert wrong_scheme.status_code == 401


def test_api_works_with_a_token(client: FlaskClient, staff: Callable[..., User], session: Session) -> None:
    user = staff("front_desk", team="Team North")
    token = create_api_token(session, user=user, name="scheduler")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json == {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": "front_desk",
        "team": "Team North",
    }


def test_revoked_token_and_inactive_user_are_refused(
    client: FlaskClient, staff: Callable[..., User], session: Session
) -> None:
    from sqlalchemy import select

    from services.accounts.models import ApiToken

    user = staff("clinician")
    token = create_api_token(session, user=user)
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert row is not None
    row.revoked_at = utcnow()
    session.flush()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_browser_session_does_not_authenticate_the_api(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("admin")
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/me").status_code == 401


def test_api_needs_no_csrf_token_but_a_bearer_one(client: FlaskClient) -> None:
    # POST to a GET-only API route: 405 in JSON, not a CSRF 400 page.
    response = client.post("/api/v1/me")
    assert response.status_code == 405
    assert response.is_json


def test_openapi_document_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": "http://rapport.test/api/v1"}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
    }
    assert routes == set(doc["paths"])
