"""Accessibility: axe-core on the survey, the thank-you page, the kiosk and each role's main pages, and keyboard walks.

axe-core is vendored in tests/e2e/vendor/ (see its README) and injected into each page with Playwright; a serious or
critical violation fails the test. The counts by impact are printed per page (run with -s). The survey and the
clinician's rating form are then filled in and submitted with the keyboard alone, checking each focused control shows
its focus.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from services import schema
from services.accounts.models import User
from services.clients.models import Episode
from services.db import Database, utcnow
from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
from services.surveys.invitations import create_kiosk_invitation
from tests.conftest import TEST_SECRET, build_settings
from tests.e2e.conftest import PHONE, free_port, make_survey_link
from tests.factories import make_appointment, make_client, make_episode

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
BLOCKING = ("serious", "critical")
HOMES = {
    "front_desk": "/frontdesk/",
    "clinician": "/clinician/",
    "supervisor": "/supervisor/",
    "manager": "/manager/",
    "admin": "/admin/",
}
# True when the focused element (or, for the survey's and rating form's tap targets, the box drawn next to the
# visually hidden radio) shows an outline or a focus ring.
FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return false;
  const target = el.matches('label.tap input') && el.nextElementSibling ? el.nextElementSibling : el;
  const style = getComputedStyle(target);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  return outline || (style.boxShadow !== 'none' && style.boxShadow !== '');
}"""
MAX_DETAIL_PAGES = 12
NAV_LINKS = "header nav a[href^='/'], nav.subnav a[href^='/']"  # the site's and the role's own navigation
RADIO_GROUPS = "els => [...new Set(els.map(e => e.name))]"


@dataclass
class Site:
    """The app over HTTP on a local port, with a small demo practice in its own database."""

    url: str
    database: Database


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A threaded werkzeug server on 127.0.0.1 over a freshly seeded demo practice (its own SQLite file)."""
    from web.app import create_app

    var_dir = tmp_path_factory.mktemp("a11y-var")
    port = free_port()
    settings = build_settings(
        var_dir, base_url=f"http://127.0.0.1:{port}", token_rate_limit="10000 per minute", broker_url="memory://"
    )
    database = Database(settings.database_url)
    schema.upgrade(database.engine)
    seed_demo(database, clients=12, months=2)
    app = create_app(settings=settings, database=database)
    server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="a11y-server", daemon=True)
    thread.start()
    yield Site(url=settings.base_url, database=database)
    server.shutdown()
    thread.join(timeout=5)
    database.dispose()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    """A desktop window that lets the test inject axe despite the page's content security policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """A 390-px touch screen that lets the test inject axe."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def axe(page: Any, label: str) -> list[dict[str, Any]]:
    """Run axe-core on the page as it stands, print its counts by impact, return the serious and critical ones."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = result["violations"]
    impacts = Counter(v["impact"] for v in violations for _ in v["nodes"])
    counts = ", ".join(f"{impact} {impacts[impact]}" for impact in ("critical", "serious", "moderate", "minor"))
    others = sorted({v["id"] for v in violations if v["impact"] not in BLOCKING})
    rules = f"  ({' '.join(others)})" if others else ""
    where = re.sub(r"^s/[\w-]+", "s/<link>", page.url.split("/", 3)[-1])[:36]
    print(f"axe {label:<40} {where:<36} {counts}{rules}")
    return [
        {"rule": v["id"], "impact": v["impact"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]][:5]}
        for v in violations
        if v["impact"] in BLOCKING
    ]


def sign_in(page: Any, url: str, email: str) -> None:
    """Sign in through the login form."""
    page.goto(f"{url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')


def answer_by_mouse(page: Any, value_index: int = 0) -> None:
    """Answer every radio group on the step (its first or last choice)."""
    for name in page.eval_on_selector_all('input[type="radio"]', RADIO_GROUPS):
        page.locator(f'label.tap:has(input[name="{name}"])').nth(value_index).click()


@pytest.mark.parametrize("role", list(HOMES))
def test_each_roles_main_pages_have_no_serious_violation(site: Site, desk: Any, role: str) -> None:
    sign_in(desk, site.url, DEMO_LOGINS[role])
    assert desk.url == f"{site.url}{HOMES[role]}"
    links = desk.eval_on_selector_all(NAV_LINKS, "els => els.map(e => e.href)")
    pages = [desk.url] + [
        href for href in links if not href.rstrip("/").endswith(site.url.split("//")[1]) and href != desk.url
    ]
    failures = {}
    seen_shapes: set[str] = set()
    details: list[str] = []
    for url in dict.fromkeys(pages):
        response = desk.goto(url)
        assert response is not None
        assert response.status == 200, url
        if found := axe(desk, f"{role} {url.removeprefix(site.url)}"):
            failures[url] = found
        # One page of each kind the main page links to (a client, an alert, a user...), ids and queries aside.
        for href in desk.eval_on_selector_all("main a[href^='/']", "els => els.map(e => e.href)"):
            shape = re.sub(r"\d+", "N", href.split("?")[0].split("#")[0])
            if shape not in seen_shapes and href not in pages:
                seen_shapes.add(shape)
                details.append(href)
    for url in details[:MAX_DETAIL_PAGES]:
        head = desk.request.get(url, max_redirects=0)
        if head.status != 200 or not head.headers.get("content-type", "").startswith("text/html"):
            continue  # an export, a PDF or a redirect: nothing for axe
        desk.goto(url)
        if found := axe(desk, f"{role} {url.removeprefix(site.url)}"):
            failures[url] = found
    assert failures == {}


def test_login_and_clinician_detail_pages_have_no_serious_violation(site: Site, desk: Any) -> None:
    failures = {}
    desk.goto(f"{site.url}/login")
    if found := axe(desk, "anonymous login"):
        failures["login"] = found
    sign_in(desk, site.url, DEMO_LOGINS["clinician"])
    for link in ("a[href*='/chart']", "a[href*='/alerts/']"):
        desk.goto(f"{site.url}/clinician/")
        candidates = desk.locator(f"main {link}")
        if candidates.count() == 0:
            desk.goto(f"{site.url}/clinician/alerts")
            candidates = desk.locator(f"main {link}")
        if candidates.count() == 0:
            continue
        with desk.expect_navigation():
            candidates.first.click()
        if found := axe(desk, f"clinician {link}"):
            failures[desk.url] = found
    desk.goto(f"{site.url}/clinician/sessions/{_unrated_session(site)}/partnership")
    assert desk.locator("form.rating-form").count() == 1
    if found := axe(desk, "clinician rating form"):
        failures[desk.url] = found
    # A client's brief (from the chart) and the view shared with the client (large type, the client's language).
    desk.goto(f"{site.url}/clinician/")
    with desk.expect_navigation():
        desk.locator("main a[href*='/chart']").first.click()
    with desk.expect_navigation():
        desk.locator("main a[href$='/brief']").first.click()
    assert "/brief" in desk.url
    if found := axe(desk, "clinician brief"):
        failures[desk.url] = found
    with desk.expect_navigation():
        desk.locator("main a[href$='/together']").first.click()
    assert desk.url.endswith("/together")
    if found := axe(desk, "clinician shared view"):
        failures[desk.url] = found
    assert failures == {}


def test_survey_steps_and_thank_you_have_no_serious_violation(site: Site, phone_page: Any) -> None:
    page = phone_page
    page.goto(make_survey_link(site, ("PHQ-9", "GAD-7", "GOAL-PROGRESS"), goals=("Sleep through the night",)))
    failures = {}
    if found := axe(page, "survey step 1"):
        failures["step 1"] = found
    with page.expect_navigation():  # Next with nothing answered: the error summary
        page.click('button[name="action"][value="next"]')
    assert page.is_visible(".error-summary")
    if found := axe(page, "survey step 1 with errors"):
        failures["step 1 with errors"] = found
    step = 1
    while page.locator('button[name="action"][value="next"]').count():
        answer_by_mouse(page, value_index=1 if step == 1 else 0)  # PHQ item 9 above 0: the crisis block shows
        with page.expect_navigation():
            page.click('button[name="action"][value="next"]')
        step += 1
        label = f"survey step {step}" if page.locator('input[name="state"]').count() else "survey thank-you"
        if found := axe(page, label):
            failures[label] = found
    assert page.is_visible(".crisis-strong")
    assert failures == {}


def test_survey_in_spanish_has_no_serious_violation(site: Site, phone_page: Any) -> None:
    phone_page.goto(make_survey_link(site, ("PARTNERSHIP-CHECK",), language="es"))
    assert phone_page.get_attribute("html", "lang") == "es"
    assert axe(phone_page, "survey step 1 (es)") == []
    answer_by_mouse(phone_page)
    with phone_page.expect_navigation():
        phone_page.click('button[name="action"][value="next"]')
    assert axe(phone_page, "survey thank-you (es)") == []


def test_kiosk_screens_have_no_serious_violation(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True, bypass_csp=True)
    page = context.new_page()
    failures = {}
    try:
        sign_in(page, site.url, DEMO_LOGINS["front_desk"])
        page.goto(f"{site.url}/kiosk/pair")
        if found := axe(page, "kiosk pairing"):
            failures["pair"] = found
        with page.expect_navigation():
            page.click("main button[type=submit]")
        assert page.url.endswith("/kiosk")
        if found := axe(page, "kiosk locked"):
            failures["locked"] = found
        with site.database.unit_of_work() as session:
            person = make_client(session, first_name="Kiosa")
            episode = make_episode(session, client=person, goals=[])
            appointment = make_appointment(session, episode=episode, starts_at=utcnow() - timedelta(minutes=55))
            appointment.checked_in_at = utcnow() - timedelta(minutes=60)
            session.flush()
            create_kiosk_invitation(session, appointment_id=appointment.id, created_by_id=None, phase="post")
        page.goto(f"{site.url}/kiosk")
        if found := axe(page, "kiosk ready"):
            failures["ready"] = found
        with page.expect_navigation():
            page.click("button.kiosk-start")
        if found := axe(page, "kiosk survey"):
            failures["survey"] = found
    finally:
        context.close()
    assert failures == {}


def test_kiosk_warns_before_its_quiet_spell_ends_and_gives_more_time(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
    page = context.new_page()
    try:
        page.clock.install()
        sign_in(page, site.url, DEMO_LOGINS["front_desk"])
        page.goto(f"{site.url}/kiosk/pair")
        with page.expect_navigation():
            page.click("main button[type=submit]")
        with site.database.unit_of_work() as session:
            person = make_client(session, first_name="Kiosa")
            episode = make_episode(session, client=person, goals=[])
            appointment = make_appointment(session, episode=episode, starts_at=utcnow() - timedelta(minutes=55))
            appointment.checked_in_at = utcnow() - timedelta(minutes=60)
            session.flush()
            create_kiosk_invitation(session, appointment_id=appointment.id, created_by_id=None, phase="post")
        page.goto(f"{site.url}/kiosk")
        with page.expect_navigation():
            page.click("button.kiosk-start")
        assert page.locator("meta[http-equiv=refresh]").count() == 0  # only inside <noscript>
        warning = page.locator("#kiosk-timeout-warning")
        page.clock.run_for(150_000)
        page.keyboard.press("Tab")  # any key, tap or click starts the quiet spell again
        page.clock.run_for(150_000)
        assert warning.is_hidden()
        page.clock.run_for(15_000)
        assert warning.is_visible()
        assert "20 seconds" in (warning.text_content() or "")
        warning.locator("button").focus()
        page.keyboard.press("Enter")  # "I need more time"
        assert warning.is_hidden()
        page.clock.run_for(159_000)
        assert page.url.endswith("/kiosk/survey")
        page.clock.run_for(2_000)
        assert warning.is_visible()
        with page.expect_navigation():
            page.clock.run_for(21_000)
        assert page.url.endswith("/kiosk")
    finally:
        context.close()


def keyboard_fill(page: Any, submit: str, *, max_presses: int = 400) -> None:
    """Tab through the form, answer each radio group with Space, check focus is shown, then submit with Enter."""
    answered: set[str] = set()
    groups = set(page.eval_on_selector_all(f"{submit} >> xpath=ancestor::form//input[@type='radio']", RADIO_GROUPS))
    assert groups
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " return {tag: e.tagName, type: e.type || '', name: e.name || '', value: e.value || ''}; }"
        )
        if focused["tag"] in ("INPUT", "BUTTON", "TEXTAREA", "SELECT", "A"):
            assert page.evaluate(FOCUS_SHOWN), f"no visible focus on {focused}"
        if focused["type"] == "radio" and focused["name"] not in answered:
            page.keyboard.press("ArrowRight")  # move off the first choice, as a person choosing would
            page.keyboard.press("Space")
            answered.add(focused["name"])
        if answered >= groups and page.evaluate(f"document.activeElement.matches({submit!r})"):
            with page.expect_navigation():
                page.keyboard.press("Enter")
            return
    raise AssertionError(f"the keyboard never reached {submit}; answered {sorted(answered)} of {sorted(groups)}")


def test_survey_by_keyboard_alone(site: Site, phone_page: Any) -> None:
    page = phone_page
    page.goto(make_survey_link(site, ("GAD-7", "PARTNERSHIP-CHECK")))
    steps = 0
    while page.locator('input[name="state"]').count() and steps < 5:
        keyboard_fill(page, 'button[name="action"][value="next"]')
        steps += 1
    assert steps == 2
    assert page.locator("h1").text_content() == "Thank you, Alexa."


def _unrated_session(site: Site) -> int:
    """A past session of the demo clinician that is not yet rated (a fresh one if the demo has none left)."""
    with site.database.unit_of_work() as session:
        me = session.scalars(select(User).where(User.email == DEMO_LOGINS["clinician"])).one()
        episode = session.scalars(
            select(Episode).where(Episode.clinician_id == me.id, Episode.ended_on.is_(None)).order_by(Episode.id)
        ).first()
        assert episode is not None
        appointment = make_appointment(session, episode=episode, starts_at=utcnow() - timedelta(hours=2))
        return int(appointment.id)


def test_rating_form_by_keyboard_alone(site: Site, desk: Any) -> None:
    sign_in(desk, site.url, DEMO_LOGINS["clinician"])
    desk.goto(f"{site.url}/clinician/sessions/{_unrated_session(site)}/partnership")
    assert desk.locator("form.rating-form").count() == 1
    keyboard_fill(desk, 'form.rating-form button[type="submit"]')
    assert "/chart" in desk.url, desk.url


def test_two_step_sign_in_pages_have_no_serious_violation(site: Site, browser: Any) -> None:
    """Enrol from one's settings (QR code, key, confirm, recovery codes), then sign in with a real code."""
    import time

    import pyotp

    from services.accounts.models import TwoFactor
    from services.accounts.two_factor import decrypt_secret
    from tests.factories import PASSWORD, make_user

    with site.database.unit_of_work() as session:
        email = make_user(session, role="clinician", team=None, email="a11y-two-step@example.test").email
    failures = {}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{site.url}/login")
        page.fill('input[name="email"]', email)
        page.fill('input[name="password"]', PASSWORD)
        with page.expect_navigation():
            page.click('button[type="submit"]')
        page.goto(f"{site.url}/settings")
        with page.expect_navigation():
            page.click("main a[href='/settings/two-step']")
        if found := axe(page, "two-step off"):
            failures["off"] = found
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert page.locator("svg.qr-code").count() == 1
        if found := axe(page, "two-step set-up (QR code)"):
            failures["setup"] = found
        with site.database.session() as session:
            user = session.scalars(select(User).where(User.email == email)).one()
            row = session.get(TwoFactor, user.id)
            assert row is not None
            totp = pyotp.TOTP(decrypt_secret(TEST_SECRET, row.secret_encrypted) or "")
        if 30 - time.time() % 30 < 4:
            time.sleep(4.5)
        page.fill('input[name="code"]', totp.now())
        with page.expect_navigation():
            page.click("main form button:has-text('Turn on two-step sign-in')")
        assert page.locator("#recovery-codes li").count() == 10
        if found := axe(page, "two-step recovery codes"):
            failures["codes"] = found
    finally:
        context.close()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{site.url}/login")
        page.fill('input[name="email"]', email)
        page.fill('input[name="password"]', PASSWORD)
        with page.expect_navigation():
            page.click('button[type="submit"]')
        assert page.url == f"{site.url}/login/code"
        assert page.get_attribute('input[name="code"]', "autocomplete") == "one-time-code"
        assert page.get_attribute('input[name="code"]', "inputmode") == "numeric"
        if found := axe(page, "sign-in code step"):
            failures["code step"] = found
        page.goto(f"{site.url}/login/recovery")
        if found := axe(page, "sign-in recovery code step"):
            failures["recovery step"] = found
        page.goto(f"{site.url}/login/code")
        page.fill('input[name="code"]', totp.at(time.time() + 30))  # a later step than the one used to confirm
        with page.expect_navigation():
            page.click('button[type="submit"]')
        assert page.url == f"{site.url}/clinician/"
    finally:
        context.close()
    assert failures == {}
