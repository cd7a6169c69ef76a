"""Crisis information on the survey: in the client's language, with tel: links, on the page right after a risk answer
and on the thank-you page; never for an answer of 0, never on a used link opened later;
the same on every POST to a used link."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.practice.crisis import DEMO_CRISIS_INFO, KEY
from services.practice.settings import set_setting
from tests.factories import make_user
from tests.unit.survey.helpers import POST, answers_for, make_link, post_step
from tests.unit.survey.test_kiosk import hand_out, pair, post, start

EN_CRISIS_LINE = 'href="tel:+12025550143"'
ES_CRISIS_LINE = 'href="tel:+12025550188"'
EMERGENCY = 'href="tel:+12025550101"'


@pytest.fixture
def crisis_numbers(session: Session) -> None:
    """The practice's crisis information with synthetic numbers in English and Spanish (as the demo seeds it)."""
    admin = make_user(session, role="admin")
    set_setting(session, KEY, DEMO_CRISIS_INFO, user_id=admin.id)
    session.commit()


def _box(html: str) -> str:
    match = re.search(r'<section class="crisis crisis-strong" role="alert".*?</section>', html, re.S)
    assert match, "no crisis box on the page"
    return match.group(0)


@pytest.mark.usefixtures("crisis_numbers")
def test_english_risk_answer_shows_the_crisis_box_on_the_very_next_page_and_on_thank_you(
    client: FlaskClient, session: Session
) -> None:
    link = make_link(session)
    first = client.get(link.path).get_data(as_text=True)
    assert "crisis-strong" not in first
    step2 = post_step(client, link, first, answers_for("PHQ-9", phq9_9="2"))
    html = step2.get_data(as_text=True)
    assert step2.status_code == 200
    assert "Step 2 of 3" in html
    box = _box(html)
    # Before the rest of the survey: the box comes ahead of the next questions.
    assert html.index(box) < html.index('name="gad7_1"')
    assert "If you need help now" in box
    assert "call the practice&#39;s crisis line, day or night" in box
    assert EMERGENCY in box
    assert EN_CRISIS_LINE in box
    assert "Crisis line, 24 hours (demo number)" in box
    assert "Nobody watches these answers as they arrive" in box
    assert "carry on with the questions below" in box
    # It stays while the answer holds, and again on the thank-you page.
    step3 = post_step(client, link, html, answers_for("GAD-7")).get_data(as_text=True)
    assert EN_CRISIS_LINE in _box(step3)
    thanks = post_step(client, link, step3, answers_for("GOAL-PROGRESS"))
    assert thanks.status_code == 200
    done = thanks.get_data(as_text=True)
    assert "Thank you, Testa." in done
    box = _box(done)
    assert EMERGENCY in box
    assert EN_CRISIS_LINE in box
    assert "Nobody watches these answers as they arrive" in box


@pytest.mark.usefixtures("crisis_numbers")
def test_spanish_risk_answer_shows_the_spanish_crisis_box_with_its_numbers(
    client: FlaskClient, session: Session
) -> None:
    link = make_link(session, language="es")
    first = client.get(link.path).get_data(as_text=True)
    html = post_step(client, link, first, answers_for("PHQ-9", phq9_9="1"), lang="es").get_data(as_text=True)
    assert "Paso 2 de 3" in html
    box = _box(html)
    assert "Si necesita ayuda ahora" in box
    assert "línea de crisis de la consulta" in box
    assert "Línea de crisis en español, 24 horas (número de demostración)" in box
    assert ES_CRISIS_LINE in box
    assert EMERGENCY in box
    assert "Nadie" in box  # the not-watched sentence, in Spanish
    for english in ("If you need help now", "Nobody watches", "Crisis line", "carry on"):
        assert english not in box
    html = post_step(client, link, html, answers_for("GAD-7"), lang="es").get_data(as_text=True)
    done = post_step(client, link, html, answers_for("GOAL-PROGRESS"), lang="es").get_data(as_text=True)
    assert "Gracias, Testa." in done
    box = _box(done)
    assert "Si necesita ayuda ahora" in box
    assert ES_CRISIS_LINE in box
    assert "If you need help now" not in done


@pytest.mark.usefixtures("crisis_numbers")
def test_switching_to_spanish_after_a_risk_answer_switches_the_box(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    first = client.get(link.path).get_data(as_text=True)
    html = post_step(client, link, first, answers_for("PHQ-9", phq9_9="3")).get_data(as_text=True)
    switched = post_step(client, link, html, {}, action="lang:es").get_data(as_text=True)
    assert "Si necesita ayuda ahora" in _box(switched)
    assert ES_CRISIS_LINE in switched


@pytest.mark.usefixtures("crisis_numbers")
@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_answer_of_zero_shows_no_crisis_box(client: FlaskClient, session: Session, lang: str) -> None:
    link = make_link(session, language=lang)
    html = client.get(link.path).get_data(as_text=True)
    for code in ("PHQ-9", "GAD-7", "GOAL-PROGRESS"):
        response = post_step(client, link, html, answers_for(code, phq9_9="0", phq9_1="3"), lang=lang)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "crisis-strong" not in html
        assert "tel:" not in html
    assert ("Gracias" if lang == "es" else "Thank you") in html


@pytest.mark.usefixtures("crisis_numbers")
def test_going_back_and_answering_zero_takes_the_box_away(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    first = client.get(link.path).get_data(as_text=True)
    html = post_step(client, link, first, answers_for("PHQ-9", phq9_9="1")).get_data(as_text=True)
    back = post_step(client, link, html, {}, action="back").get_data(as_text=True)
    assert "crisis-strong" in back  # the answer still holds on the page it was given
    html = post_step(client, link, back, answers_for("PHQ-9", phq9_9="0")).get_data(as_text=True)
    assert "Step 2 of 3" in html
    assert "crisis-strong" not in html


@pytest.mark.usefixtures("crisis_numbers")
def test_a_risk_answer_on_the_last_step_shows_the_box_on_thank_you(client: FlaskClient, session: Session) -> None:
    link = make_link(session, instruments=("PHQ-9",))
    first = client.get(link.path).get_data(as_text=True)
    done = post_step(client, link, first, answers_for("PHQ-9", phq9_9="1")).get_data(as_text=True)
    assert "Thank you, Testa." in done
    assert EN_CRISIS_LINE in _box(done)


@pytest.mark.usefixtures("crisis_numbers")
@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_used_link_page_never_shows_the_crisis_box(client: FlaskClient, session: Session, lang: str) -> None:
    link = make_link(session, language=lang, instruments=("PHQ-9",))
    first = client.get(link.path).get_data(as_text=True)
    done = post_step(client, link, first, answers_for("PHQ-9", phq9_9="2"), lang=lang).get_data(as_text=True)
    assert "crisis-strong" in done
    for path in (link.path, f"{link.path}?lang=en", f"{link.path}?lang=es"):
        again = client.get(path)
        assert again.status_code == 410
        html = again.get_data(as_text=True)
        assert "crisis-strong" not in html
        assert "tel:" not in html
    # A POST (a stale, replayed or forged form) gets one page whatever it carries: the help, for everyone.
    blind = client.post(link.path, data={"action": "next"})
    assert blind.status_code == 410
    assert "crisis-strong" in blind.get_data(as_text=True)


@pytest.mark.usefixtures("crisis_numbers")
def test_a_used_links_page_is_identical_whatever_was_answered(client: FlaskClient, session: Session) -> None:
    pages = {}
    for risk in ("0", "2"):
        link = make_link(session, instruments=("PHQ-9", "GAD-7"))
        first = client.get(link.path).get_data(as_text=True)
        second = post_step(client, link, first, answers_for("PHQ-9", phq9_9=risk)).get_data(as_text=True)
        assert post_step(client, link, second, answers_for("GAD-7")).status_code == 200
        # Whoever holds the phone later: the link opened again, and the last form re-posted from the history.
        again = client.get(link.path)
        replay = post_step(client, link, second, answers_for("GAD-7"))
        assert (again.status_code, replay.status_code) == (410, 410)
        pages[risk] = tuple(re.sub(r"/s/[^\"'?]+", "/s/TOKEN", r.get_data(as_text=True)) for r in (again, replay))
    assert pages["0"] == pages["2"]


@pytest.mark.usefixtures("crisis_numbers")
def test_pressing_send_twice_after_a_risk_answer_still_shows_help(client: FlaskClient, session: Session) -> None:
    link = make_link(session, instruments=("PHQ-9",))
    first = client.get(link.path).get_data(as_text=True)
    assert post_step(client, link, first, answers_for("PHQ-9", phq9_9="1")).status_code == 200
    second = post_step(client, link, first, answers_for("PHQ-9", phq9_9="1"))
    assert second.status_code == 410
    html = second.get_data(as_text=True)
    assert "These answers were already sent" in html
    assert EN_CRISIS_LINE in _box(html)
    calm = post_step(client, link, first, answers_for("PHQ-9", phq9_9="0"))
    assert calm.status_code == 410
    assert _box(calm.get_data(as_text=True)) == _box(html)  # the same page whatever this POST carries


def test_without_practice_numbers_the_box_shows_the_default_text(client: FlaskClient, session: Session) -> None:
    link = make_link(session, language="es")
    first = client.get(link.path).get_data(as_text=True)
    html = post_step(client, link, first, answers_for("PHQ-9", phq9_9="1"), lang="es").get_data(as_text=True)
    box = _box(html)
    assert "Si necesita ayuda ahora" in box
    assert "número de emergencias de su zona" in box
    assert "tel:" not in box


@pytest.mark.usefixtures("crisis_numbers")
def test_the_kiosk_shows_the_box_on_the_next_page_and_on_thank_you(app: Flask, session: Session) -> None:
    hand_out(session)
    tablet = pair(app, session)
    html = start(tablet)
    status, html = post(tablet, html, answers_for("PHQ-9", phq9_9="1"))
    assert status == 200
    assert EN_CRISIS_LINE in _box(html)
    assert 'name="gad7_1"' in html
    status, html = post(tablet, html, answers_for("GAD-7"))
    status, done = post(tablet, html, answers_for("GOAL-PROGRESS", goal_2=""))
    assert status == 200
    assert "Thank you, Kiosa." in done
    assert EN_CRISIS_LINE in _box(done)
    assert 'content="120;url=/kiosk"' in done  # more time to read it before the screen locks again


def test_partnership_check_alone_has_no_risk_item_and_no_box(client: FlaskClient, session: Session) -> None:
    link = make_link(session, instruments=POST)
    first = client.get(link.path).get_data(as_text=True)
    done = post_step(client, link, first, answers_for("PARTNERSHIP-CHECK")).get_data(as_text=True)
    assert "crisis-strong" not in done
