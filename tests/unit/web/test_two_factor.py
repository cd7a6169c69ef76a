"""Two-step sign-in: real TOTP codes (pyotp) from the stored secret, recovery codes, admin reset, the practice rule."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import LoginSession, RecoveryCode, TwoFactor, User
from services.accounts.operations import AccountError
from services.accounts.two_factor import (
    SECRET_PURPOSE,
    confirm_enrolment,
    decrypt_secret,
    is_enrolled,
    reset_two_factor,
    start_enrolment,
    use_recovery_code,
    verify_code,
)
from services.audit.models import AuditEvent
from services.practice.settings import set_setting
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD
from tests.unit.web.conftest import csrf_from, csrf_token, login, post_form
from web.auth.pending import PENDING_KEY, PENDING_SECONDS

NOW = datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC)  # 10 s into a 30-second step
CODES = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")
STAFF_PAGES = ["/clinician/", "/frontdesk/", "/supervisor/", "/manager/", "/admin/", "/settings"]


def stored_totp(session: Session, user: User) -> pyotp.TOTP:
    """The authenticator as a phone would hold it: built from the secret stored (encrypted) in the database."""
    row = session.get(TwoFactor, user.id)
    assert row is not None
    session.refresh(row)
    assert row.secret_encrypted.startswith("gAAAAA")  # a Fernet token
    secret = decrypt_secret(TEST_SECRET, row.secret_encrypted)
    assert secret is not None
    assert secret not in row.secret_encrypted  # encrypted at rest
    return pyotp.TOTP(secret)


def enrol(session: Session, user: User, *, now: datetime | None = None) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol user through the service with a real code of the step before now; the authenticator and codes."""
    start_enrolment(session, user, secret_key=TEST_SECRET)
    totp = stored_totp(session, user)
    at = now or datetime.now(UTC)
    codes = confirm_enrolment(session, user, totp.at(at - timedelta(seconds=30)), secret_key=TEST_SECRET, now=at)
    session.flush()
    return totp, codes.recovery_codes


def steady_clock() -> None:
    """Wait out the last seconds of a 30-second step, so a code computed now is checked in the same step."""
    left = 30 - time.time() % 30
    if left < 4:
        time.sleep(left + 0.1)


def code_step(client: FlaskClient, code: str, path: str = "/login/code") -> int:
    return client.post(path, data={"code": code, "csrf_token": csrf_token(client, path)}).status_code


# --- the service: clock window, reuse, recovery codes --------------------------------------------------------


def test_codes_are_accepted_one_step_either_side_and_never_twice(session: Session, staff: Callable[..., User]) -> None:
    user = staff("clinician")
    start_enrolment(session, user, secret_key=TEST_SECRET)
    totp = stored_totp(session, user)
    with pytest.raises(AccountError):
        confirm_enrolment(session, user, totp.at(NOW + timedelta(seconds=60)), secret_key=TEST_SECRET, now=NOW)
    assert not is_enrolled(session, user.id)
    confirm_enrolment(session, user, totp.at(NOW - timedelta(seconds=30)), secret_key=TEST_SECRET, now=NOW)
    assert is_enrolled(session, user.id)

    def check(offset: int) -> bool:
        return verify_code(session, user, totp.at(NOW + timedelta(seconds=offset)), secret_key=TEST_SECRET, now=NOW)

    assert check(-60) is False  # two steps ago: outside the window
    assert check(60) is False  # two steps ahead
    assert check(0) is True
    assert check(0) is False  # the same code again
    assert check(-30) is False  # an earlier step than the one used
    assert check(30) is True  # a fast phone's next code
    assert check(30) is False
    assert verify_code(session, user, "12345", secret_key=TEST_SECRET, now=NOW) is False
    assert verify_code(session, user, "abcdef", secret_key=TEST_SECRET, now=NOW) is False
    # Under another secret key the stored secret cannot be read, and no code works.
    later = NOW + timedelta(minutes=5)
    assert verify_code(session, user, totp.at(later), secret_key="another-secret-key-" * 3, now=later) is False


def test_recovery_codes_are_ten_hashed_and_single_use(session: Session, staff: Callable[..., User]) -> None:
    user = staff("supervisor")
    _, codes = enrol(session, user)
    assert len(codes) == len(set(codes)) == 10
    rows = list(session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)))
    assert len(rows) == 10
    stored = {row.code_hash for row in rows}
    assert not any(code in h or code.replace("-", "") in h for code in codes for h in stored)
    assert use_recovery_code(session, user, codes[3].upper().replace("-", " "), secret_key=TEST_SECRET) is True
    assert use_recovery_code(session, user, codes[3], secret_key=TEST_SECRET) is False  # used up
    assert use_recovery_code(session, user, "zzzzz-zzzzz", secret_key=TEST_SECRET) is False
    other = staff("supervisor")
    enrol(session, other)
    assert use_recovery_code(session, other, codes[4], secret_key=TEST_SECRET) is False  # someone else's
    used = session.scalars(select(AuditEvent).where(AuditEvent.action == "recovery_code_used")).all()
    assert [event.detail for event in used] == [{"left": 9}]


# --- signing in with a code ------------------------------------------------------------------------------------


def test_an_enrolled_person_needs_the_code_and_a_half_signed_in_browser_reaches_nothing(
    client: FlaskClient, session: Session, staff: Callable[..., User]
) -> None:
    user = staff("clinician")
    totp, _ = enrol(session, user)
    response = login(client, user.email)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login/code"
    assert session.scalar(select(LoginSession).where(LoginSession.user_id == user.id)) is None
    for path in STAFF_PAGES:  # password right, code pending: no staff page, no login session
        page = client.get(path)
        assert page.status_code == 302, path
        assert page.headers["Location"].startswith("/login"), path
    assert client.get("/api/v1/clients").status_code == 401
    code_page = client.get("/login/code").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in code_page
    assert 'inputmode="numeric"' in code_page
    assert '<label for="code">' in code_page
    steady_clock()
    assert code_step(client, "000000" if totp.now() != "000000" else "111111") == 401
    assert client.get("/clinician/").status_code == 302
    code = totp.now()
    assert code_step(client, code) == 302
    assert client.get("/clinician/").status_code == 200
    login_event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "login", AuditEvent.actor_id == user.id)
    ).one()
    assert login_event.detail == {"second_factor": "totp"}
    # The same code in another browser, after the right password, is refused: it was used.
    other = client.application.test_client()
    assert login(other, user.email).status_code == 303
    assert code_step(other, code) == 401
    assert other.get("/clinician/").status_code == 302


def test_the_pending_sign_in_expires_and_needs_the_right_password(
    client: FlaskClient, session: Session, staff: Callable[..., User]
) -> None:
    user = staff("clinician")
    totp, _ = enrol(session, user)
    assert login(client, user.email, "wrong password!!").status_code == 401
    assert client.get("/login/code").headers["Location"] == "/login"  # a wrong password opens no code step
    assert login(client, user.email).status_code == 303
    with client.session_transaction() as cookie:
        cookie[PENDING_KEY] = {**cookie[PENDING_KEY], "t": cookie[PENDING_KEY]["t"] - PENDING_SECONDS - 1}
    steady_clock()
    token = csrf_token(client, "/login")
    answer = client.post("/login/code", data={"code": totp.now(), "csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"
    assert client.get("/clinician/").status_code == 302
    assert "waited too long" in client.get("/login").get_data(as_text=True)


def test_a_recovery_code_signs_in_once(client: FlaskClient, session: Session, staff: Callable[..., User]) -> None:
    user = staff("front_desk")
    _, codes = enrol(session, user)
    assert login(client, user.email).status_code == 303
    page = client.get("/login/recovery")
    assert page.status_code == 200
    assert code_step(client, codes[0], "/login/recovery") == 302
    assert client.get("/frontdesk/").status_code == 200
    again = client.application.test_client()
    assert login(again, user.email).status_code == 303
    assert code_step(again, codes[0], "/login/recovery") == 401
    assert code_step(again, codes[1], "/login/recovery") == 302


def test_the_code_step_is_rate_limited_per_address(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User]
) -> None:
    app = make_app(login_rate_limit="3 per minute")
    client = app.test_client()
    user = staff("clinician")
    enrol(session, user)
    assert login(client, user.email).status_code == 303
    statuses = [code_step(client, "999999") for _ in range(4)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429


def test_the_code_step_slows_down_per_account_from_new_addresses(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User]
) -> None:
    from tests.unit.web.test_login_throttle import long_attack
    from web.auth.throttle import FREE_FAILURES, code_subject

    app = make_app(login_rate_limit="100 per minute")
    user = staff("clinician")
    totp, _ = enrol(session, user)
    statuses = []
    for n in range(FREE_FAILURES):  # someone with the password, guessing codes from a new address each time
        browser = app.test_client()
        environ = {"REMOTE_ADDR": f"198.51.100.{n + 1}"}
        token = csrf_token(browser)
        data = {"email": user.email, "password": PASSWORD, "csrf_token": token}
        assert browser.post("/login", data=data, environ_base=environ).status_code == 303
        token = csrf_token(browser, "/login/code")
        answer = browser.post("/login/code", data={"code": "999999", "csrf_token": token}, environ_base=environ)
        statuses.append(answer.status_code)
    assert statuses == [401] * FREE_FAILURES
    long_attack(app, code_subject(user.id))  # and many more: the wait no test could sit out
    browser = app.test_client()
    environ = {"REMOTE_ADDR": "198.51.100.99"}
    data = {"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(browser)}
    assert browser.post("/login", data=data, environ_base=environ).status_code == 303
    token = csrf_token(browser, "/login/code")
    slowed = browser.post("/login/code", data={"code": totp.now(), "csrf_token": token}, environ_base=environ)
    assert slowed.status_code == 429
    assert int(slowed.headers["Retry-After"]) > 60
    assert "too many wrong codes" in slowed.get_data(as_text=True)
    assert session.scalar(select(LoginSession).where(LoginSession.user_id == user.id)) is None  # the right code waits


# --- enrolling on one's own settings page ----------------------------------------------------------------------


def test_enrolment_from_my_settings_page_shows_a_qr_code_and_takes_effect_only_when_confirmed(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    user = signed_in("supervisor")
    page = client.get("/settings/two-step").get_data(as_text=True)
    assert "Set up two-step sign-in" in page
    assert post_form(client, "/settings/two-step/start", page="/settings/two-step").status_code == 303
    page = client.get("/settings/two-step").get_data(as_text=True)
    svg = page.split("<svg ")[1].split("</svg>")[0]
    assert 'class="qr-code"' in svg
    assert "<title>QR code to add Rapport to your authenticator app</title>" in svg
    assert "http" not in svg  # drawn here, nothing fetched
    shown = re.search(r'<code id="two-step-secret" translate="no">([A-Z2-7 ]+)</code>', page)
    assert shown is not None
    totp = stored_totp(session, user)
    assert shown.group(1).replace(" ", "") == totp.secret  # the key to type, if the camera will not do
    assert not is_enrolled(session, user.id)
    # Signing in again still asks only for the password while the enrolment is unconfirmed.
    assert login(client.application.test_client(), user.email).status_code == 302
    wrong = post_form(client, "/settings/two-step/confirm", {"code": "000001"}, page="/settings/two-step")
    assert wrong.status_code == 400
    assert not is_enrolled(session, user.id)
    steady_clock()
    confirmed = post_form(client, "/settings/two-step/confirm", {"code": totp.now()}, page="/settings/two-step")
    assert confirmed.status_code == 200
    codes = CODES.findall(confirmed.get_data(as_text=True))
    assert len(codes) == 10
    assert is_enrolled(session, user.id)
    assert "Set up two-step sign-in" not in client.get("/settings/two-step").get_data(as_text=True)
    assert not CODES.findall(client.get("/settings/two-step").get_data(as_text=True))  # shown once only
    assert login(client.application.test_client(), user.email).status_code == 303  # now the code is asked
    assert session.scalars(
        select(AuditEvent).where(AuditEvent.action == "two_factor_enrolled", AuditEvent.subject_id == user.id)
    ).one()


def test_new_recovery_codes_replace_the_old(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    user = signed_in("manager")
    _, old = enrol(session, user)
    page = post_form(client, "/settings/two-step/recovery-codes", page="/settings/two-step")
    new = CODES.findall(page.get_data(as_text=True))
    assert len(new) == 10
    assert set(new).isdisjoint(old)
    assert use_recovery_code(session, user, old[0], secret_key=TEST_SECRET) is False
    assert use_recovery_code(session, user, new[0], secret_key=TEST_SECRET) is True


# --- reset by an administrator ---------------------------------------------------------------------------------


def test_an_admin_resets_a_lost_phone_audited_and_the_person_is_signed_out(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User]
) -> None:
    app = make_app()
    admin, user = staff("admin"), staff("clinician")
    totp, _ = enrol(session, user)
    browser = app.test_client()
    assert login(browser, user.email).status_code == 303
    steady_clock()
    assert code_step(browser, totp.now()) == 302
    admin_browser = app.test_client()
    assert login(admin_browser, admin.email).status_code == 302
    page = admin_browser.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "Reset two-step sign-in" in page
    token = csrf_from(page.split('id="two-step"')[1])
    reset = admin_browser.post(f"/admin/users/{user.id}/two-step/reset", data={"csrf_token": token})
    assert reset.status_code == 303
    assert not is_enrolled(session, user.id)
    assert session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all() == []
    assert browser.get("/clinician/").status_code == 302  # signed out everywhere
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "two_factor_reset", AuditEvent.subject_id == user.id)
    ).one()
    assert event.actor_id == admin.id
    assert event.detail == {"was_enrolled": True, "sessions_ended": 1}
    assert login(app.test_client(), user.email).status_code == 302  # the password alone again
    assert reset_two_factor(session, user, actor_id=admin.id) is False  # nothing left to reset


def test_only_an_admin_may_reset(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    victim = signed_in("clinician")
    enrol(session, victim)
    csrf = csrf_token(client, "/settings")
    assert client.post(f"/admin/users/{victim.id}/two-step/reset", data={"csrf_token": csrf}).status_code == 403
    assert is_enrolled(session, victim.id)


# --- the practice setting --------------------------------------------------------------------------------------


def test_the_practice_setting_makes_everyone_enrol_at_next_sign_in_before_any_page(
    client: FlaskClient, session: Session, staff: Callable[..., User]
) -> None:
    admin = staff("admin")
    user = staff("clinician")
    enrolled = staff("supervisor")
    totp, _ = enrol(session, enrolled)
    admin_browser = client.application.test_client()
    assert login(admin_browser, admin.email).status_code == 302
    turned_on = post_form(
        admin_browser, "/admin/practice/two-step", {"value": "on", "reason": "audit finding"}, page="/admin/practice"
    )
    assert turned_on.status_code == 303
    assert (
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == "practice_setting_changed").order_by(AuditEvent.id.desc())
        )
        .first()
        .detail["key"]
        == "two_factor_required"
    )
    # Signing in: straight to the enrolment page, and nothing else until a code confirms it.
    answer = login(client, user.email)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/settings/two-step"
    for path in ["/clinician/", "/clinician/settings"]:
        held = client.get(path)
        assert held.status_code == 303, path
        assert held.headers["Location"] == "/settings/two-step", path
    csrf = csrf_token(client, "/settings/two-step")
    held = client.post("/settings/two-step/recovery-codes", data={"csrf_token": csrf})
    assert held.headers["Location"] == "/settings/two-step"
    assert client.get("/settings").status_code == 200  # the language may still be chosen
    page = client.get("/settings/two-step").get_data(as_text=True)
    assert "Your practice asks everyone to use two-step sign-in" in page
    assert post_form(client, "/settings/two-step/start", page="/settings/two-step").status_code == 303
    steady_clock()
    done = post_form(
        client, "/settings/two-step/confirm", {"code": stored_totp(session, user).now()}, page="/settings/two-step"
    )
    assert done.status_code == 200
    assert len(CODES.findall(done.get_data(as_text=True))) == 10
    assert client.get("/clinician/").status_code == 200
    # The administrator too, at their next sign-in.
    admin_again = client.application.test_client()
    assert login(admin_again, admin.email).headers["Location"] == "/settings/two-step"
    assert admin_again.get("/admin/").headers["Location"] == "/settings/two-step"
    # Someone who already has a second factor signs in with it as before.
    other = client.application.test_client()
    assert login(other, enrolled.email).headers["Location"] == "/login/code"
    assert code_step(other, totp.now()) == 302
    assert other.get("/supervisor/").status_code == 200


def test_turning_the_setting_off_releases_a_held_session(
    client: FlaskClient, session: Session, staff: Callable[..., User]
) -> None:
    user = staff("front_desk")
    set_setting(session, "two_factor_required", True, user_id=None, reason="test")
    assert login(client, user.email).headers["Location"] == "/settings/two-step"
    assert client.get("/frontdesk/").status_code == 303
    set_setting(session, "two_factor_required", False, user_id=None, reason="test")
    assert client.get("/frontdesk/").status_code == 200


def test_the_setting_is_a_switch_and_off_by_default(session: Session) -> None:
    from services.accounts.two_factor import required_for
    from services.practice.settings import InvalidSetting

    assert required_for(session, "clinician") is False
    with pytest.raises(InvalidSetting):
        set_setting(session, "two_factor_required", "yes", user_id=None)
    set_setting(session, "two_factor_required", True, user_id=None, reason="test")
    assert all(required_for(session, role) for role in ("front_desk", "clinician", "supervisor", "manager", "admin"))


def test_the_secret_key_purpose_is_its_own() -> None:
    from services.crypto import derived_key
    from web.survey.progress import KEY_INFO

    assert derived_key(TEST_SECRET, SECRET_PURPOSE) != derived_key(TEST_SECRET, KEY_INFO)


def test_the_code_step_and_the_slowed_sign_in_speak_spanish(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User]
) -> None:
    from tests.unit.web.test_login_throttle import long_attack
    from web.auth.throttle import password_subject

    app = make_app(login_rate_limit="100 per minute")
    spanish = {"Accept-Language": "es"}
    user = staff("clinician")
    enrol(session, user)
    browser = app.test_client()
    token = csrf_from(browser.get("/login", headers=spanish).get_data(as_text=True))
    browser.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}, headers=spanish)
    page = browser.get("/login/code", headers=spanish).get_data(as_text=True)
    assert "Verificación en dos pasos" in page
    assert "Su contraseña es correcta" in page
    assert "Código de 6 dígitos" in page
    recovery = browser.get("/login/recovery", headers=spanish).get_data(as_text=True)
    assert "Iniciar sesión con un código de recuperación" in recovery
    long_attack(app, password_subject(user.email))
    slowed_client = app.test_client()
    token = csrf_from(slowed_client.get("/login", headers=spanish).get_data(as_text=True))
    slowed = slowed_client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        headers=spanish,
        environ_base={"REMOTE_ADDR": "10.3.1.1"},
    )
    assert slowed.status_code == 429
    text = slowed.get_data(as_text=True)
    assert "Puede volver a intentarlo dentro de 15 minutos" in text
    assert "Código de su aplicación de autenticación" in text


def test_the_switch_needs_a_choice_and_a_reason_and_a_clinician_cannot_flip_it(
    client: FlaskClient, session: Session, staff: Callable[..., User]
) -> None:
    from services.accounts.two_factor import required_for

    clinician, manager = staff("clinician"), staff("manager")
    assert login(client, clinician.email).status_code == 302
    csrf = csrf_token(client, "/settings")
    refused = client.post("/admin/practice/two-step", data={"value": "on", "reason": "x", "csrf_token": csrf})
    assert refused.status_code == 403
    managing = client.application.test_client()
    assert login(managing, manager.email).status_code == 302
    for data in ({"value": "on", "reason": ""}, {"value": "maybe", "reason": "because"}):
        answer = post_form(managing, "/admin/practice/two-step", data, page="/admin/practice")
        assert answer.status_code == 400
        assert 'role="alert" id="error-two_factor_required"' in answer.get_data(as_text=True)
    assert required_for(session, "clinician") is False
    page = managing.get("/admin/practice").get_data(as_text=True)
    assert "Two-step sign-in for every staff member" in page
    assert "Not required" in page


def test_the_users_list_says_who_signs_in_in_two_steps(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    signed_in("admin")
    with_app = staff("clinician", name="Tova Twostep")
    staff("clinician", name="Ona Onestep")
    enrol(session, with_app)
    page = client.get("/admin/").get_data(as_text=True)
    rows = {name: row for row in page.split("<tr>")[1:] for name in ("Tova Twostep", "Ona Onestep") if name in row}
    assert "<td>On</td>" in rows["Tova Twostep"]
    assert "<td>Off</td>" in rows["Ona Onestep"]


def test_the_code_step_keeps_where_the_person_was_going(
    client: FlaskClient, session: Session, staff: Callable[..., User]
) -> None:
    user = staff("clinician")
    totp, _ = enrol(session, user)
    token = csrf_token(client, "/login")
    answer = client.post(
        "/login?next=/clinician/settings", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.headers["Location"] == "/login/code"
    steady_clock()
    token = csrf_token(client, "/login/code")
    done = client.post("/login/code", data={"code": totp.now(), "csrf_token": token})
    assert done.status_code == 302
    assert done.headers["Location"] == "/clinician/settings"
