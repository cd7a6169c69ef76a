"""Security headers, CSRF, friendly error pages without stack traces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.accounts.models import User
from tests.unit.web.conftest import csrf_token, post_form
from web.access import public

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page", "/api/v1/openapi.json", "/s/abc"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers


def test_authenticated_pages_are_not_cached_and_static_files_may_be(
    client: FlaskClient, signed_in: Callable[..., User]
) -> None:
    signed_in("clinician")
    assert client.get("/clinician/").headers["Cache-Control"] == "no-store"
    static = client.get("/static/rapport.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")
    assert static.headers["Content-Security-Policy"] == CSP
    static.close()


def test_hsts_in_production(make_app: Callable[..., Flask]) -> None:
    response = make_app(env="production").test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_load_no_inline_script_or_style_and_nothing_from_other_sites(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "<script>" not in page
    assert "<style" not in page
    assert " style=" not in page
    assert " onclick" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "/static/vendor/pico/pico.min.css" in page


def test_vendored_assets_are_served(client: FlaskClient) -> None:
    for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/pico/pico.min.css"):
        response = client.get(path)
        assert response.status_code == 200
        assert len(response.get_data()) > 10_000
        response.close()


def test_post_without_csrf_token_is_rejected(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    assert client.application.config.get("WTF_CSRF_ENABLED", True) is True
    user = signed_in("admin")
    response = client.post("/admin/operations/test-email")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This form has expired or was sent from somewhere else" in page
    bad = client.post("/logout", data={"csrf_token": "forged"})
    assert bad.status_code == 400
    assert client.get("/admin/").status_code == 200  # still signed in: the forged logout did nothing
    assert user.email in client.get("/admin/").get_data(as_text=True)


def test_login_without_csrf_token_is_rejected(client: FlaskClient, staff: Callable[..., User]) -> None:
    user = staff("admin")
    from tests.factories import PASSWORD

    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_csrf_token_from_another_session_is_rejected(
    app: Flask, client: FlaskClient, signed_in: Callable[..., User]
) -> None:
    signed_in("admin")
    other = app.test_client()
    foreign_token = csrf_token(other, "/login")
    assert client.post("/admin/operations/test-email", data={"csrf_token": foreign_token}).status_code == 400


def test_friendly_404_and_405(client: FlaskClient) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert "We could not find that page" in missing.get_data(as_text=True)
    wrong_method = client.get("/logout")
    assert wrong_method.status_code == 405
    assert "That action is not available here" in wrong_method.get_data(as_text=True)
    assert "POST" in wrong_method.headers["Allow"]


def test_unexpected_error_shows_a_friendly_page_without_a_trace(app: Flask) -> None:
    @app.get("/explode")
    @public
    def explode() -> str:
        raise RuntimeError("secret internals: db password is hunter2")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/explode")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert "hunter2" not in page
    assert "Traceback" not in page
    assert "RuntimeError" not in page
    assert response.headers["Content-Security-Policy"] == CSP


def test_api_errors_are_json(app: Flask, client: FlaskClient) -> None:
    @app.get("/api/v1/explode")
    @public
    def api_explode() -> str:
        raise RuntimeError("hunter2")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json == {
        "error": {"status": 404, "title": "We could not find that page", "detail": missing.json["error"]["detail"]}
    }
    boom = client.get("/api/v1/explode")
    assert boom.status_code == 500
    assert boom.is_json
    assert "hunter2" not in boom.get_data(as_text=True)


def test_autoescaping_in_pages(client: FlaskClient, signed_in: Callable[..., User], session: object) -> None:
    from tests.factories import make_client

    signed_in("front_desk")
    make_client(session, first_name="<script>alert(1)</script>", last_name="Escapeson")  # type: ignore[arg-type]
    page = client.get("/frontdesk/?q=escapeson").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    reflected = client.get('/frontdesk/?q="><b>x').get_data(as_text=True)
    assert '"><b>x' not in reflected


def test_admin_create_user_form_posts_with_the_token_from_its_page(
    client: FlaskClient, signed_in: Callable[..., User]
) -> None:
    signed_in("admin")
    response = post_form(
        client,
        "/admin/users/new",
        {
            "name": "New Person",
            "email": "new.person@example.test",
            "role": "clinician",
            "team": "Team South",
            "password": "a long enough password",
            "confirm": "a long enough password",
        },
        page="/admin/users/new",
    )
    assert response.status_code == 302
    assert "new.person@example.test" in client.get("/admin/").get_data(as_text=True)


def test_database_locked_past_the_timeout_asks_to_try_again(app: Flask, tmp_path: Any) -> None:
    import sqlite3

    from sqlalchemy import create_engine, text

    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    impatient = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})

    @app.post("/busy")
    @public
    def busy() -> str:
        with impatient.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
        return "stored"

    @app.post("/broken")
    @public
    def broken() -> str:
        with impatient.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))
        return "unreachable"

    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        response = app.test_client().post("/busy")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "Rapport is busy" in response.get_data(as_text=True)
        assert app.test_client().post("/broken").status_code == 500  # other database errors stay errors
    finally:
        holder.rollback()
        holder.close()
        impatient.dispose()
