"""Feedback in the room, in a real browser: the clinician opens today's first brief, marks it discussed, opens the
view shared with the client and revises a goal with them; the supervisor's feedback-viewed figure changes; the
monthly PDF carries the "Was the feedback used?" section."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reports.assemble import render_monthly_report
from services.briefs.models import BriefDiscussion, GoalRevision
from services.clients.models import Episode
from services.db import utcnow
from services.reporting.periods import ReportScope, period_containing
from services.surveys.administrations import record_administration
from tests.e2e.conftest import LiveServer
from tests.factories import PASSWORD, make_appointment, make_client, make_episode, make_user
from tests.unit.alerts.series import PC_ITEMS, phq9_answers


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    """A desktop browser window with its own cookies."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Any, url: str, email: str) -> None:
    """Sign in through the login form."""
    page.context.clear_cookies()
    page.goto(f"{url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')


def _later_today(server: LiveServer) -> datetime:
    """A moment later today in the practice's zone (at most 40 minutes ahead, never past its midnight)."""
    tz = server.settings.tz
    now = utcnow()
    end_of_day = datetime.combine(now.astimezone(tz).date(), time(23, 59), tzinfo=tz).astimezone(UTC)
    return min(now + timedelta(minutes=40), end_of_day)


def _set_up(server: LiveServer) -> dict[str, Any]:
    """A clinician and supervisor of one team; a client with four weeks of answers and a session later today."""
    with server.database.unit_of_work() as session:
        clinician = make_user(session, role="clinician", team="Team Room E2E", name="Robin Room")
        supervisor = make_user(session, role="supervisor", team="Team Room E2E")
        episode = make_episode(session, clinician=clinician, client=make_client(session, first_name="Noor"))
        episode.goals = ["Sleep through the night", "Walk every day"]
        today = _later_today(server)
        for weeks_ago, phq in ((3, 18), (2, 16), (1, 15)):
            held = make_appointment(
                session, episode=episode, starts_at=today - timedelta(weeks=weeks_ago), status="completed"
            )
            record_administration(
                session,
                episode_id=episode.id,
                instrument_code="PHQ-9",
                answers=phq9_answers(phq),
                completed_at=held.starts_at - timedelta(hours=1),
            )
            record_administration(
                session,
                episode_id=episode.id,
                instrument_code="PARTNERSHIP-CHECK",
                answers={**dict(zip(PC_ITEMS, (9, 9 if weeks_ago > 1 else 5, 8, 9), strict=True)), "pc_tension": 0},
                completed_at=held.ends_at + timedelta(minutes=5),
            )
        appointment = make_appointment(session, episode=episode, starts_at=today)
        record_administration(  # this morning's answer: the one the supervisor's figure follows
            session,
            episode_id=episode.id,
            instrument_code="PHQ-9",
            answers=phq9_answers(9),
            completed_at=utcnow() - timedelta(minutes=5),
        )
        return {
            "clinician": clinician.email,
            "supervisor": supervisor.email,
            "clinician_id": clinician.id,
            "episode_id": episode.id,
            "client_id": episode.client_id,
            "appointment_id": appointment.id,
        }


def _viewed_cell(page: Any, clinician_id: int) -> str:
    return str(page.locator(f'tr[data-use="{clinician_id}"] td[data-figure="viewed"]').inner_text()).strip()


def test_brief_discussed_shared_view_and_a_goal_revised(
    live_server: LiveServer, desk: Any, screenshots: Path, tmp_path: Path
) -> None:
    world = _set_up(live_server)
    url = live_server.url
    # The supervisor first: this morning's answer is not opened yet.
    sign_in(desk, url, world["supervisor"])
    desk.goto(f"{url}/supervisor/")
    assert _viewed_cell(desk, world["clinician_id"]) == "\u2013"

    # The clinician: today's first session, its brief, "discussed".
    sign_in(desk, url, world["clinician"])
    assert "Today" in desk.locator("#today-heading").inner_text()
    with desk.expect_navigation():
        desk.locator(".today-item a", has_text="Open the brief").first.click()
    assert desk.url.endswith(f"/clinician/sessions/{world['appointment_id']}/brief")
    assert "Better, by more than the usual ups and downs" in desk.content()  # PHQ-9 15 -> 9
    assert desk.locator(".below-usual").count() == 1  # mutual goals below the client's usual level
    desk.screenshot(path=str(screenshots / "clinician-brief.png"), full_page=True)
    desk.fill("#note", "Agreed to look at the goals together")
    with desk.expect_navigation():
        desk.click('button:has-text("Discussed with the client")')
    assert "Discussed on" in desk.content()

    # The view shared with the client: the goals revised together.
    with desk.expect_navigation():
        desk.click("text=Open the view to share with the client")
    assert desk.url.endswith(f"/clinician/clients/{world['client_id']}/together")
    assert "Our work together, Noor" in desk.content()
    desk.click("text=Change our goals together")
    desk.fill("#goal_1", "Sleep through most nights")
    with desk.expect_navigation():
        desk.click('button:has-text("Save our goals")')
    assert "Your goals are saved." in desk.content()
    desk.click("text=How our goals have changed")
    assert desk.locator(".together-history").inner_text().count("Sleep through the night") == 1
    desk.screenshot(path=str(screenshots / "clinician-together.png"), full_page=True)

    with live_server.database.unit_of_work() as session:
        assert session.scalar(select(BriefDiscussion.note)) == "Agreed to look at the goals together"
        episode = session.get(Episode, world["episode_id"])
        assert episode is not None
        assert episode.goals == ["Sleep through most nights", "Walk every day"]
        assert session.scalar(select(GoalRevision.version).where(GoalRevision.episode_id == episode.id)) == 1

    # The supervisor again: the brief was opened before the session, so the figure reads 1 of 1.
    sign_in(desk, url, world["supervisor"])
    desk.goto(f"{url}/supervisor/")
    assert _viewed_cell(desk, world["clinician_id"]) == "1 of 1 (100%)"

    # The month's PDF has the section, with the clinician's row.
    period = period_containing(utcnow(), live_server.settings.tz)
    with live_server.database.session() as session:
        rendered = render_monthly_report(session, live_server.settings, ReportScope("practice"), period)
    pdf = tmp_path / "month.pdf"
    pdf.write_bytes(rendered.pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    start = text.index("Was the feedback used?")
    section = " ".join(text[start : text.index("By team and clinician", start)].split())
    assert "Feedback viewed before the next session" in section
    assert "answers with a next session" in section
