"""Accounts: the admin edits, deactivates and reactivates users; reset links; everyone's language choice."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import LoginSession, PasswordReset, User
from services.accounts.operations import RESETS_PER_HOUR, get_or_create_team
from services.audit.models import AuditEvent
from services.config import Settings
from services.db import Database, utcnow
from services.notifications.delivery import Outcome, deliver_notification
from services.notifications.models import Notification
from tests.factories import PASSWORD
from tests.unit.web.conftest import HOMES, csrf_from, csrf_token, login, post_form

NEW_PASSWORD = "a brand new passphrase"


def _events(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- the admin's pages -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "clinician", "supervisor", "manager"])
def test_only_admins_reach_the_account_pages(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], role: str
) -> None:
    other = staff("clinician")
    signed_in(role)
    token = csrf_token(client, "/settings")
    assert client.get(f"/admin/users/{other.id}").status_code == 403
    for action in ("deactivate", "reactivate", "reset-password"):
        response = client.post(f"/admin/users/{other.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403, action
    assert client.post(f"/admin/users/{other.id}", data={"csrf_token": token, "name": "X"}).status_code == 403


def test_admin_edits_name_role_team_and_language_and_it_is_audited(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    get_or_create_team(session, "Team South")
    person = staff("clinician", team="Team North")
    old_name = person.name
    assert f'href="/admin/users/{person.id}"' in client.get("/admin/").get_data(as_text=True)
    page = client.get(f"/admin/users/{person.id}")
    assert page.status_code == 200
    response = client.post(
        f"/admin/users/{person.id}",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "name": "  Renamed   Person ",
            "role": "supervisor",
            "team": "Team South",
            "language": "es",
        },
    )
    assert response.status_code == 303
    assert "Saved the changes" in client.get(response.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    assert (person.name, person.role, person.language_choice) == ("Renamed Person", "supervisor", "es")
    assert person.team is not None
    assert person.team.name == "Team South"
    (event,) = _events(session, "user_updated")
    assert (event.actor_id, event.subject_type, event.subject_id) == (admin.id, "user", person.id)
    assert event.detail["changes"] == {
        "name": [old_name, "Renamed Person"],
        "role": ["clinician", "supervisor"],
        "team": ["Team North", "Team South"],
        "language": [None, "es"],
    }
    # No team, and back to "not chosen".
    post_form(
        client,
        f"/admin/users/{person.id}",
        {"name": "Renamed Person", "role": "supervisor", "team": "", "language": ""},
        page=f"/admin/users/{person.id}",
    )
    session.expire_all()
    assert (person.team_id, person.language_choice) == (None, None)


def test_the_edit_form_refuses_an_unknown_team_and_demoting_the_last_admin(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    page = f"/admin/users/{admin.id}"
    bad_team = post_form(
        client, page, {"name": admin.name, "role": "admin", "team": "Nowhere", "language": ""}, page=page
    )
    assert bad_team.status_code == 400
    assert "Not a valid choice" in bad_team.get_data(as_text=True)
    demote = post_form(
        client, page, {"name": admin.name, "role": "manager", "team": "Team North", "language": ""}, page=page
    )
    assert demote.status_code == 400
    assert "only active administrator" in _text(demote.get_data(as_text=True))
    session.expire_all()
    assert admin.role == "admin"
    assert _events(session, "user_updated") == []


def test_an_admin_cannot_deactivate_themselves(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    staff("admin")  # another admin exists: still refused, because it is their own account
    response = post_form(client, f"/admin/users/{admin.id}/deactivate", page=f"/admin/users/{admin.id}")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You cannot deactivate your own account." in page
    session.expire_all()
    assert admin.active is True


def test_deactivation_ends_a_live_session_at_its_next_request_and_reactivation_restores_sign_in(
    make_app: Callable[..., Flask],
    client: FlaskClient,
    signed_in: Callable[..., User],
    staff: Callable[..., User],
    session: Session,
) -> None:
    admin = signed_in("admin")
    person = staff("clinician")
    theirs = make_app().test_client()
    assert login(theirs, person.email).status_code == 302
    assert theirs.get("/clinician/").status_code == 200
    response = post_form(client, f"/admin/users/{person.id}/deactivate", page=f"/admin/users/{person.id}")
    assert response.status_code == 303
    assert "deactivated and signed out everywhere" in client.get(response.headers["Location"]).get_data(as_text=True)
    nxt = theirs.get("/clinician/")
    assert nxt.status_code == 302
    assert nxt.headers["Location"].startswith("/login")
    assert "Your session has ended" in theirs.get(nxt.headers["Location"]).get_data(as_text=True)
    assert login(theirs, person.email).status_code == 401
    session.expire_all()
    ended = session.scalars(select(LoginSession).where(LoginSession.user_id == person.id)).all()
    assert [(row.ended_at is not None, row.end_reason) for row in ended] == [(True, "deactivated")]
    (event,) = _events(session, "user_deactivated")
    assert (event.actor_id, event.subject_id, event.detail) == (admin.id, person.id, {"sessions_ended": 1})

    response = post_form(client, f"/admin/users/{person.id}/reactivate", page=f"/admin/users/{person.id}")
    assert "active again" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert login(theirs, person.email).status_code == 302
    assert [e.subject_id for e in _events(session, "user_reactivated")] == [person.id]


def test_a_session_of_a_user_deactivated_elsewhere_ends_too(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    person = signed_in("front_desk")
    person.active = False  # as another process (the CLI) would leave it, sessions not yet ended
    session.flush()
    assert client.get("/frontdesk/").status_code == 302
    row = session.scalar(select(LoginSession).where(LoginSession.user_id == person.id))
    assert row is not None
    assert row.end_reason == "deactivated"


# --- reset links -------------------------------------------------------------------------------------------------


def _deliver_link(db: Database, settings: Settings, session: Session, user: User) -> str:
    """Send the user's newest pending reset email through the real outbox; the link's path."""
    session.expire_all()
    row = session.scalar(
        select(Notification)
        .where(Notification.recipient_user_id == user.id, Notification.template == "password_reset")
        .order_by(Notification.id.desc())
    )
    assert row is not None
    assert deliver_notification(db, settings, row.id) is Outcome.SENT
    message = message_from_bytes((settings.outbox_dir / f"email-{row.id:08d}.eml").read_bytes())
    assert message["To"] == user.email
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = re.search(r"http://rapport\.test(/reset/[A-Za-z0-9_-]{43})\n", body)
    assert match, body
    return match.group(1)


def _ask_reset(client: FlaskClient, email: str, **kw: object) -> tuple[int, str]:
    response = client.post(
        "/forgot-password", data={"email": email, "csrf_token": csrf_token(client, "/forgot-password")}, **kw
    )
    # Without the CSRF tokens (signed with the time), the pages must be byte for byte the same.
    return response.status_code, re.sub(r"[A-Za-z0-9_.-]{40,}", "", response.get_data(as_text=True))


@pytest.fixture
def outbox_settings(test_settings: Settings, tmp_path: Path) -> Settings:
    """Settings whose file outbox is this test's own folder."""
    return test_settings.with_overrides(var_dir=tmp_path)


def test_reset_link_flow_through_the_real_outbox(
    client: FlaskClient,
    staff: Callable[..., User],
    session: Session,
    db: Database,
    outbox_settings: Settings,
    make_app: Callable[..., Flask],
) -> None:
    person = staff("manager")
    elsewhere = make_app().test_client()
    assert login(elsewhere, person.email).status_code == 302
    assert "Forgot your password?" in client.get("/login").get_data(as_text=True)
    status, page = _ask_reset(client, person.email.upper())
    assert status == 200
    assert "Check your email" in page
    path = _deliver_link(db, outbox_settings, session, person)
    # The email holds the link and generic text only; the database holds only the token's hash.
    reset = session.scalar(select(PasswordReset).where(PasswordReset.user_id == person.id))
    assert reset is not None
    assert reset.token_hash is not None
    assert path.rsplit("/", 1)[1] not in reset.token_hash
    assert reset.expires_at - reset.created_at == timedelta(hours=1)
    # GET never uses the link up (mail scanners fetch links).
    for _ in range(2):
        assert client.get(path).status_code == 200
    weak = client.post(path, data={"password": "short", "confirm": "short", "csrf_token": csrf_token(client, path)})
    assert weak.status_code == 400
    assert "at least 12 characters" in weak.get_data(as_text=True)
    common = client.post(
        path, data={"password": "password1234", "confirm": "password1234", "csrf_token": csrf_token(client, path)}
    )
    assert common.status_code == 400
    assert "too common" in common.get_data(as_text=True)
    done = client.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": csrf_token(client, path)}
    )
    assert done.status_code == 303
    assert "Your new password is set" in client.get(done.headers["Location"]).get_data(as_text=True)
    # Single use: the link is dead for GET and POST alike.
    dead = client.get(path)
    assert dead.status_code == 404
    assert "This link no longer works" in dead.get_data(as_text=True)
    token = csrf_token(client, "/login")
    assert (
        client.post(
            path, data={"password": "another one entirely", "confirm": "another one entirely", "csrf_token": token}
        ).status_code
        == 404
    )
    # The new password works, the old one does not, and the session elsewhere has ended.
    assert login(make_app().test_client(), person.email, PASSWORD).status_code == 401
    assert login(make_app().test_client(), person.email, NEW_PASSWORD).status_code == 302
    assert elsewhere.get("/manager/").status_code == 302
    assert [e.detail["result"] for e in _events(session, "password_reset_requested")] == ["queued"]
    (used,) = _events(session, "password_reset_used")
    assert (used.actor_id, used.subject_id, used.detail["sessions_ended"]) == (person.id, person.id, 1)


def test_unknown_and_deactivated_emails_are_answered_identically_and_get_no_email(
    client: FlaskClient, staff: Callable[..., User], session: Session
) -> None:
    known = staff("clinician")
    gone = staff("clinician")
    gone.active = False
    session.flush()
    answers = {email: _ask_reset(client, email) for email in (known.email, "nobody@example.test", gone.email)}
    assert len(set(answers.values())) == 1, "the page must not tell which emails have accounts"
    session.expire_all()
    recipients = session.scalars(select(Notification.to_address).where(Notification.template == "password_reset"))
    assert list(recipients) == [known.email]
    results = [(e.actor_label, e.detail["result"]) for e in _events(session, "password_reset_requested")]
    assert results == [(known.email, "queued"), ("nobody@example.test", "unknown"), (gone.email, "unknown")]


def test_an_expired_or_replaced_link_no_longer_works(
    client: FlaskClient, staff: Callable[..., User], session: Session, db: Database, outbox_settings: Settings
) -> None:
    person = staff("front_desk")
    _ask_reset(client, person.email)
    first = _deliver_link(db, outbox_settings, session, person)
    _ask_reset(client, person.email)
    second = _deliver_link(db, outbox_settings, session, person)
    assert client.get(first).status_code == 404  # only the newest link works
    assert client.get(second).status_code == 200
    for reset in session.scalars(select(PasswordReset).where(PasswordReset.user_id == person.id)):
        reset.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert client.get(second).status_code == 404
    assert client.get("/reset/not-a-token").status_code == 404


def test_reset_requests_are_rate_limited_by_address_and_capped_per_account(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    person = staff("clinician")
    client = make_app(login_rate_limit="3 per minute").test_client()
    statuses = [_ask_reset(client, "nobody@example.test")[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # From many addresses, one account still gets at most RESETS_PER_HOUR links an hour, and the page is the same.
    roomy = make_app().test_client()
    answers = [
        _ask_reset(roomy, person.email, environ_base={"REMOTE_ADDR": f"10.0.1.{n}"}) for n in range(RESETS_PER_HOUR + 1)
    ]
    assert len(set(answers)) == 1
    session.expire_all()
    sent = session.scalar(
        select(func.count()).select_from(Notification).where(Notification.recipient_user_id == person.id)
    )
    assert sent == RESETS_PER_HOUR
    assert _events(session, "password_reset_requested")[-1].detail["result"] == "limited"


def test_admin_sends_a_reset_link(
    client: FlaskClient,
    signed_in: Callable[..., User],
    staff: Callable[..., User],
    session: Session,
    db: Database,
    outbox_settings: Settings,
) -> None:
    admin = signed_in("admin")
    person = staff("supervisor")
    response = post_form(client, f"/admin/users/{person.id}/reset-password", page=f"/admin/users/{person.id}")
    assert response.status_code == 303
    assert "is on its way to" in client.get(response.headers["Location"]).get_data(as_text=True)
    path = _deliver_link(db, outbox_settings, session, person)
    assert path.startswith("/reset/")
    (event,) = _events(session, "password_reset_requested")
    assert (event.actor_id, event.subject_id, event.detail["result"]) == (admin.id, person.id, "queued")


def test_the_reset_email_in_spanish_for_a_spanish_speaker(
    client: FlaskClient, staff: Callable[..., User], session: Session, db: Database, outbox_settings: Settings
) -> None:
    person = staff("clinician")
    person.language = "es"
    session.flush()
    _ask_reset(client, person.email)
    row = session.scalar(select(Notification).where(Notification.recipient_user_id == person.id))
    assert row is not None
    deliver_notification(db, outbox_settings, row.id)
    message = message_from_bytes((outbox_settings.outbox_dir / f"email-{row.id:08d}.eml").read_bytes())
    assert "contraseña" in message.get_payload(decode=True).decode()  # type: ignore[union-attr]


# --- my settings: language ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(HOMES))
def test_every_role_reaches_its_settings_page_from_the_navigation(
    client: FlaskClient, signed_in: Callable[..., User], role: str
) -> None:
    signed_in(role)
    home = client.get(HOMES[role]).get_data(as_text=True)
    assert 'href="/settings"' in home
    assert client.get("/settings").status_code == 200


def test_the_browser_decides_until_the_person_chooses(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    person = signed_in("front_desk")
    assert person.language_choice is None
    spanish_browser = {"Accept-Language": "es-MX,es;q=0.9"}
    assert "Cerrar sesión" in client.get("/frontdesk/", headers=spanish_browser).get_data(as_text=True)
    assert "Sign out" in client.get("/frontdesk/", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    # Choosing English wins over the Spanish browser, and the confirmation is in English already.
    page = client.get("/settings", headers=spanish_browser).get_data(as_text=True)
    assert "El idioma de mi navegador (ahora: Español)" in _text(page)
    saved = client.post(
        "/settings",
        data={"language": "en", "csrf_token": csrf_from(page)},
        headers=spanish_browser,
        follow_redirects=True,
    )
    assert "Saved: your language." in saved.get_data(as_text=True)
    assert "Sign out" in client.get("/frontdesk/", headers=spanish_browser).get_data(as_text=True)
    # Back to the browser's language.
    post_form(client, "/settings", {"language": "browser"}, page="/settings")
    assert "Cerrar sesión" in client.get("/frontdesk/", headers=spanish_browser).get_data(as_text=True)
    changes = [e.detail["changes"]["language"] for e in _events(session, "user_updated")]
    assert changes == [[None, "en"], ["en", None]]
    assert {e.actor_id for e in _events(session, "user_updated")} == {person.id}


def test_a_forged_language_is_refused(client: FlaskClient, signed_in: Callable[..., User], session: Session) -> None:
    person = signed_in("manager")
    response = post_form(client, "/settings", {"language": "fr"}, page="/settings")
    assert response.status_code == 400
    session.expire_all()
    assert person.language_choice is None


def test_new_pages_in_spanish(client: FlaskClient, signed_in: Callable[..., User], session: Session) -> None:
    admin = signed_in("admin")
    admin.language = "es"
    session.flush()
    page = _text(client.get(f"/admin/users/{admin.id}").get_data(as_text=True))
    assert "Guardar los cambios" in page
    assert "Mis ajustes" in page
    anonymous = {"Accept-Language": "es"}
    fresh = client.application.test_client()
    assert "¿Ha olvidado su contraseña?" in fresh.get("/login", headers=anonymous).get_data(as_text=True)
    assert "Revise su correo" in _text(
        fresh.post(
            "/forgot-password",
            data={"email": "x@example.test", "csrf_token": csrf_token(fresh, "/forgot-password")},
            headers=anonymous,
        ).get_data(as_text=True)
    )
