"""The survey on a 390-px phone: no sideways scrolling on any step, finished by tapping, screenshots of each step."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from services.db import utcnow
from services.measures import load_instrument
from services.surveys.invitations import create_kiosk_invitation
from tests.e2e.conftest import LiveServer, make_survey_link
from tests.factories import make_appointment, make_client, make_episode, make_user

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def fits(page: Any) -> None:
    """The page is no wider than the phone."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width}px wide"
    assert page.evaluate(NO_SIDEWAYS_SCROLL)


def tap_answers(page: Any, values: dict[str, int]) -> None:
    """Tap the target of each answer (by item id and value)."""
    for item_id, value in values.items():
        page.tap(f'label.tap:has(input[name="{item_id}"][value="{value}"])')
        assert page.is_checked(f'input[name="{item_id}"][value="{value}"]')


def tap_and_wait(page: Any, selector: str) -> None:
    """Tap a button that submits a form, and wait for the next page."""
    with page.expect_navigation():
        page.tap(selector)


def shot(page: Any, folder: Path, name: str) -> None:
    """A full-page screenshot for people to look at."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_pre_session_survey_on_a_phone_by_tapping(live_server: LiveServer, phone: Any, screenshots: Path) -> None:
    url = make_survey_link(
        live_server, ("PHQ-9", "GAD-7", "GOAL-PROGRESS"), goals=("Sleep through the night", "Go back to choir")
    )
    page = phone
    page.goto(url)
    assert page.text_content("h1") == "Patient Health Questionnaire (PHQ-9)"
    assert page.get_attribute("html", "lang") == "en"
    fits(page)
    shot(page, screenshots, "survey-1-phq9")

    # Next with one answer missing: the error summary names it, takes focus, and the other answers stay.
    phq = {f"phq9_{i}": 1 for i in range(1, 10) if i != 4}
    phq["phq9_9"] = 1
    tap_answers(page, phq)
    tap_and_wait(page, "button[value=next]")
    assert page.is_visible(".error-summary")
    assert "Question 4 needs an answer" in page.text_content(".error-summary")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.is_checked('input[name="phq9_1"][value="1"]')
    fits(page)
    shot(page, screenshots, "survey-1-phq9-missing-answer")
    page.click(".error-summary a")
    assert page.evaluate("document.activeElement.id") == "phq9_4-0"
    tap_answers(page, {"phq9_4": 2})
    tap_and_wait(page, "button[value=next]")

    assert page.text_content(".progress-label") == "Step 2 of 3"
    fits(page)
    shot(page, screenshots, "survey-2-gad7")
    tap_answers(page, {item.id: 1 for item in load_instrument("GAD-7").items if item.required})
    tap_and_wait(page, "button[value=next]")

    assert page.text_content(".progress-label") == "Step 3 of 3"
    assert "Go back to choir" in page.text_content("form")
    fits(page)
    shot(page, screenshots, "survey-3-goals")
    tap_answers(page, {"goal_1": 3, "goal_2": 10})
    tap_and_wait(page, "button[value=next]")

    assert page.text_content("h1") == "Thank you, Alexa."
    assert page.is_visible(".crisis-strong")  # item 9 was answered above 0
    fits(page)
    shot(page, screenshots, "survey-4-thank-you-with-crisis-information")


def test_partnership_check_in_spanish_on_a_phone(live_server: LiveServer, phone: Any, screenshots: Path) -> None:
    url = make_survey_link(live_server, ("PARTNERSHIP-CHECK",), language="es")
    page = phone
    page.goto(url)
    assert page.get_attribute("html", "lang") == "es"
    assert page.text_content("h1") == "Revisión de nuestra colaboración"
    fits(page)
    shot(page, screenshots, "survey-partnership-check-es")
    tap_answers(
        page,
        {
            "pc_rapport": 9,
            "pc_mutual_goals": 8,
            "pc_realistic_goals": 10,
            "pc_shared_responsibility": 0,
            "pc_tension": 1,
        },
    )
    page.fill("textarea[name=pc_comment]", "Más tiempo para las tareas")
    tap_and_wait(page, "button[value=next]")
    assert page.text_content("h1") == "Gracias, Alexa."
    fits(page)
    shot(page, screenshots, "survey-partnership-check-es-thank-you")


def test_language_switch_keeps_the_answers(live_server: LiveServer, phone: Any) -> None:
    page = phone
    page.goto(make_survey_link(live_server, ("GAD-7",)))
    tap_answers(page, {"gad7_1": 3})
    tap_and_wait(page, "button[value='lang:es']")
    assert page.get_attribute("html", "lang") == "es"
    assert page.is_checked('input[name="gad7_1"][value="3"]')


def test_keyboard_focus_is_visible_on_the_tap_targets(live_server: LiveServer, phone: Any, screenshots: Path) -> None:
    page = phone
    page.goto(make_survey_link(live_server, ("PARTNERSHIP-CHECK",)))
    page.focus('input[name="pc_rapport"][value="0"]')
    page.keyboard.press("ArrowRight")
    assert page.is_checked('input[name="pc_rapport"][value="1"]')
    outline = page.evaluate(
        "getComputedStyle(document.querySelector('input[name=pc_rapport][value=\"1\"] + span')).outlineStyle"
    )
    assert outline == "solid"
    shot(page, screenshots, "survey-keyboard-focus")


def test_closed_link_pages_fit_a_phone(live_server: LiveServer, phone: Any, screenshots: Path) -> None:
    page = phone
    response = page.goto(f"{live_server.url}/s/{'A' * 43}")
    assert response.status == 404
    fits(page)
    shot(page, screenshots, "survey-link-not-valid")


def test_kiosk_on_a_tablet(live_server: LiveServer, browser: Any, screenshots: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    with live_server.database.unit_of_work() as session:
        desk = make_user(session, role="front_desk")
        email = desk.email
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct horse battery")
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.goto(f"{live_server.url}/kiosk/pair")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/kiosk")
    fits(page)
    shot(page, screenshots, "kiosk-locked-waiting")
    with live_server.database.unit_of_work() as session:
        person = make_client(session, first_name="Kiosa")
        episode = make_episode(session, client=person, goals=[])
        appointment = make_appointment(session, episode=episode, starts_at=utcnow() - timedelta(minutes=55))
        appointment.checked_in_at = utcnow() - timedelta(minutes=60)
        session.flush()
        create_kiosk_invitation(session, appointment_id=appointment.id, created_by_id=None, phase="post")
    page.goto(f"{live_server.url}/kiosk")
    fits(page)
    shot(page, screenshots, "kiosk-locked-ready")
    tap_and_wait(page, "button.kiosk-start")
    assert "Hello Kiosa." in page.text_content("main")
    timeout = page.locator("script[data-seconds]")  # the quiet spell's timer (a meta refresh only without JS)
    assert (timeout.get_attribute("data-seconds"), timeout.get_attribute("data-url")) == ("180", "/kiosk")
    fits(page)
    shot(page, screenshots, "kiosk-survey")
    tap_answers(page, {"pc_rapport": 7, "pc_mutual_goals": 7, "pc_realistic_goals": 7, "pc_shared_responsibility": 7})
    tap_and_wait(page, "button[value=next]")
    assert page.text_content("h1") == "Thank you, Kiosa."
    shot(page, screenshots, "kiosk-thank-you")
    with page.expect_navigation():
        page.click("text=Done")
    assert page.url.endswith("/kiosk")
    assert page.text_content("h1") == "Welcome"
    context.close()
