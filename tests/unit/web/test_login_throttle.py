"""Per-account slowing of sign-ins: failures from many addresses slow an attacker down and never lock the owner out.

Before it, twenty failed logins from twenty addresses gave the owner's right password, from anywhere, a 429: the
per-email limit was a lock anyone could turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from services.accounts.models import KnownAddress, LoginSession, TwoFactor, User
from services.accounts.two_factor import confirm_enrolment, decrypt_secret, start_enrolment
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD
from tests.unit.web.conftest import csrf_token
from web.auth.throttle import FREE_FAILURES, MAX_DELAY, delay_after, password_subject

USUAL = "192.0.2.10"


def attempt(client: FlaskClient, email: str, password: str, address: str, code: str | None = None) -> TestResponse:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if code is not None:
        data["code"] = code
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": address})


def long_attack(app: Flask, subject: str, failures: int = 15) -> None:
    """An attack long enough to reach the 15-minute wait, counted straight into the throttle's storage.

    Through HTTP each failure after the fifth needs the previous wait to pass first (2 + 4 + 8 ... seconds), which
    no test can wait out; the HTTP tests here show that every failed attempt is counted the same way.
    """
    from web.auth import throttle

    with app.test_request_context():
        for _ in range(failures):
            throttle.record_failure(subject)


def fail_from_many_addresses(app: Flask, email: str, count: int) -> list[int]:
    return [
        attempt(app.test_client(), email, "wrong password!!", f"10.1.{n // 250}.{n % 250 + 1}").status_code
        for n in range(count)
    ]


def test_the_delay_doubles_after_five_failures_up_to_fifteen_minutes() -> None:
    assert [delay_after(n) for n in range(1, FREE_FAILURES)] == [0] * (FREE_FAILURES - 1)
    assert [delay_after(n) for n in range(FREE_FAILURES, FREE_FAILURES + 5)] == [2, 4, 8, 16, 32]
    assert delay_after(FREE_FAILURES + 9) == MAX_DELAY == 15 * 60
    assert delay_after(10_000) == MAX_DELAY


def test_twenty_failures_from_twenty_addresses_slow_the_attacker_and_not_the_owner_at_their_usual_address(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User]
) -> None:
    app = make_app()  # the default per-address limit, 10 per minute and 50 per hour
    owner = staff("clinician")
    assert attempt(app.test_client(), owner.email, PASSWORD, USUAL).status_code == 302  # the owner's usual place
    assert session.scalars(select(KnownAddress).where(KnownAddress.user_id == owner.id)).one().address_hash != USUAL

    statuses = fail_from_many_addresses(app, owner.email, 20)
    assert statuses[:FREE_FAILURES] == [401] * FREE_FAILURES
    assert statuses[FREE_FAILURES] == 429  # slowed at once, not merely counted
    assert set(statuses[FREE_FAILURES:]) <= {401, 429}

    # The owner, from their usual address, signs in at once.
    owner_now = app.test_client()
    assert attempt(owner_now, owner.email, PASSWORD, USUAL).status_code == 302
    assert owner_now.get("/clinician/").status_code == 200

    # However long the attack: the attacker, from a new address, even with the right password, waits (and is told
    # how long); the owner at their usual address still gets in.
    long_attack(app, password_subject(owner.email))
    slowed = attempt(app.test_client(), owner.email, PASSWORD, "203.0.113.7")
    assert slowed.status_code == 429
    assert MAX_DELAY - 60 <= int(slowed.headers["Retry-After"]) <= MAX_DELAY
    page = slowed.get_data(as_text=True)
    assert "too many failed attempts to sign in to this account" in page
    assert "You can try again in 15 minutes" in page
    assert session.scalar(select(LoginSession).where(LoginSession.ip == "203.0.113.7")) is None
    owner_again = app.test_client()
    assert attempt(owner_again, owner.email, PASSWORD, USUAL).status_code == 302
    assert owner_again.get("/clinician/").status_code == 200


def test_the_wait_grows_with_each_failure(make_app: Callable[..., Flask], staff: Callable[..., User]) -> None:
    app = make_app(login_rate_limit="100 per minute")
    email = staff("clinician").email
    assert fail_from_many_addresses(app, email, FREE_FAILURES) == [401] * FREE_FAILURES
    first = attempt(app.test_client(), email, "wrong password!!", "10.9.0.1")
    assert first.status_code == 429
    assert first.headers["Retry-After"] in ("1", "2")
    time.sleep(2.1)
    assert attempt(app.test_client(), email, "wrong password!!", "10.9.0.2").status_code == 401
    second = attempt(app.test_client(), email, "wrong password!!", "10.9.0.3")
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) in (3, 4)


def test_an_unknown_email_is_slowed_the_same_way(make_app: Callable[..., Flask]) -> None:
    app = make_app(login_rate_limit="100 per minute")
    email = "nobody-here@example.test"
    assert fail_from_many_addresses(app, email, FREE_FAILURES) == [401] * FREE_FAILURES
    assert attempt(app.test_client(), email, "wrong password!!", "10.9.0.1").status_code == 429


def test_an_owner_with_two_step_sign_in_gets_in_from_a_new_address_with_password_and_code(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User]
) -> None:
    app = make_app(login_rate_limit="100 per minute")
    owner = staff("supervisor")
    start_enrolment(session, owner, secret_key=TEST_SECRET)
    row = session.get(TwoFactor, owner.id)
    assert row is not None
    totp = pyotp.TOTP(decrypt_secret(TEST_SECRET, row.secret_encrypted) or "")
    now = datetime.now(UTC)
    confirm_enrolment(session, owner, totp.at(now - timedelta(seconds=30)), secret_key=TEST_SECRET, now=now)
    session.flush()
    fail_from_many_addresses(app, owner.email, 20)
    long_attack(app, password_subject(owner.email))

    travelling = app.test_client()
    asked = attempt(travelling, owner.email, PASSWORD, "198.51.100.20")
    assert asked.status_code == 429
    assert 'autocomplete="one-time-code"' in asked.get_data(as_text=True)  # the code field is offered
    # A wrong code (or a wrong password with a right code) does not pass, and does not say which was wrong.
    if 30 - time.time() % 30 < 4:
        time.sleep(4.5)
    wrong_code = attempt(
        travelling, owner.email, PASSWORD, "198.51.100.20", code="000000" if totp.now() != "000000" else "1"
    )
    assert wrong_code.status_code == 401
    wrong_password = attempt(travelling, owner.email, "wrong password!!", "198.51.100.20", code=totp.now())
    assert wrong_password.status_code == 401
    assert wrong_code.get_data(as_text=True).count("form-error") == wrong_password.get_data(as_text=True).count(
        "form-error"
    )
    passed = attempt(travelling, owner.email, PASSWORD, "198.51.100.21", code=totp.at(time.time() + 30))
    assert passed.status_code == 302, passed.get_data(as_text=True)
    assert travelling.get("/supervisor/").status_code == 200


def test_a_successful_sign_in_forgets_the_failures(make_app: Callable[..., Flask], staff: Callable[..., User]) -> None:
    app = make_app(login_rate_limit="100 per minute")
    email = staff("manager").email
    assert fail_from_many_addresses(app, email, FREE_FAILURES - 1) == [401] * (FREE_FAILURES - 1)
    assert attempt(app.test_client(), email, PASSWORD, "10.5.0.1").status_code == 302
    assert fail_from_many_addresses(app, email, FREE_FAILURES - 1) == [401] * (FREE_FAILURES - 1)
    assert attempt(app.test_client(), email, "wrong password!!", "10.5.0.2").status_code == 401  # still free
