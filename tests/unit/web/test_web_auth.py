"""Login, logout, idle timeout, rate limits and the session cookie."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import LoginSession, User
from services.audit.models import AuditEvent
from services.db import utcnow
from tests.factories import PASSWORD
from tests.unit.web.conftest import HOMES, csrf_token, login, post_form

FORM_ERROR = re.compile(r'<p class="form-error"[^>]*>(.*?)</p>', re.S)


@pytest.mark.parametrize("role", list(HOMES))
def test_login_lands_each_role_on_its_home(
    client: FlaskClient, staff: Callable[..., User], session: Session, role: str
) -> None:
    user = staff(role)
    response = login(client, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == HOMES[role]
    home = client.get(HOMES[role])
    assert home.status_code == 200
    assert user.name in home.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "login", AuditEvent.actor_id == user.id))


def test_root_sends_anonymous_to_login_and_staff_home(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    assert client.get("/").headers["Location"] == "/login"
    signed_in("manager")
    assert client.get("/").headers["Location"] == "/manager/"
    assert client.get("/login").headers["Location"] == "/manager/"


def test_wrong_password_and_unknown_email_look_the_same_and_are_audited(
    client: FlaskClient, staff: Callable[..., User], session: Session
) -> None:
    user = staff("clinician")
    wrong = login(client, user.email, "not the right password")
    unknown = login(client, "nobody-here@example.test", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    wrong_message = FORM_ERROR.search(wrong.get_data(as_text=True))
    unknown_message = FORM_ERROR.search(unknown.get_data(as_text=True))
    assert wrong_message
    assert unknown_message
    assert wrong_message.group(1) == unknown_message.group(1)
    assert "not the right password" not in wrong.get_data(as_text=True)
    assert client.get("/clinician/").status_code == 302  # still not signed in
    session.expire_all()
    failed = session.scalars(select(AuditEvent).where(AuditEvent.action == "login_failed")).all()
    assert {(e.actor_id, e.actor_label) for e in failed} >= {
        (user.id, user.email),
        (None, "nobody-here@example.test"),
    }


def test_session_cookie_holds_only_a_token_and_is_locked_down(
    client: FlaskClient, staff: Callable[..., User], make_app: Callable[..., Flask]
) -> None:
    user = staff("admin")
    response = login(client, user.email)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("rapport_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert "Expires" not in cookie  # a browser-session cookie; the server decides when it ends
    with client.session_transaction() as flask_session:
        assert set(flask_session.keys()) <= {"login_session", "csrf_token", "_flashes"}
        assert str(user.id) not in flask_session.values()
    production = make_app(env="production").test_client()
    prod_login = login(production, user.email)
    prod_cookie = next(h for h in prod_login.headers.getlist("Set-Cookie") if h.startswith("rapport_session="))
    assert "Secure" in prod_cookie


def test_logout_ends_the_server_side_session(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    user = signed_in("clinician")
    old_cookie = client.get_cookie("rapport_session")
    assert old_cookie is not None
    response = post_form(client, "/logout", page="/clinician/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/clinician/").status_code == 302
    # Replaying the cookie from before logout does not bring the session back.
    client.set_cookie("rapport_session", old_cookie.value)
    replay = client.get("/clinician/")
    assert replay.status_code == 302
    assert replay.headers["Location"].startswith("/login")
    assert "Your session has ended" in client.get(replay.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    row = session.scalar(select(LoginSession).where(LoginSession.user_id == user.id))
    assert row is not None
    assert row.ended_at is not None
    assert row.end_reason == "logout"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "logout", AuditEvent.actor_id == user.id))


def test_idle_session_ends_and_says_why(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, test_settings: object
) -> None:
    user = signed_in("front_desk")
    assert client.get("/frontdesk/").status_code == 200
    row = session.scalar(select(LoginSession).where(LoginSession.user_id == user.id))
    assert row is not None
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    session.flush()
    response = client.get("/frontdesk/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/frontdesk/"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "without activity" in page
    session.refresh(row)
    assert row.ended_at is not None
    assert row.end_reason == "idle"


def test_activity_keeps_the_session_alive(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    user = signed_in("front_desk")
    row = session.scalar(select(LoginSession).where(LoginSession.user_id == user.id))
    assert row is not None
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    session.flush()
    assert client.get("/frontdesk/").status_code == 200
    session.refresh(row)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)  # the refreshed idle timer was committed


def test_the_limiter_skips_its_empty_before_request_pass_but_never_a_wide_limit(make_app: Callable[..., Flask]) -> None:
    from web.limiter import ViewLimiter, limiter

    make_app()
    assert limiter.has_wide_limits() is False  # every Rapport limit sits on a view
    # Were an application-wide limit ever configured, the before_request pass would enforce it.
    bare = Flask("bare")
    wide = ViewLimiter(key_func=lambda: "one-client", default_limits=["1 per minute"], storage_uri="memory://")
    wide.init_app(bare)
    bare.add_url_rule("/", "index", lambda: "ok")
    client = bare.test_client()
    assert wide.has_wide_limits() is True
    assert [client.get("/").status_code for _ in range(2)] == [200, 429]


def test_login_rate_limit_by_ip(make_app: Callable[..., Flask], staff: Callable[..., User]) -> None:
    client = make_app(login_rate_limit="3 per minute").test_client()
    emails = [staff("clinician").email for _ in range(4)]
    statuses = [login(client, email, "wrong password!!").status_code for email in emails]
    assert statuses == [401, 401, 401, 429]
    limited = login(client, emails[0])
    assert limited.status_code == 429
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert int(limited.headers["Retry-After"]) > 0


def test_successful_logins_do_not_use_up_the_limit(make_app: Callable[..., Flask], staff: Callable[..., User]) -> None:
    app = make_app(login_rate_limit="2 per minute")
    user = staff("manager")
    for _ in range(3):
        assert login(app.test_client(), user.email).status_code == 302  # same address, same email


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/manager/?tab=1", "/manager/?tab=1"),
        ("https://evil.example/", "/manager/"),
        ("//evil.example/", "/manager/"),
        ("/\\evil.example", "/manager/"),
        ("javascript:alert(1)", "/manager/"),
    ],
)
def test_next_only_follows_same_site_paths(
    client: FlaskClient, staff: Callable[..., User], target: str, expected: str
) -> None:
    user = staff("manager")
    token = csrf_token(client)
    response = client.post(
        "/login", query_string={"next": target}, data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_anonymous_request_is_sent_to_login_with_next(client: FlaskClient, staff: Callable[..., User]) -> None:
    response = client.get("/admin/operations")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/operations"
    user = staff("admin")
    token = csrf_token(client)
    after = client.post(
        "/login",
        query_string={"next": "/admin/operations"},
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert after.headers["Location"] == "/admin/operations"


def test_deactivated_user_cannot_log_in_and_loses_live_sessions(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    user = signed_in("clinician")
    user.active = False
    session.flush()
    assert client.get("/clinician/").status_code == 302
    assert login(client, user.email).status_code == 401


def test_a_busy_session_still_ends_at_the_absolute_timeout(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    user = signed_in("front_desk")
    row = session.scalar(select(LoginSession).where(LoginSession.user_id == user.id))
    assert row is not None
    row.created_at = utcnow() - timedelta(hours=11, minutes=50)
    session.flush()
    assert client.get("/frontdesk/").status_code == 200  # active for almost 12 hours: still fine
    row.created_at = utcnow() - timedelta(hours=12, minutes=1)
    row.last_seen_at = utcnow()  # busy until a moment ago
    session.flush()
    response = client.get("/frontdesk/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/frontdesk/"
    assert "more than 12 hours ago" in client.get(response.headers["Location"]).get_data(as_text=True)
    session.refresh(row)
    assert (row.ended_at is not None, row.end_reason) == (True, "expired")


def test_the_absolute_timeout_follows_its_setting(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    client = make_app(session_absolute_hours=1).test_client()
    user = staff("front_desk")
    login(client, user.email)
    row = session.scalar(select(LoginSession).where(LoginSession.user_id == user.id))
    assert row is not None
    row.created_at = utcnow() - timedelta(minutes=61)
    session.flush()
    assert client.get("/frontdesk/").status_code == 302


def test_signing_in_rotates_the_session(client: FlaskClient, staff: Callable[..., User], session: Session) -> None:
    user = staff("clinician")
    with client.session_transaction() as before:
        before["planted"] = "from before sign-in"  # what a fixated, pre-sign-in cookie carried
        before["login_session"] = "a-token-an-attacker-chose"
    planted = client.get_cookie("rapport_session")
    assert planted is not None
    login(client, user.email)
    after = client.get_cookie("rapport_session")
    assert after is not None
    assert after.value != planted.value
    with client.session_transaction() as flask_session:
        assert "planted" not in flask_session
        first_token = flask_session["login_session"]
    assert first_token != "a-token-an-attacker-chose"
    post_form(client, "/logout", page="/clinician/")
    login(client, user.email)
    with client.session_transaction() as flask_session:
        assert flask_session["login_session"] != first_token  # a new token at every sign-in


def test_a_password_change_ends_the_other_sessions(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    from services.accounts.operations import set_password

    app = make_app()
    user = staff("clinician")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user.email)
    login(phone, user.email)
    assert laptop.get("/clinician/").status_code == phone.get("/clinician/").status_code == 200
    assert set_password(session, user, password="a brand new passphrase", actor_id=user.id) == 2
    session.flush()
    for browser in (laptop, phone):
        assert browser.get("/clinician/").status_code == 302
    assert login(laptop, user.email, "a brand new passphrase").status_code == 302
