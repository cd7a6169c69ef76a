"""The kiosk: pairing by staff, a locked start screen, one client's survey at a time, back to locked after."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.db import utcnow
from services.surveys.invitations import create_kiosk_invitation
from services.surveys.models import Invitation
from tests.factories import PASSWORD, make_appointment, make_client, make_episode, make_user
from tests.unit.survey.conftest import administrations_of, invitation_row
from tests.unit.survey.helpers import answers_for

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
STATE = re.compile(r'name="state" value="([^"]+)"')


def csrf(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "no csrf_token on the page"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, user: User) -> None:
    """Sign a staff member in through the real login form."""
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf(page)})
    assert response.status_code == 302


def pair(app: Flask, session: Session, role: str = "front_desk") -> FlaskClient:
    """A fresh browser, paired as a kiosk by a staff member who is then signed out on it."""
    tablet = app.test_client()
    sign_in(tablet, make_user(session, role=role))
    page = tablet.get("/kiosk/pair").get_data(as_text=True)
    response = tablet.post("/kiosk/pair", data={"label": "Waiting room", "csrf_token": csrf(page)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/kiosk"
    return tablet


def hand_out(session: Session, *, language: str = "en", goals: tuple[str, ...] = ("Sleep well",)) -> Invitation:
    """A checked-in client's invitation handed to the kiosk by the front desk."""
    person = make_client(session, language=language, first_name="Kiosa")
    episode = make_episode(session, client=person, goals=list(goals))
    appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(minutes=20))
    appointment.checked_in_at = utcnow()
    desk = make_user(session, role="front_desk")
    invitation, _raw = create_kiosk_invitation(session, appointment_id=appointment.id, created_by_id=desk.id)
    session.commit()
    return invitation


def start(tablet: FlaskClient) -> str:
    """Tap Start on the locked screen; returns the first survey page."""
    screen = tablet.get("/kiosk").get_data(as_text=True)
    assert "Your questions are ready" in screen
    response = tablet.post("/kiosk/start", data={"csrf_token": csrf(screen)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/kiosk/survey"
    return tablet.get("/kiosk/survey").get_data(as_text=True)


def post(tablet: FlaskClient, html: str, answers: dict[str, str], action: str = "next") -> tuple[int, str]:
    """Submit the kiosk page shown in html."""
    state = STATE.search(html)
    assert state
    data = {"state": state.group(1), "lang": "en", "action": action, "csrf_token": csrf(html), **answers}
    response = tablet.post("/kiosk/survey", data=data)
    return response.status_code, response.get_data(as_text=True)


def test_an_unpaired_device_gets_no_kiosk(client: FlaskClient) -> None:
    for path in ("/kiosk", "/kiosk/survey"):
        response = client.get(path)
        assert response.status_code == 403
        assert "This device is not set up as a kiosk" in response.get_data(as_text=True)


def test_a_forged_kiosk_cookie_is_not_a_kiosk(client: FlaskClient) -> None:
    client.set_cookie("rapport_kiosk", "eyJkIjoiZm9yZ2VkIn0.bad.signature", path="/kiosk")
    assert client.get("/kiosk").status_code == 403


def test_only_front_desk_and_admin_pair_devices(app: Flask, session: Session) -> None:
    tablet = app.test_client()
    sign_in(tablet, make_user(session, role="clinician"))
    assert tablet.get("/kiosk/pair").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get("/kiosk/pair").status_code == 302  # to the login page


def test_pairing_signs_the_staff_member_out_on_the_tablet(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    assert tablet.get("/frontdesk/").status_code == 302  # back to the login page: no staff session here
    screen = tablet.get("/kiosk")
    html = screen.get_data(as_text=True)
    assert screen.status_code == 200
    assert "Welcome" in html
    assert '<meta http-equiv="refresh" content="5;url=/kiosk">' in html


def test_the_kiosk_runs_one_survey_and_locks_again(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    invitation = hand_out(session)
    html = start(tablet)
    assert "Hello Kiosa." in html
    assert "Step 1 of 3" in html
    assert '<meta http-equiv="refresh" content="180;url=/kiosk">' in html  # inactivity returns to the start screen
    assert "This is not me" in html
    assert "opt-out" not in html
    for code in ("PHQ-9", "GAD-7"):
        status, html = post(tablet, html, answers_for(code))
        assert status == 200
    status, html = post(tablet, html, answers_for("GOAL-PROGRESS", goals=1))
    assert status == 200
    assert "Thank you, Kiosa." in html
    assert '<meta http-equiv="refresh" content="30;url=/kiosk">' in html
    assert invitation_row(session, invitation.id).status == "completed"
    assert len(administrations_of(session, invitation.id)) == 3
    # The run is over: the survey URL leads back to the locked screen, which has nothing waiting.
    again = tablet.get("/kiosk/survey")
    assert again.status_code == 303
    assert "Welcome" in tablet.get("/kiosk").get_data(as_text=True)


def test_kiosk_pages_link_only_to_the_kiosk(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    hand_out(session)
    pages = [tablet.get("/kiosk").get_data(as_text=True), start(tablet)]
    for html in pages:
        links = {h for h in re.findall(r'(?:href|action)="([^"]+)"', html) if not h.startswith("/static/")}
        assert links <= {"#main", "/kiosk", "/kiosk/start", "/kiosk/survey", "/kiosk/release", "?lang=es"}, links


def test_two_tablets_never_take_the_same_client(app: Flask, session: Session) -> None:
    first, second = pair(app, session), pair(app, session)
    invitation = hand_out(session)
    screen = second.get("/kiosk").get_data(as_text=True)
    start(first)
    taken = second.post("/kiosk/start", data={"csrf_token": csrf(screen)})
    assert taken.status_code == 303
    assert taken.headers["Location"] == "/kiosk"
    assert second.get("/kiosk/survey").status_code == 303
    assert invitation_row(session, invitation.id).status == "started"


def test_this_is_not_me_gives_the_invitation_back(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    invitation = hand_out(session)
    html = start(tablet)
    response = tablet.post("/kiosk/release", data={"csrf_token": csrf(html)})
    assert response.status_code == 303
    row = invitation_row(session, invitation.id)
    assert row.status == "opened"
    assert row.started_at is None
    assert "Your questions are ready" in tablet.get("/kiosk").get_data(as_text=True)


def test_kiosk_posts_need_the_csrf_token(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    hand_out(session)
    response = tablet.post("/kiosk/start")
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_client_who_started_on_the_phone_can_finish_on_the_kiosk(app: Flask, session: Session) -> None:
    invitation = hand_out(session)
    row = invitation_row(session, invitation.id)
    row.status = "started"
    row.started_at = utcnow()
    session.commit()
    # The hand-out came before that start: nothing waiting. A new hand-out after it puts it on the tablet.
    tablet = pair(app, session)
    assert "Welcome" in tablet.get("/kiosk").get_data(as_text=True)
    assert row.appointment_id is not None
    create_kiosk_invitation(session, appointment_id=row.appointment_id, created_by_id=None)
    session.commit()
    assert "Hello Kiosa." in start(tablet)
