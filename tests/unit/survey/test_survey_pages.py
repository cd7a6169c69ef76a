"""The survey at /s/<token>: every link state, GET never consumes, steps, validation, language, risk, double submit."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from services.db import utcnow
from services.measures import load_instrument
from services.surveys.models import Invitation
from services.surveys.tokens import new_token
from tests.unit.survey.conftest import Published, administrations_of, count_administrations, invitation_row
from tests.unit.survey.helpers import POST, PRE, Link, answers_for, make_link, post_step, state_of

GREETING = "Hello Testa."


def complete(client: FlaskClient, link: Link, *, goals: int = 2, **overrides: str) -> tuple[str, int]:
    """Answer every step of a pre-session survey; returns the final page and its status."""
    response = client.get(link.path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for code in link.invitation.instruments:
        if 'name="state"' not in html:
            break  # fewer steps than instruments (no goals set)
        item_ids = {item.id for item in load_instrument(code).items}
        page_answers = answers_for(code, goals=goals, **{k: v for k, v in overrides.items() if k in item_ids})
        response = post_step(client, link, html, page_answers)
        html = response.get_data(as_text=True)
    return html, response.status_code


# --- link states --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expires_in", "code", "title"),
    [
        ("sent", timedelta(days=1), 200, "Patient Health Questionnaire (PHQ-9)"),
        ("opened", timedelta(days=1), 200, "Patient Health Questionnaire (PHQ-9)"),
        ("started", timedelta(days=1), 200, "Patient Health Questionnaire (PHQ-9)"),
        ("expired", timedelta(days=-1), 410, "This link has expired"),
        ("sent", timedelta(minutes=-1), 410, "This link has expired"),
        ("completed", timedelta(days=1), 410, "These answers were already sent"),
        ("cancelled", timedelta(days=1), 410, "These questions are no longer needed"),
        ("scheduled", timedelta(days=1), 404, "This link is not valid"),
        ("failed", timedelta(days=1), 404, "This link is not valid"),
    ],
)
def test_each_link_state_gets_its_page_and_status(
    client: FlaskClient, session: Session, status: str, expires_in: timedelta, code: int, title: str
) -> None:
    link = make_link(session, status=status, expires_in=expires_in)
    response = client.get(link.path)
    html = response.get_data(as_text=True)
    assert response.status_code == code
    assert title in html
    assert "Traceback" not in html
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in html


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # one character changed: well-formed, unknown
        lambda raw: raw[:-3],  # truncated
        lambda raw: raw + "x",  # too long
        lambda raw: raw[:20] + "%00" + raw[23:],  # junk in the middle
        lambda raw: raw.swapcase(),  # same letters, other case
    ],
)
def test_unknown_and_tampered_links_get_404(
    client: FlaskClient, session: Session, mangle: Callable[[str], str]
) -> None:
    link = make_link(session)
    response = client.get(f"/s/{mangle(link.raw)}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "This link is not valid" in html
    assert "Traceback" not in html


def test_a_random_token_that_was_never_issued_is_unknown(client: FlaskClient) -> None:
    raw, _digest = new_token()
    response = client.get(f"/s/{raw}")
    assert response.status_code == 404
    assert client.post(f"/s/{raw}", data={"state": "x"}).status_code == 404


@pytest.mark.parametrize("status", ["completed", "cancelled", "expired"])
def test_posting_to_a_closed_link_writes_nothing(client: FlaskClient, session: Session, status: str) -> None:
    link = make_link(session, status=status, instruments=POST)
    response = client.post(link.path, data=answers_for("PARTNERSHIP-CHECK"))
    assert response.status_code == 410
    assert count_administrations(session, link.invitation.id) == 0
    assert invitation_row(session, link.invitation.id).status == status


# --- GET never consumes ---------------------------------------------------------------------------------------


def test_get_never_consumes_and_records_the_first_opening_once(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    assert client.head(link.path).status_code == 200  # a mail scanner's prefetch
    first = invitation_row(session, link.invitation.id)
    assert first.status == "opened"
    opened_at = first.opened_at
    assert opened_at is not None
    for _ in range(3):
        assert client.get(link.path).status_code == 200
    again = invitation_row(session, link.invitation.id)
    assert again.opened_at == opened_at
    assert again.status == "opened"
    assert again.completed_at is None
    assert count_administrations(session, link.invitation.id) == 0
    html, status = complete(client, link)
    assert status == 200
    assert "Thank you, Testa." in html


def test_a_second_link_to_the_same_invitation_works_until_one_submits(client: FlaskClient, session: Session) -> None:
    from services.surveys.invitations import issue_token

    link = make_link(session, instruments=POST)
    reminder_raw = issue_token(session, link.invitation, purpose="reminder")
    session.commit()
    reminder = Link(link.invitation, link.client, link.episode, link.appointment, reminder_raw)
    page = client.get(reminder.path).get_data(as_text=True)
    assert post_step(client, reminder, page, answers_for("PARTNERSHIP-CHECK")).status_code == 200
    assert client.get(link.path).status_code == 410
    assert client.get(reminder.path).status_code == 410


# --- steps, progress, validation ------------------------------------------------------------------------------


def test_one_instrument_per_step_with_progress(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    assert "Step 1 of 3" in html
    assert GREETING in html
    assert link.client.last_name not in html
    assert 'name="phq9_1"' in html
    assert 'name="gad7_1"' not in html
    html = post_step(client, link, html, answers_for("PHQ-9")).get_data(as_text=True)
    assert "Step 2 of 3" in html
    assert 'name="gad7_1"' in html
    assert invitation_row(session, link.invitation.id).status == "started"
    html = post_step(client, link, html, answers_for("GAD-7")).get_data(as_text=True)
    assert "Step 3 of 3" in html
    assert "Send my answers" in html


def test_a_missing_answer_is_named_and_the_other_answers_are_kept(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    answers = answers_for("PHQ-9", phq9_1="2", phq9_2="3")
    del answers["phq9_3"]
    response = post_step(client, link, html, answers)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Please check your answers" in html
    assert "Question 3 needs an answer: “Trouble falling or staying asleep, or sleeping too much”" in html
    assert 'href="#phq9_3-0"' in html  # the summary links to the field
    assert re.search(r'id="phq9_1-2" name="phq9_1" value="2" checked', html)
    assert re.search(r'id="phq9_2-3" name="phq9_2" value="3" checked', html)
    assert 'aria-describedby="err-phq9_3"' in html
    assert "Step 1 of 3" in html
    assert invitation_row(session, link.invitation.id).status == "opened"  # not started: nothing accepted yet
    # Answer the one that was missing: the kept answers travel on.
    fixed = post_step(client, link, html, {**answers, "phq9_3": "1"})
    assert fixed.status_code == 200
    assert "Step 2 of 3" in fixed.get_data(as_text=True)


@pytest.mark.parametrize("value", ["7", "-1", "abc", "1.5", "nan", "1e308", "0" * 40])
def test_an_answer_that_is_not_an_option_is_refused_by_name(client: FlaskClient, session: Session, value: str) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    response = post_step(client, link, html, answers_for("PHQ-9", phq9_4=value))
    assert response.status_code == 422
    assert "Question 4: please choose one of the answers shown: “Feeling tired or having little energy”" in (
        response.get_data(as_text=True)
    )


def test_back_keeps_the_answers_of_both_steps(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    html = post_step(client, link, html, answers_for("PHQ-9", phq9_1="3")).get_data(as_text=True)
    back = post_step(client, link, html, {"gad7_1": "2"}, action="back")
    html = back.get_data(as_text=True)
    assert back.status_code == 200
    assert "Step 1 of 3" in html
    assert re.search(r'name="phq9_1" value="3" checked', html)
    html = post_step(client, link, html, answers_for("PHQ-9", phq9_1="3")).get_data(as_text=True)
    assert re.search(r'name="gad7_1" value="2" checked', html)


def test_a_tampered_or_foreign_progress_field_is_refused(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    other = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    state = state_of(html)
    tampered = client.post(link.path, data={"state": state[:-2] + "xx", **answers_for("PHQ-9")})
    assert tampered.status_code == 400
    assert "We could not read your earlier answers" in tampered.get_data(as_text=True)
    foreign = client.post(other.path, data={"state": state, **answers_for("PHQ-9")})
    assert foreign.status_code == 400
    missing = client.post(link.path, data=answers_for("PHQ-9"))
    assert missing.status_code == 400
    assert count_administrations(session, link.invitation.id) == 0


# --- submission -----------------------------------------------------------------------------------------------


def test_submit_stores_every_step_scored_and_enqueues_evaluation_after_commit(
    client: FlaskClient, session: Session, published: Published
) -> None:
    link = make_link(session)
    html, status = complete(client, link)
    assert status == 200
    assert "Thank you, Testa." in html
    rows = administrations_of(session, link.invitation.id)
    assert [row.instrument_code for row in rows] == list(PRE)
    phq = rows[0]
    assert phq.total == 0
    assert phq.scores["status"] == "complete"
    assert phq.episode_id == link.episode.id
    assert phq.appointment_id == link.appointment.id
    goals = rows[2]
    assert goals.answers == {"goal_1": 5.0, "goal_2": 5.0}
    assert goals.total == 5.0
    invitation = invitation_row(session, link.invitation.id)
    assert invitation.status == "completed"
    assert invitation.completed_at is not None
    assert invitation.started_at is not None
    # One message for the whole submission, naming its administrations in order.
    assert published.calls == [("alerts.evaluate_batch", tuple(row.id for row in rows))]


def test_double_submit_is_harmless(client: FlaskClient, session: Session, published: Published) -> None:
    link = make_link(session, instruments=POST)
    page = client.get(link.path).get_data(as_text=True)
    first = post_step(client, link, page, answers_for("PARTNERSHIP-CHECK"))
    second = post_step(client, link, page, answers_for("PARTNERSHIP-CHECK", pc_rapport="2"))
    assert first.status_code == 200
    assert second.status_code == 410
    assert "These answers were already sent" in second.get_data(as_text=True)
    rows = administrations_of(session, link.invitation.id)
    assert len(rows) == 1
    assert rows[0].answers["pc_rapport"] == 8.0
    assert len(published.calls) == 1


def test_bad_final_answers_write_nothing(client: FlaskClient, session: Session, published: Published) -> None:
    link = make_link(session, instruments=POST)
    page = client.get(link.path).get_data(as_text=True)
    response = post_step(client, link, page, answers_for("PARTNERSHIP-CHECK", pc_rapport="11"))
    assert response.status_code == 422
    assert "Question 1" in response.get_data(as_text=True)
    assert count_administrations(session, link.invitation.id) == 0
    assert invitation_row(session, link.invitation.id).status == "opened"
    assert published.calls == []


def test_a_link_that_expires_mid_survey_is_refused_on_submit(client: FlaskClient, session: Session) -> None:
    link = make_link(session, instruments=POST)
    page = client.get(link.path).get_data(as_text=True)
    session.execute(
        update(Invitation).where(Invitation.id == link.invitation.id).values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    response = post_step(client, link, page, answers_for("PARTNERSHIP-CHECK"))
    assert response.status_code == 410
    assert "This link has expired" in response.get_data(as_text=True)
    assert count_administrations(session, link.invitation.id) == 0


# --- thank-you page and risk ----------------------------------------------------------------------------------


def test_risk_answer_shows_the_practice_crisis_information(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html, status = complete(client, link, phq9_9="1")
    assert status == 200
    assert "If you need help now" in html
    assert 'class="crisis crisis-strong" role="alert"' in html
    assert "call your local emergency number now" in html  # the practice's default text
    assert "Nobody watches these answers as they arrive" in html
    # Opening the used link later never says what was answered (whoever holds the phone).
    again = client.get(link.path)
    assert again.status_code == 410
    assert "crisis-strong" not in again.get_data(as_text=True)


def test_no_risk_no_crisis_box_but_the_not_watched_note(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html, status = complete(client, link, phq9_1="3", phq9_8="3")
    assert status == 200
    assert "call your local emergency number now" not in html
    assert "crisis-strong" not in html
    assert "Nobody watches these answers as they arrive" in html


def test_the_thank_you_page_names_each_client_escaped_and_keeps_risk_apart(
    client: FlaskClient, session: Session
) -> None:
    from tests.factories import make_client

    crisis = "crisis-strong"
    names = ["Ana", '<img src=x onerror="alert(1)">', "Zoë & Co"]
    pages = []
    for index, name in enumerate(names):
        link = make_link(session, client=make_client(session, first_name=name))
        html, status = complete(client, link, phq9_9="1" if index == 1 else "0")
        assert status == 200
        pages.append(html)
    assert "Thank you, Ana." in pages[0]
    assert "Thank you, &lt;img src=x onerror=&#34;alert(1)&#34;&gt;." in pages[1]
    assert "<img src=x" not in pages[1]
    assert "Thank you, Zoë &amp; Co." in pages[2]
    # The page is built once per language and risk, then filled in: nobody sees another client's name or box.
    assert [crisis in html for html in pages] == [False, True, False]
    assert "Ana" not in pages[2]
    assert "Zo" not in pages[0]
    spanish = make_link(session, client=make_client(session, first_name="Ana", language="es"))
    response = client.get(spanish.path)
    for code in ("PHQ-9", "GAD-7", "GOAL-PROGRESS"):
        response = post_step(client, spanish, response.get_data(as_text=True), answers_for(code), lang="es")
    assert "Gracias, Ana." in response.get_data(as_text=True)


# --- language -------------------------------------------------------------------------------------------------


def test_spanish_client_gets_spanish_pages(client: FlaskClient, session: Session) -> None:
    link = make_link(session, language="es")
    html = client.get(link.path).get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "Paso 1 de 3" in html
    assert "Poco interés o placer en hacer cosas" in html
    assert "Ningún día" in html
    assert "No se requiere permiso para reproducir" in html
    assert "Siguiente" in html
    html = post_step(client, link, html, answers_for("PHQ-9"), lang="es").get_data(as_text=True)
    html = post_step(client, link, html, answers_for("GAD-7"), lang="es").get_data(as_text=True)
    done = post_step(client, link, html, answers_for("GOAL-PROGRESS"), lang="es").get_data(as_text=True)
    assert "Gracias, Testa." in done
    assert {row.language for row in administrations_of(session, link.invitation.id)} == {"es"}


def test_language_switch_by_link_and_mid_survey_keeps_answers(client: FlaskClient, session: Session) -> None:
    link = make_link(session, language="en")
    html = client.get(link.path).get_data(as_text=True)
    assert 'href="?lang=es"' in html
    spanish = client.get(f"{link.path}?lang=es").get_data(as_text=True)
    assert '<html lang="es">' in spanish
    switched = post_step(client, link, html, {"phq9_1": "2"}, action="lang:es")
    page = switched.get_data(as_text=True)
    assert switched.status_code == 200
    assert '<html lang="es">' in page
    assert re.search(r'name="phq9_1" value="2" checked', page)
    assert 'name="lang" value="es"' in page


def test_closed_pages_follow_the_clients_language(client: FlaskClient, session: Session) -> None:
    link = make_link(session, language="es", status="expired", expires_in=timedelta(days=-1))
    html = client.get(link.path).get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "Este enlace ha caducado" in html


# --- instruments' own requirements ----------------------------------------------------------------------------


def test_goal_items_show_the_clients_own_goals_and_skip_unset_ones(client: FlaskClient, session: Session) -> None:
    link = make_link(session, instruments=("GOAL-PROGRESS",), goals=("Walk the dog <every> day",))
    html = client.get(link.path).get_data(as_text=True)
    assert "Walk the dog &lt;every&gt; day" in html
    assert 'name="goal_1"' in html
    assert 'name="goal_2"' not in html
    assert post_step(client, link, html, {"goal_1": "4"}).status_code == 200
    (row,) = administrations_of(session, link.invitation.id)
    assert row.answers == {"goal_1": 4.0}
    assert row.total == 4.0


def test_an_episode_without_goals_skips_the_goal_step(client: FlaskClient, session: Session) -> None:
    link = make_link(session, goals=())
    html = client.get(link.path).get_data(as_text=True)
    assert "Step 1 of 2" in html
    html, status = complete(client, link, goals=0)
    assert status == 200
    assert [row.instrument_code for row in administrations_of(session, link.invitation.id)] == ["PHQ-9", "GAD-7"]


def test_partnership_check_notes_it_is_not_validated_and_rotates_an_element(
    client: FlaskClient, session: Session
) -> None:
    first = make_link(session, instruments=POST)
    html = client.get(first.path).get_data(as_text=True)
    assert "This is not a validated questionnaire" in html
    assert "Not a validated instrument" in html
    assert 'name="pc_element_respect"' in html
    assert 'name="pc_element_empathy"' not in html
    assert 'name="pc_tension"' in html
    assert html.index('name="pc_element_respect"') < html.index('name="pc_comment"')
    answers = answers_for("PARTNERSHIP-CHECK", pc_element_respect="9", pc_comment="More time on homework")
    assert post_step(client, first, html, {**answers, "pc_element_hope": "1"}).status_code == 200
    (row,) = administrations_of(session, first.invitation.id)
    assert row.answers["pc_element_respect"] == 9.0
    assert "pc_element_hope" not in row.answers  # not asked, so not taken
    assert row.free_text == "More time on homework"
    second = make_link(session, instruments=POST, client=first.client, episode=first.episode)
    html = client.get(second.path).get_data(as_text=True)
    assert 'name="pc_element_empathy"' in html
    assert 'name="pc_element_respect"' not in html


def test_phq9_and_gad7_show_their_copyright_lines(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    assert "with an educational grant from Pfizer Inc." in html
    assert "© Pfizer Inc." in html
    html = post_step(client, link, html, answers_for("PHQ-9")).get_data(as_text=True)
    assert "GAD-7" in html
    assert "© Pfizer Inc." in html


# --- page hygiene ---------------------------------------------------------------------------------------------


def test_survey_pages_link_nowhere_but_the_survey(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    hrefs = set(re.findall(r'href="([^"]+)"', html))
    allowed = {"#main", "?lang=es", f"{link.path}/opt-out"}
    assert {h for h in hrefs if not h.startswith("/static/")} == allowed
    assert "<script" not in html
    assert " style=" not in html
    assert "csrf_token" not in html  # a link page sets no cookie at all
    assert client.get(link.path).headers.get("Set-Cookie") is None


def test_token_routes_are_rate_limited(make_app: Callable[..., Flask], session: Session) -> None:
    link = make_link(session, instruments=POST)
    limited = make_app(token_rate_limit="2 per minute").test_client()
    assert limited.get(link.path).status_code == 200
    assert limited.get(link.path).status_code == 200
    response = limited.get(link.path)
    assert response.status_code == 429
    assert "Too many tries" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers


def test_the_rotating_element_can_be_turned_off(make_app: Callable[..., Flask], session: Session) -> None:
    link = make_link(session, instruments=POST)
    quiet = make_app(extra={"partnership_rotating_element": "off"}).test_client()
    html = quiet.get(link.path).get_data(as_text=True)
    assert 'name="pc_rapport"' in html
    assert "pc_element_" not in html
