"""Hostile text in Chromium: no planted script runs and no page fetches anything from outside.

A demo practice is seeded and every hostile string (tests/hostile.py) planted through the operations in every
free-text field; a listener on 127.0.0.1 whose port is in the hostile URLs records any request. Chromium opens every
page that shows the planted text as each role, with the content security policy bypassed (so escaping alone must
hold), and the survey is walked with a hostile free-text comment typed into it. A planted script would set
window.__rapport_pwned or open a dialog; neither may happen, and the listener must stay silent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from services import schema
from services.db import Database
from services.demo.seed import DEMO_PASSWORD, seed_demo
from services.surveys.invitations import create_link_invitation
from tests.conftest import build_settings
from tests.e2e.conftest import PHONE, free_port
from tests.hostile import FLAG, Planted, listening, pages_for, plant_everywhere, practice_name
from tests.unit.reports.conftest import Listener


@dataclass
class HostileSite:
    """The app over HTTP on a local port over a planted demo practice, and the listener its hostile URLs name."""

    url: str
    database: Database
    listener: Listener
    planted: Planted


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSite]:
    """A threaded werkzeug server on 127.0.0.1 over its own seeded and planted SQLite practice."""
    from web.app import create_app

    with listening() as listener:
        var_dir = tmp_path_factory.mktemp("hostile-e2e-var")
        port = free_port()
        settings = build_settings(
            var_dir,
            base_url=f"http://127.0.0.1:{port}",
            token_rate_limit="10000 per minute",
            broker_url="memory://",
            practice_name=practice_name(listener.port),
        )
        database = Database(settings.database_url)
        schema.upgrade(database.engine)
        seed_demo(database, clients=10, months=2)
        planted = plant_everywhere(database, listener.port)
        app = create_app(settings=settings, database=database)
        server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="hostile-server", daemon=True)
        thread.start()
        yield HostileSite(url=settings.base_url, database=database, listener=listener, planted=planted)
        server.shutdown()
        thread.join(timeout=5)
        database.dispose()


@dataclass
class Watched:
    """A page whose dialogs and requests to anywhere but the site are recorded."""

    page: Any
    dialogs: list[str]
    outside: list[str]


def _watched(context: Any, site_url: str) -> Watched:
    page = context.new_page()
    watched = Watched(page=page, dialogs=[], outside=[])

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{page.url}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "request",
        lambda request: None if request.url.startswith((site_url, "data:")) else watched.outside.append(request.url),
    )
    return watched


# Elements only a planted string written as markup could have made (the site itself has no inline script or
# style, and nothing of its own names the listener or file:).
PLANTED_ELEMENTS = """port => document.querySelectorAll([
  'script:not([src])', 'style', '[onload]', '[onerror]', 'svg[onload]',
  `[src*="127.0.0.1:${port}"]`, `[href*="127.0.0.1:${port}"]`, `[style*="127.0.0.1:${port}"]`,
  '[href^="file:"]', '[src^="file:"]',
].join(',')).length"""


def _check(watched: Watched, where: str, port: int) -> None:
    page = watched.page
    assert page.evaluate(f"typeof window.{FLAG}") == "undefined", where
    assert page.evaluate(PLANTED_ELEMENTS, port) == 0, where


def sign_in(page: Any, url: str, email: str) -> None:
    """Sign in through the login form."""
    page.goto(f"{url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')


def test_no_planted_script_runs_and_nothing_is_fetched_on_any_page(site: HostileSite, browser: Any) -> None:
    port = site.listener.port
    visited = 0
    text_seen = False
    for email, paths in pages_for(site.database, site.planted).items():
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        try:
            watched = _watched(context, site.url)
            sign_in(watched.page, site.url, email)
            for path in paths:
                response = watched.page.goto(f"{site.url}{path}", wait_until="load")
                assert response is not None, (email, path)
                assert response.status < 500, (email, path, response.status)
                _check(watched, f"{email} {path}", port)
                text_seen = text_seen or f"<script>window.{FLAG}" in watched.page.inner_text("body")
                visited += 1
            assert watched.dialogs == [], watched.dialogs
            assert watched.outside == [], watched.outside
        finally:
            context.close()
    assert text_seen, "no page showed the planted script tag as text"
    time.sleep(0.5)  # a late image or stylesheet request would have reached the listener by now
    assert site.listener.count() == 0
    print(f"hostile e2e: pages rendered in Chromium {visited}, fields {len(site.planted.fields)}")


@pytest.mark.parametrize("phase", ["pre", "post"])
def test_a_hostile_survey_comment_and_goals_stay_text_on_every_survey_step(
    site: HostileSite, browser: Any, phase: str
) -> None:
    port = site.listener.port
    strings = site.planted.strings
    comment = strings["script"] + strings["img"] + strings["css-import"] + strings["attribute"]
    with site.database.unit_of_work() as session:
        _invitation, raw = create_link_invitation(
            session, appointment_id=site.planted.appointment_ids[0], created_by_id=None, phase=phase
        )
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True)
    typed = 0
    try:
        watched = _watched(context, site.url)
        page = watched.page
        page.goto(f"{site.url}/s/{raw}")
        _check(watched, "survey step 1", port)
        shown = [page.inner_text("body")]
        steps = 1
        while page.locator('button[name="action"][value="next"]').count():
            for name in page.eval_on_selector_all('input[type="radio"]', "els => [...new Set(els.map(e => e.name))]"):
                # The second choice: above 0 on a risk item, so the (planted) crisis information shows.
                page.locator(f'label.tap:has(input[name="{name}"])').nth(1).click()
            for area in page.locator("textarea").all():
                area.fill(comment)
                typed += 1
            with page.expect_navigation():
                page.click('button[name="action"][value="next"]')
            steps += 1
            _check(watched, f"survey step {steps}", port)
            shown.append(page.inner_text("body"))
        assert watched.dialogs == [], watched.dialogs
        assert watched.outside == [], watched.outside
        if phase == "pre":
            # The planted goal (and the planted crisis heading after the risk answer) were shown, as text.
            assert strings["script"] in "\n".join(shown)
        else:
            assert typed >= 1, "the partnership check had no free-text comment to type into"
    finally:
        context.close()
    time.sleep(0.5)
    assert site.listener.count() == 0
    print(f"hostile e2e: survey ({phase}) steps rendered {steps}, comments typed {typed}")
