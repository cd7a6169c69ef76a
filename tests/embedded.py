"""The embedded default started the way `make run` starts it, and a small HTTP client for driving it.

`rapport run` in a subprocess on a temporary var directory (SQLite, the filesystem broker, gunicorn, one Celery
worker and beat, the demo practice), with everything the three processes print going to one log file. The client
keeps cookies and fills forms the way a browser would (CSRF token included), so tests can act as staff and clients
through the same routes people use.
"""

from __future__ import annotations

import http.cookiejar
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from services.config import PROJECT_ROOT


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Embedded:
    """A running `rapport run`: its URL, var directory and combined log."""

    url: str
    var_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def database_url(self) -> str:
        """The SQLite file the three processes share."""
        return f"sqlite:///{self.var_dir / 'rapport.sqlite3'}"

    def log(self) -> str:
        """Everything web, worker and beat printed so far."""
        return self.log_path.read_text(errors="replace")

    def env(self) -> dict[str, str]:
        """The environment that points a `rapport` command at this instance."""
        return embedded_env(self.var_dir, self.url)


def embedded_env(var_dir: Path, url: str) -> dict[str, str]:
    """The process environment of an embedded instance: only the var directory and base URL are set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update({"RAPPORT_VAR_DIR": str(var_dir), "RAPPORT_BASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@contextmanager
def embedded_instance(var_dir: Path, *, startup_timeout: float = 180.0) -> Iterator[Embedded]:
    """Start `rapport run` (migrate, seed the demo, web + worker + beat) and stop it (SIGTERM) afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = var_dir / "rapport-run.log"
    var_dir.mkdir(parents=True, exist_ok=True)
    rapport = str(Path(sys.executable).parent / "rapport")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [rapport, "run", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=embedded_env(var_dir, url),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    instance = Embedded(url=url, var_dir=var_dir, log_path=log_path, process=process)
    try:
        _wait_until_serving(instance, startup_timeout)
        yield instance
    finally:
        _stop(process)


def _wait_until_serving(instance: Embedded, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise RuntimeError(f"rapport run exited early:\n{instance.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{instance.url}/healthz", timeout=2) as response:
                if response.status == 200 and "worker@" in instance.log():
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"rapport run did not start within {timeout}s:\n{instance.log()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _Forms(HTMLParser):
    """The POST forms of a page: action and the values a browser would send without the user's choices."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str], dict[str, list[str]]]] = []
        self._current: tuple[str, dict[str, str], dict[str, list[str]]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form" and attr.get("method", "get").lower() == "post":
            self._current = (attr.get("action", ""), {}, {})
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attr.get("name"):
            kind = attr.get("type", "text").lower()
            fixed, choices = self._current[1], self._current[2]
            if kind == "hidden":
                fixed[attr["name"]] = attr.get("value", "")
            elif kind in ("radio", "checkbox"):
                choices.setdefault(attr["name"], []).append(attr.get("value", "on"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def post_forms(html: str) -> list[tuple[str, dict[str, str], dict[str, list[str]]]]:
    """Each POST form on a page as (action, hidden values, choices of each radio or checkbox group)."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    url: str
    text: str


@dataclass
class Browser:
    """A cookie-keeping HTTP client that records every status it got."""

    base: str
    statuses: list[tuple[str, str, int]] = field(default_factory=list)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self._jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))

    def request(self, method: str, path: str, data: Mapping[str, str] | None = None, **headers: str) -> Reply:
        """Send one request (following redirects) and record its final status."""
        url = path if path.startswith("http") else self.base + path
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                reply = Reply(response.status, response.url, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            reply = Reply(exc.code, url, exc.read().decode("utf-8", "replace"))
        self.statuses.append((method, path.split("?")[0], reply.status))
        return reply

    def get(self, path: str) -> Reply:
        """GET a page."""
        return self.request("GET", path)

    def submit(self, page: Reply, values: Mapping[str, str], *, form: int = -1, action: str | None = None) -> Reply:
        """Post one of page's forms: its hidden fields (CSRF token included) plus values."""
        forms = post_forms(page.text)
        if not forms:
            raise AssertionError(f"no POST form on {page.url}")
        target, hidden, _choices = forms[form]
        return self.request("POST", urllib.parse.urljoin(page.url, action or target or page.url), {**hidden, **values})

    def login(self, email: str, password: str) -> Reply:
        """Sign in through the login form."""
        page = self.get("/login")
        return self.submit(page, {"email": email, "password": password})

    def api(self, method: str, path: str, token: str, payload: Any = None) -> tuple[int, Any]:
        """A JSON API call with a bearer token."""
        import json

        body = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        self.statuses.append((method, path.split("?")[0], status))
        return status, json.loads(text) if text else None

    def server_errors(self) -> list[tuple[str, str, int]]:
        """Every request that got a 5xx."""
        return [row for row in self.statuses if row[2] >= 500]
