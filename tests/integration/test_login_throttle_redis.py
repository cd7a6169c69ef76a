"""The per-account login slowing holds across web processes: failures counted by one process slow another (Redis).

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
