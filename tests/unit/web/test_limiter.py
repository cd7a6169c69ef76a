"""The rate limiter never makes a client wait on its shared storage: a dead or frozen Redis costs one short timeout,
then limits count in memory until Redis answers again; logins and token routes share the one mechanism."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from services.accounts.models import User
from tests.integration.conftest import free_port
from tests.unit.survey.helpers import POST, make_link
from tests.unit.web.conftest import login
from web import limiter as limiter_module
from web.limiter import CircuitBreaker, GuardedStorage

pytestmark = pytest.mark.sockets  # its own listeners on 127.0.0.1: a frozen one and a closed port


class FrozenServer:
    """A TCP server that accepts connections and never answers, as a SIGSTOPped Redis does."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def frozen() -> Iterator[FrozenServer]:
    server = FrozenServer()
    yield server
    server.close()


def guarded(_app: Flask) -> GuardedStorage:
    storage = limiter_module.limiter.storage
    assert isinstance(storage, GuardedStorage), type(storage)
    return storage


def timed(call: Callable[[], int]) -> tuple[int, float]:
    started = time.monotonic()
    status = call()
    return status, time.monotonic() - started


def test_a_frozen_redis_costs_one_short_timeout_then_nothing(
    make_app: Callable[..., Flask], session: Session, frozen: FrozenServer
) -> None:
    link = make_link(session, instruments=POST)
    app = make_app(ratelimit_storage_url=f"redis://127.0.0.1:{frozen.port}/0", token_rate_limit="3 per minute")
    client = app.test_client()
    storage = guarded(app)
    results = [timed(lambda: client.get(link.path).status_code) for _ in range(4)]
    assert [status for status, _ in results] == [200, 200, 200, 429]  # still limited, in memory
    assert storage.breaker.trips == 1
    assert storage.breaker.is_open
    # The first request paid the short socket timeout once (no retries), not the 5 s default; the others did not
    # ask Redis at all (one accepted connection). The bound is loose on purpose: a busy CI machine adds scheduling.
    assert results[0][1] < 2.0, results
    assert len(frozen.accepted) == 1  # one connection: the first request's


def test_login_limits_count_in_memory_while_redis_is_down(
    make_app: Callable[..., Flask], staff: Callable[..., User]
) -> None:
    app = make_app(ratelimit_storage_url=f"redis://127.0.0.1:{free_port()}/0", login_rate_limit="2 per minute")
    client = app.test_client()
    user = staff("clinician")
    statuses = [login(client, user.email, password="wrong password").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert guarded(app).breaker.trips == 1  # the token routes and logins trip one and the same breaker


def test_token_and_login_limits_share_one_breaker(
    make_app: Callable[..., Flask], session: Session, staff: Callable[..., User], frozen: FrozenServer
) -> None:
    link = make_link(session, instruments=POST)
    app = make_app(ratelimit_storage_url=f"redis://127.0.0.1:{frozen.port}/0")
    client = app.test_client()
    assert client.get(link.path).status_code == 200
    breaker = guarded(app).breaker
    assert breaker.is_open
    status, took = timed(lambda: login(client, staff("clinician").email, password="nope").status_code)
    assert status == 401
    assert took < 0.5
    assert breaker.trips == 1
    assert len(frozen.accepted) == 1


def test_the_breaker_probes_once_after_its_backoff_and_closes_when_the_primary_answers() -> None:
    now = [100.0]
    breaker = CircuitBreaker(backoff=30, slow=1.0, name="test storage", clock=lambda: now[0])
    calls: list[str] = []

    def failing() -> str:
        calls.append("primary")
        raise ConnectionError("down")

    def answering() -> str:
        calls.append("primary")
        return "shared"

    assert breaker.call(failing, lambda: "memory") == "memory"
    assert breaker.call(answering, lambda: "memory") == "memory"  # open: the primary is not asked
    assert calls == ["primary"]
    now[0] += 29.9
    assert breaker.call(answering, lambda: "memory") == "memory"  # still open just before the backoff ends
    now[0] += 0.2
    assert breaker.call(answering, lambda: "memory") == "shared"  # the probe succeeds and closes it
    assert not breaker.is_open
    assert breaker.call(answering, lambda: "memory") == "shared"
    assert calls == ["primary"] * 3


def test_a_slow_answer_trips_the_breaker_but_is_used() -> None:
    breaker = CircuitBreaker(backoff=10, slow=0.01, name="test storage")

    def slow() -> str:
        time.sleep(0.02)
        return "shared"

    assert breaker.call(slow, lambda: "memory") == "shared"
    assert breaker.is_open
    assert breaker.call(slow, lambda: "memory") == "memory"


def test_clearing_a_key_never_raises_when_the_shared_storage_is_down() -> None:
    from limits.storage import MemoryStorage

    class Down(MemoryStorage):
        def clear(self, key: str) -> None:
            raise ConnectionError("down")

    storage = GuardedStorage(Down(), CircuitBreaker(backoff=10, name="test storage"))
    storage.memory.incr("login-wait/x", 60)
    storage.clear("login-wait/x")  # a successful sign-in forgets its failures even while Redis is away
    assert storage.memory.get("login-wait/x") == 0
    assert storage.breaker.is_open
