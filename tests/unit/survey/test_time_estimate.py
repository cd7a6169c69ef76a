"""The survey's time estimate: about five seconds a question, rounded up, the same in the message and on the page."""

from __future__ import annotations

import html as html_lib
import json
import re
from email import message_from_bytes

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database
from services.notifications.delivery import Outcome, deliver_notification
from services.notifications.operations import queue_notification
from services.notifications.templates import render_message
from services.surveys.estimate import question_count, survey_minutes
from tests.unit.survey.helpers import POST, PRE, make_link

LINK = re.compile(r"https?://\S+/s/[A-Za-z0-9_-]+")


@pytest.mark.parametrize(
    ("instruments", "goals", "questions", "minutes"),
    [
        (PRE, ("Sleep", "Choir"), 20, 2),  # PHQ-9 (10 with the difficulty question), GAD-7 (8), two goals
        (PRE, ("Sleep", "  "), 19, 2),  # a blank goal is not asked
        (PRE, (), 18, 2),  # no goals: the goal step is left out
        (POST, (), 7, 1),  # the Partnership Check asks one of its rotating elements
        (("PHQ-9",), (), 10, 1),
        (("CORE-10",), (), 10, 1),
        (("PHQ-9", "GAD-7", "CORE-10", "GOAL-PROGRESS"), ("a", "b", "c"), 31, 3),
    ],
)
def test_minutes_come_from_the_questions_asked(
    instruments: tuple[str, ...], goals: tuple[str, ...], questions: int, minutes: int
) -> None:
    assert question_count(instruments, goals) == questions
    assert survey_minutes(instruments, goals) == minutes


def test_the_message_words_the_minutes_in_each_language() -> None:
    values = {"first_name": "Ola", "practice": "P", "link": "https://x/s/t"}
    assert "It takes about 2 minutes:" in render_message("invitation", {**values, "minutes": 2})[1]
    assert "It takes about a minute:" in render_message("invitation", {**values, "minutes": 1})[1]
    assert "Le llevará unos 3 minutos:" in render_message("invitation", {**values, "minutes": 3}, language="es")[1]
    assert "alrededor de un minuto" in render_message("invitation", {**values, "minutes": 1}, language="es")[1]
    assert "a few minutes" in render_message("invitation", values)[1]  # never a wrong figure


def _delivered(db: Database, settings: Settings, session: Session, link_invitation_id: int, **kw: str) -> str:
    """Send the invitation's message through the real outbox; its text."""
    channel = kw.get("channel", "email")
    row = queue_notification(
        session,
        channel=channel,
        template="invitation",
        to_address="client@example.test" if channel == "email" else "+12025550111",
        context={"invitation_id": link_invitation_id, "language": kw.get("language", "en"), "first_name": "Testa"},
    )
    session.commit()
    assert deliver_notification(db, settings, row.id) is Outcome.SENT
    if channel == "sms":
        return str(json.loads((settings.outbox_dir / f"sms-{row.id:08d}.json").read_text())["text"])
    message = message_from_bytes((settings.outbox_dir / f"email-{row.id:08d}.eml").read_bytes())
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


@pytest.mark.parametrize(
    ("instruments", "language", "channel", "in_message", "on_page"),
    [
        (PRE, "en", "email", "It takes about 2 minutes:", "These questions take about 2 minutes."),
        (POST, "en", "sms", "It takes about a minute:", "These questions take about a minute."),
        (PRE, "es", "email", "Le llevará unos 2 minutos:", "Estas preguntas llevan unos 2 minutos."),
    ],
)
def test_the_message_and_the_first_page_give_the_same_estimate(
    client: FlaskClient,
    session: Session,
    db: Database,
    test_settings: Settings,
    instruments: tuple[str, ...],
    language: str,
    channel: str,
    in_message: str,
    on_page: str,
) -> None:
    link = make_link(session, instruments=instruments, language=language, channel=channel)
    text = _delivered(db, test_settings, session, link.invitation.id, language=language, channel=channel)
    assert in_message in text
    sent_link = LINK.search(text)
    assert sent_link, text
    page = client.get("/s/" + sent_link.group(0).split("/s/", 1)[1])
    assert page.status_code == 200
    assert on_page in html_lib.unescape(page.get_data(as_text=True))
