"""Sign-in on the real services: the per-account slowing holds across web processes (Redis), and one TOTP code
used by two racing requests signs in only one of them (PostgreSQL's row locks under the conditional UPDATE).

A second Python process builds its own app from the environment (as gunicorn's workers do), on the same PostgreSQL
and Redis, and fails to sign in to one account from several addresses; one more failure in this process is then
enough to slow the account for a new address, and its owner still gets in from their usual one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from services.config import Settings
from services.db import Database
from tests.factories import PASSWORD, make_user
from tests.integration.conftest import settings_env
from tests.unit.web.conftest import csrf_token
from web.app import create_app
from web.auth.throttle import FREE_FAILURES

OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from web.app import create_app

    app = create_app()
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    email, count = sys.argv[1], int(sys.argv[2])
    statuses = []
    for n in range(count):
        client = app.test_client()
        answer = client.post(
            "/login",
            data={"email": email, "password": "wrong password!!"},
            environ_base={"REMOTE_ADDR": f"10.20.0.{n + 1}"},
        )
        statuses.append(answer.status_code)
    print(",".join(map(str, statuses)))
    """
)


def test_failures_in_one_web_process_slow_the_account_in_another(it_settings: Settings, it_db: Database) -> None:
    email = "it-throttle-owner@example.test"
    with it_db.unit_of_work() as session:
        make_user(session, role="clinician", email=email, team=None)
    app = create_app(settings=it_settings, database=it_db)
    app.config.update(TESTING=True)

    def attempt(password: str, address: str) -> int:
        client = app.test_client()
        data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
        return client.post("/login", data=data, environ_base={"REMOTE_ADDR": address}).status_code

    assert attempt(PASSWORD, "192.0.2.44") == 302  # the owner's usual address, remembered
    other = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, email, str(FREE_FAILURES - 1)],
        env=settings_env(it_settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout.strip().splitlines()[-1] == ",".join(["401"] * (FREE_FAILURES - 1))  # still free there
    # One more failure here is the account's FREE_FAILURES-th in the shared count (alone, this process saw one):
    # the next attempt from a new address must wait, even with the right password.
    assert attempt("wrong password!!", "203.0.113.79") == 401
    assert attempt(PASSWORD, "203.0.113.80") == 429
    assert attempt(PASSWORD, "192.0.2.44") == 302  # and the owner still gets in


def test_one_code_used_by_two_racing_requests_signs_in_only_one_on_postgresql(it_db: Database) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    import pyotp

    from services.accounts.models import TwoFactor, User
    from services.accounts.two_factor import confirm_enrolment, decrypt_secret, start_enrolment, verify_code
    from tests.conftest import TEST_SECRET

    now = datetime.now(UTC)
    with it_db.unit_of_work() as session:
        user = make_user(session, role="supervisor", email="it-two-step-race@example.test", team=None)
        start_enrolment(session, user, secret_key=TEST_SECRET)
        row = session.get(TwoFactor, user.id)
        assert row is not None
        totp = pyotp.TOTP(decrypt_secret(TEST_SECRET, row.secret_encrypted) or "")
        confirm_enrolment(session, user, totp.at(now - timedelta(seconds=30)), secret_key=TEST_SECRET, now=now)
        user_id = user.id
    code = totp.at(now)
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def use() -> None:
        with it_db.unit_of_work() as session:
            person = session.get(User, user_id)
            assert person is not None
            barrier.wait()
            results.append(verify_code(session, person, code, secret_key=TEST_SECRET, now=now))

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, True]
