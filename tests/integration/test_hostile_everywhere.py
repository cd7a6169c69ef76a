"""Hostile text everywhere: planted through the operations in every free-text field of a seeded demo practice,
then every page that shows it (and every page those link to) rendered as each role, the import report, and every
monthly report scope as a PDF. It must appear as escaped text, and a listener on 127.0.0.1 whose port is in the
hostile URLs must receive nothing. The browser half (no script runs in Chromium) is tests/e2e/test_hostile_input.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from reports.assemble import render_monthly_report
from reports.pdf import SafeURLFetcher
from services import schema
from services.accounts.models import User
from services.config import Settings
from services.db import Database, utcnow
from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
from services.reporting.periods import ReportScope
from tests.conftest import build_settings
from tests.hostile import Planted, hostile_strings, listening, pages_for, plant_everywhere, practice_name, raw_markers
from tests.unit.reports.conftest import Listener, PdfInspector
from tests.unit.web.conftest import csrf_from, login

MAX_CRAWL = 300  # pages per role
MAX_DEPTH = 1  # the pages that show planted text, and every page they link to
SKIP = re.compile(r"^/(logout|static/|s/|kiosk)|/download$|[?&]lang=")
LINK = re.compile(r'href="(/[^"#]*)"')


@dataclass
class HostileSite:
    """A seeded demo practice with hostile text planted, the app on it, and the listener its URLs point at."""

    app: Flask
    database: Database
    settings: Settings
    listener: Listener
    planted: Planted


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSite]:
    """Its own SQLite file (the demo seed commits), migrated, seeded, planted."""
    from web.app import create_app
    from workers import runtime
    from workers.app import configure

    previous = runtime.settings()  # create_app points the process-wide publisher at this site's settings
    with listening() as listener:
        var_dir = tmp_path_factory.mktemp("hostile-var")
        settings = build_settings(var_dir, practice_name=practice_name(listener.port))
        database = Database(settings.database_url)
        schema.upgrade(database.engine)
        seed_demo(database, clients=10, months=2)
        planted = plant_everywhere(database, listener.port)
        app = create_app(settings=settings, database=database)
        app.config.update(TESTING=True)
        yield HostileSite(app=app, database=database, settings=settings, listener=listener, planted=planted)
        database.dispose()
    configure(previous)  # the later tests' workers listen on the test Redis, not this site's broker


def _assert_inert(html: str, where: str, port: int) -> None:
    for marker in raw_markers(port):
        assert marker not in html, (where, marker)


def _crawl(site: HostileSite, email: str, start: list[str]) -> dict[str, str]:
    """GET every page in start and every same-site page they link to, as email; path -> HTML."""
    browser = site.app.test_client()
    assert login(browser, email, DEMO_PASSWORD).status_code == 302, email
    seen: dict[str, str] = {}
    queue = [(path, 0) for path in dict.fromkeys(start)]
    while queue and len(seen) < MAX_CRAWL:
        path, depth = queue.pop(0)
        if path in seen or SKIP.search(path):
            continue
        response = browser.get(path)
        assert response.status_code < 500, (email, path, response.status_code)
        if response.status_code != 200 or not response.mimetype.startswith("text/html"):
            seen[path] = ""
            continue
        html = response.get_data(as_text=True)
        seen[path] = html
        _assert_inert(html, f"{email} {path}", site.listener.port)
        if depth < MAX_DEPTH:
            queue += [(link.replace("&amp;", "&"), depth + 1) for link in LINK.findall(html) if link not in seen]
    return seen


@pytest.mark.sockets
def test_hostile_text_is_escaped_on_every_page_that_shows_it(site: HostileSite) -> None:
    planted = site.planted
    rendered: dict[str, str] = {}
    for email, start in pages_for(site.database, planted).items():
        pages = _crawl(site, email, start)
        rendered.update({f"{email} {path}": html for path, html in pages.items()})
    everything = "\n".join(rendered.values())
    missing = {
        name: [v[:60] for v in values if v not in everything]
        for name, values in planted.shown.items()
        if any(v not in everything for v in values)
    }
    assert not missing, missing  # every planted value is on some page, escaped
    # The template syntax stayed text: nothing evaluated it.
    assert "{{7*7}}{% if 1 %}jinja{% endif %}" in everything
    # Every field took every short string; only the 100 kB one was refused (too long), never with a 500.
    for name, labels in planted.refused.items():
        assert labels == ["long-100kB"], (name, labels)
    assert site.listener.count() == 0
    print(
        f"hostile inputs {len(planted.strings)}, fields {len(planted.fields)}, attempts {planted.attempts}, "
        f"refused {sum(len(v) for v in planted.refused.values())}, pages rendered {len(rendered)}"
    )
    print("fields:", ", ".join(sorted(planted.fields)), "| refused:", planted.refused)


@pytest.mark.sockets
def test_hostile_rows_in_an_import_are_reported_as_text(site: HostileSite) -> None:
    strings = hostile_strings(site.listener.port)
    browser = site.app.test_client()
    assert login(browser, DEMO_LOGINS["front_desk"], DEMO_PASSWORD).status_code == 302
    lines = ["external_id,client_code,client_email,starts_at,duration_minutes,status"]
    for index, value in enumerate(strings.values()):
        cell = value[:3000].replace('"', '""')
        lines.append(f'"{cell}","{cell}","x{index}@example.test","{cell}",50,"{cell}"')
        lines.append(f'"id-{index}","{cell}",,2026-03-02T10:00,50,')
    data = ("\n".join(lines) + "\n").encode()
    page = browser.get("/frontdesk/import")
    response = browser.post(
        "/frontdesk/import",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "fmt": "csv",
            "source": "calendar",
            "file": (io.BytesIO(data), "hostile.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code in (200, 400), response.status_code
    html = response.get_data(as_text=True)
    _assert_inert(html, "import report", site.listener.port)
    assert "&lt;script&gt;window.__rapport_pwned" in html  # the row's value is echoed, as text
    assert site.listener.count() == 0


@pytest.mark.sockets
def test_every_monthly_report_scope_renders_hostile_names_as_text_and_fetches_nothing(
    site: HostileSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetchers: list[SafeURLFetcher] = []
    original = SafeURLFetcher.__init__

    def recording(self: SafeURLFetcher, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fetchers.append(self)

    monkeypatch.setattr(SafeURLFetcher, "__init__", recording)
    inspector = PdfInspector(tmp_path)
    now = utcnow()
    period = f"{now.year:04d}-{now.month:02d}"
    with site.database.session() as session:
        clinicians = list(session.scalars(select(User.id).where(User.role.in_(("clinician", "supervisor")))))
        team_ids = sorted({t for t in session.scalars(select(User.team_id)) if t is not None})
    scopes = [ReportScope("practice")]
    scopes += [ReportScope("team", t) for t in team_ids]
    scopes += [ReportScope("clinician", c) for c in clinicians]
    script = site.planted.strings["script"]
    with site.database.session() as session:
        for scope in scopes:
            rendered = render_monthly_report(session, site.settings, scope, period, now=now)
            _assert_inert(rendered.html, f"report {scope}", site.listener.port)
            assert "&lt;script&gt;" in rendered.html, scope  # the practice name, escaped
            pdf = rendered.pdf
            assert inspector.attachments(pdf) == 0, scope
            text = inspector.text(pdf, layout=False)
            assert "root:x:0:0" not in text
            assert script[:20] in text, scope  # shown as the characters typed
    assert site.listener.count() == 0
    assert len(fetchers) == len(scopes)
    for fetcher in fetchers:
        assert fetcher.refused == []
        assert all(name == "report.css" or name.startswith("fonts/") for name in fetcher.served)
    print(f"PDFs rendered {len(scopes)} (practice, {len(team_ids)} teams, {len(clinicians)} clinicians)")
