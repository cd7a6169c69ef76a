"""Redis frozen (SIGSTOP) for ten seconds under a real threaded web server: no client request waits on it.

Survey clients answer whole surveys and staff sign in (wrong passwords, so every attempt counts against the login
limits) while the rate-limit storage and the broker are one Redis that accepts connections and never answers. Every
client request must be answered in under 500 ms (a sign-in, which hashes a password, under a second), none with a
server error, and every survey a client was thanked for stored.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from services.config import Settings
from services.db import Database
from services.surveys.models import Administration
from tests.fault.conftest import RedisServer
from tests.fault.test_redis_down import PHQ9, STATE, new_link
from tests.integration.conftest import free_port

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FROZEN_FOR = 10.0
SURVEY_THREADS = 3
LINKS_PER_THREAD = 12
# Answers arrive slower than a burst, so that the whole freeze is covered by some clients.
THINK = 0.3


class Timings:
    """Every request's path, status and duration, from all client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[str, int, float, float]] = []  # (what, status, started, seconds)

    def call(self, opener: urllib.request.OpenerDirector, what: str, req: urllib.request.Request) -> tuple[int, str]:
        started = time.monotonic()
        try:
            with opener.open(req, timeout=30) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
        with self.lock:
            self.rows.append((what, status, started, time.monotonic() - started))
        return status, body


@pytest.fixture
def frozen_app(fault_settings: Settings, fault_db: Database, fault_redis: RedisServer) -> Flask:
    """The web app with its rate limits counted in our Redis (the package default counts in memory)."""
    from web.app import create_app

    settings = fault_settings.with_overrides(
        ratelimit_storage_url=fault_redis.url, login_rate_limit="1000 per minute", token_rate_limit="1000 per minute"
    )
    return create_app(settings=settings, database=fault_db)


@pytest.fixture
def served(frozen_app: Flask) -> Iterator[str]:
    """The app behind a real threaded WSGI server on a free port; yields its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, frozen_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)


def new_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def answer_surveys(base: str, paths: list[str], timings: Timings, thanked: list[str], stop: threading.Event) -> None:
    for path in paths:
        if stop.is_set():
            return
        opener = new_opener()
        status, page = timings.call(opener, "survey GET", urllib.request.Request(base + path))
        match = STATE.search(page)
        if status != 200 or not match:
            continue
        time.sleep(THINK)
        form = {"state": match.group(1), "lang": "en", "action": "next", **PHQ9}
        data = urllib.parse.urlencode(form).encode()
        status, page = timings.call(opener, "survey POST", urllib.request.Request(base + path, data=data))
        if status == 200 and "Thank you, Outage." in page:
            thanked.append(path)
        time.sleep(THINK)


def sign_in_wrongly(base: str, timings: Timings, stop: threading.Event) -> None:
    opener = new_opener()
    while not stop.is_set():
        status, page = timings.call(opener, "login GET", urllib.request.Request(base + "/login"))
        match = CSRF.search(page)
        if status == 200 and match:
            form = {"email": "nobody@rapport.test", "password": "not it", "csrf_token": match.group(1)}
            data = urllib.parse.urlencode(form).encode()
            timings.call(opener, "login POST", urllib.request.Request(base + "/login", data=data))
        time.sleep(THINK)


def redis_pid(server: RedisServer) -> int:
    return int((server.workdir / "redis.pid").read_text().strip())


def test_a_frozen_redis_never_holds_up_a_client(
    served: str, fault_db: Database, redis_up: RedisServer, fault_publisher: Any
) -> None:
    links = [new_link(fault_db) for _ in range(SURVEY_THREADS * LINKS_PER_THREAD)]
    paths = [path for _, path in links]
    timings, stop = Timings(), threading.Event()
    thanked: list[str] = []
    threads = [
        threading.Thread(
            target=answer_surveys, args=(served, paths[i::SURVEY_THREADS], timings, thanked, stop), daemon=True
        )
        for i in range(SURVEY_THREADS)
    ]
    threads.append(threading.Thread(target=sign_in_wrongly, args=(served, timings, stop), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # some traffic with Redis answering
    pid = redis_pid(redis_up)
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        time.sleep(FROZEN_FOR)
    finally:
        os.kill(pid, signal.SIGCONT)
    thawed_at = time.monotonic()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    during = [row for row in timings.rows if frozen_at <= row[2] < thawed_at]
    slowest = max(timings.rows, key=lambda row: row[3])
    by_kind = {
        kind: round(max(row[3] for row in timings.rows if row[0] == kind) * 1000)
        for kind in sorted({row[0] for row in timings.rows})
    }
    summary = f"{len(timings.rows)} requests, {len(during)} while frozen, max ms {by_kind}, slowest {slowest}"
    assert len(during) >= 40, summary  # the freeze was really exercised
    assert {"survey POST", "login POST"} <= {row[0] for row in during}, summary
    assert not [row for row in timings.rows if row[1] >= 500], summary
    # A client's request never waits on Redis; a sign-in also hashes a password (CPU), so it gets a little more.
    assert max(row[3] for row in timings.rows if row[0].startswith("survey")) < 0.5, summary
    assert slowest[3] < 1.0, summary
    assert [row for row in timings.rows if row[0] == "login POST" and row[1] == 401], summary
    # Every survey a client was thanked for is stored.
    ids = [invitation_id for invitation_id, path in links if path in thanked]
    assert len(ids) >= SURVEY_THREADS * 5, summary
    with fault_db.session() as session:
        stored = session.scalar(
            select(func.count()).select_from(Administration).where(Administration.invitation_id.in_(ids))
        )
    assert stored == len(ids), summary
    print(summary)
