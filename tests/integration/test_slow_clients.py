"""A few idle keep-alive clients that POST a body the route never reads cannot starve the web server.

gunicorn 23.0 (issue 3301) hung every other request while ten such connections stayed open; the web process
here is started with the same gunicorn arguments as `rapport run` (infra/Procfile.local). Clients that send only
part of a body still hold a thread each until gunicorn's timeout (a slow-loris): that is what a buffering proxy in
front of gunicorn is for, and it is not tested here.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT, Settings
from services.db import Database
from tests.integration.conftest import free_port, settings_env, wait_for

PROCFILE = PROJECT_ROOT / "infra" / "Procfile.local"


def _web_arguments(port: int) -> list[str]:
    line = next(li for li in PROCFILE.read_text().splitlines() if li.startswith("web:"))
    command = line.removeprefix("web:").strip().format(python=sys.executable, host="127.0.0.1", port=port)
    return command.split()


@pytest.fixture
def web_server(it_settings: Settings, it_db: Database, tmp_path: Path) -> Iterator[int]:
    """The web process as `rapport run` starts it, on the integration database."""
    port = free_port()
    log = (tmp_path / "web.log").open("w")
    process = subprocess.Popen(
        _web_arguments(port), cwd=PROJECT_ROOT, env=settings_env(it_settings), stdout=log, stderr=subprocess.STDOUT
    )

    def healthy() -> bool:
        try:
            return _healthz_seconds(port) < 5
        except OSError:
            return False

    try:
        wait_for(healthy, timeout=60, interval=0.5, what="both gunicorn workers to serve /healthz")
        for _ in range(8):  # every worker has loaded the app
            _healthz_seconds(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _healthz_seconds(port: int) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        assert response.status in (200, 503)
    finally:
        connection.close()
    return time.perf_counter() - started


def test_ten_idle_clients_with_unread_bodies_do_not_starve_healthz(web_server: int) -> None:
    body = b"x" * 9000
    head = (
        b"POST /api/v1/clients HTTP/1.1\r\nHost: rapport.test\r\nConnection: keep-alive\r\n"
        b"Content-Type: application/json\r\nContent-Length: 9000\r\n\r\n"
    )
    idle = []
    try:
        for _ in range(10):
            conn = socket.create_connection(("127.0.0.1", web_server))
            conn.sendall(head + body)
            idle.append(conn)
        time.sleep(0.5)
        assert _healthz_seconds(web_server) < 1.0
    finally:
        for conn in idle:
            conn.close()
