"""Pressing Next with nothing answered: one summary at the top linking to the first unanswered question."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.unit.survey.helpers import answers_for, make_link, post_step


def _summary(html: str) -> str:
    match = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert match, "no error summary"
    return match.group(0)


@pytest.mark.parametrize(
    ("lang", "line", "title"),
    [
        (
            "en",
            "9 questions need an answer. Start with question 1: “Little interest or pleasure in doing things”",
            "<title>Please check your answers: Step 1 of 3",
        ),
        (
            "es",
            "9 preguntas necesitan respuesta. Empiece por la pregunta 1: «Poco interés o placer en hacer cosas»",
            "<title>Revise sus respuestas: Paso 1 de 3",
        ),
    ],
)
def test_an_empty_next_gives_one_summary_linking_to_the_first_question(
    client: FlaskClient, session: Session, lang: str, line: str, title: str
) -> None:
    link = make_link(session, language=lang)
    page = client.get(link.path).get_data(as_text=True)
    response = post_step(client, link, page, {}, lang=lang)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    summary = _summary(html)
    assert 'role="alert"' in summary
    assert "autofocus" in summary
    assert 'tabindex="-1"' in summary
    assert summary.count("<li>") == 1
    assert f'<li><a href="#phq9_1-0">{line}</a></li>' in summary
    assert html.index(summary) < html.index('name="phq9_1"')
    assert title in html
    # Each question is marked quietly (and tied to its note for screen readers), not with nine red messages.
    assert html.count('class="field-error field-missing"') == 9
    assert html.count('aria-invalid="true"') == 9 * 4  # every option of the nine questions
    assert 'aria-describedby="err-phq9_9"' in html
    assert "Please choose an answer." not in html


def test_one_missing_answer_is_named_with_its_question(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    page = client.get(link.path).get_data(as_text=True)
    answers = answers_for("PHQ-9")
    del answers["phq9_5"]
    html = post_step(client, link, page, answers).get_data(as_text=True)
    summary = _summary(html)
    assert summary.count("<li>") == 1
    assert '<a href="#phq9_5-0">Question 5 needs an answer: “Poor appetite or overeating”</a>' in summary


def test_a_wrong_answer_is_listed_beside_the_missing_ones(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    page = client.get(link.path).get_data(as_text=True)
    html = post_step(client, link, page, {"phq9_1": "9"}).get_data(as_text=True)
    summary = _summary(html)
    assert summary.count("<li>") == 2
    assert "8 questions need an answer. Start with question 2" in summary
    assert 'href="#phq9_1-0">Question 1: please choose one of the answers shown' in summary
    assert 'class="field-error" id="err-phq9_1"' in html  # a wrong answer keeps the strong marking
