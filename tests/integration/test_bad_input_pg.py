"""Bad input on PostgreSQL: a NUL byte (psycopg refuses it with a DataError), ids and pages beyond 64 bits (bigint
out of range) and dates near year 9999 get a clear 4xx, never a 500, and nothing is written."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import func, select

from services.accounts.operations import create_api_token
from services.clients.models import Client
from services.config import Settings
from services.db import Database
from tests.factories import make_user
from tests.unit.web.conftest import csrf_token, login
from web.app import create_app

BEYOND_64_BITS = str(2**64 + 7)


@pytest.fixture(scope="module")
def desk(it_settings: Settings, it_db: Database) -> dict[str, Any]:
    """A front-desk account with an API token, and a test client signed in as it."""
    tag = secrets.token_hex(4)
    with it_db.unit_of_work() as session:
        user = make_user(session, role="front_desk", email=f"nul-desk-{tag}@example.test", team=None)
        token = create_api_token(session, user=user, name="bad input")
        email = user.email
    app = create_app(settings=it_settings, database=it_db)
    browser = app.test_client()
    assert login(browser, email).status_code == 302
    return {"app": app, "browser": browser, "token": token, "email": email}


def _clients(it_db: Database) -> int:
    with it_db.session() as session:
        return session.scalar(select(func.count()).select_from(Client)) or 0


def test_nul_in_the_login_email_is_a_400_on_postgresql(desk: dict[str, Any]) -> None:
    anonymous = desk["app"].test_client()
    token = csrf_token(anonymous, "/login")
    response = anonymous.post("/login", data={"email": "x\x00@example.test", "password": "x", "csrf_token": token})
    assert response.status_code == 400
    assert "control character" in response.get_data(as_text=True)


def test_nul_in_an_api_client_create_is_a_json_400_and_writes_nothing(desk: dict[str, Any], it_db: Database) -> None:
    before = _clients(it_db)
    response = (
        desk["app"]
        .test_client()
        .post(
            "/api/v1/clients",
            json={"first_name": "Nul\x00", "last_name": "Person", "email": "nul@example.test"},
            headers={"Authorization": f"Bearer {desk['token']}"},
        )
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "control character" in response.json["error"]["detail"]
    assert _clients(it_db) == before


@pytest.mark.parametrize("path", ["/frontdesk/?q=a%00b", "/frontdesk/appointments?day=%00"])
def test_nul_in_a_search_box_is_a_400_on_postgresql(desk: dict[str, Any], path: str) -> None:
    assert desk["browser"].get(path).status_code == 400


def test_nul_in_the_api_search_is_a_400_on_postgresql(desk: dict[str, Any]) -> None:
    response = (
        desk["app"].test_client().get("/api/v1/clients?q=a%00b", headers={"Authorization": f"Bearer {desk['token']}"})
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/frontdesk/clients/{BEYOND_64_BITS}", {404}),
        (f"/frontdesk/?page={BEYOND_64_BITS}", {400}),
        ("/frontdesk/?page=4611686018427387904", {200, 400}),  # the front desk's pager stops at page 100,000
        ("/frontdesk/appointments?day=9999-12-31", {400}),
        ("/frontdesk/appointments?page=4611686018427387904", {200, 400}),
    ],
)
def test_huge_ids_pages_and_dates_are_4xx_on_postgresql(desk: dict[str, Any], path: str, expected: set[int]) -> None:
    assert desk["browser"].get(path).status_code in expected


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/clients/{BEYOND_64_BITS}",
        f"/api/v1/clients?page={BEYOND_64_BITS}",
        "/api/v1/clients?page=1000000000",
        "/api/v1/funnel?from=9999-12-01&to=9999-12-31",
        "/api/v1/appointments?from=9999-12-31T00:00:00Z",
    ],
)
def test_huge_ids_pages_and_dates_are_json_4xx_on_postgresql(desk: dict[str, Any], path: str) -> None:
    response = desk["app"].test_client().get(path, headers={"Authorization": f"Bearer {desk['token']}"})
    assert response.status_code in (400, 404), response.get_data(as_text=True)
    assert response.json["error"]["status"] == response.status_code
