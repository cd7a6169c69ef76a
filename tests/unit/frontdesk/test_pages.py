"""Front-desk pages: enrol, episodes, appointments, check-in, kiosk, links, imports, history, funnel; no scores."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.clients.models import Appointment, Client, Episode
from services.db import utcnow
from services.surveys.invitations import dispatch_invitations, find_invitation_by_token
from services.surveys.models import Administration, Invitation
from tests.factories import make_appointment, make_client, make_episode
from tests.unit.frontdesk.conftest import POLICY, Booking
from tests.unit.web.conftest import csrf_token, login, post_form
from web.frontdesk.common import utc_to_local


def actions(session: Session, action: str) -> list[AuditEvent]:
    """Audit events of one kind."""
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_front_desk_enrols_a_client_then_opens_an_episode_then_adds_an_appointment(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    clinician = staff("clinician", name="Dr Enrolment")
    assert client.get("/frontdesk/clients/new").status_code == 200
    response = post_form(
        client,
        "/frontdesk/clients/new",
        {
            "first_name": "Noor",
            "last_name": "Example",
            "email": "Noor@Example.test",
            "phone": "",
            "language": "es",
            "consent_email": "y",
        },
        page="/frontdesk/clients/new",
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    created = session.scalar(select(Client).where(Client.last_name == "Example", Client.first_name == "Noor"))
    assert created is not None
    assert (created.email, created.language, created.consent_email, created.consent_sms) == (
        "noor@example.test",
        "es",
        True,
        False,
    )
    assert response.headers["Location"] == f"/frontdesk/clients/{created.id}/episodes/new"
    form_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Dr Enrolment" in form_page
    response = post_form(
        client,
        f"/frontdesk/clients/{created.id}/episodes/new",
        {
            "clinician_id": clinician.id,
            "protocol_code": "standard",
            "started_on": "2026-03-02",
            "goal_1": "Sleep through the night",
            "goal_2": "  ",
            "goal_3": "Go back to work",
        },
        page=f"/frontdesk/clients/{created.id}/episodes/new",
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    episode = session.scalar(select(Episode).where(Episode.client_id == created.id))
    assert episode is not None
    assert episode.goals == ["Sleep through the night", "Go back to work"]
    add_url = f"/frontdesk/episodes/{episode.id}/appointments/new"
    assert response.headers["Location"] == add_url
    day = (utcnow() + timedelta(days=3)).date()
    response = post_form(
        client, add_url, {"day": day.isoformat(), "at": "14:30", "duration_minutes": "50"}, page=add_url
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    appointment = session.scalar(select(Appointment).where(Appointment.episode_id == episode.id))
    assert appointment is not None
    assert appointment.ends_at - appointment.starts_at == timedelta(minutes=50)
    assert appointment.starts_at.astimezone(UTC).minute == 30
    flashed = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Appointment added for" in flashed
    assert day.isoformat() not in flashed.split("Appointment added for")[1][:40]  # the locale's date, not ISO
    assert [e.client_id for e in actions(session, "client_created")] == [created.id]
    assert len(actions(session, "episode_opened")) == 1
    assert len(actions(session, "appointment_added")) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"first_name": "", "last_name": "X"}, "This field is required"),
        ({"first_name": "A", "last_name": "B", "consent_sms": "y"}, "Consent to text messages needs a phone number"),
        ({"first_name": "A", "last_name": "B", "email": "no-at-sign"}, "not a valid email address"),
        ({"first_name": "A", "last_name": "B", "phone": "call me maybe"}, "is not a phone number"),
        ({"first_name": "A", "last_name": "B", "language": "fr"}, "Not a valid choice"),
    ],
)
def test_enrolment_errors_are_shown_and_nothing_is_written(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, data: dict[str, str], message: str
) -> None:
    signed_in("front_desk")
    before = session.scalar(select(func.count()).select_from(Client))
    response = post_form(client, "/frontdesk/clients/new", {"language": "en", **data}, page="/frontdesk/clients/new")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Client)) == before


def test_editing_consent_and_contacts(client: FlaskClient, signed_in: Callable[..., User], session: Session) -> None:
    signed_in("front_desk")
    person = make_client(session, consent_email=True)
    page = client.get(f"/frontdesk/clients/{person.id}/edit").get_data(as_text=True)
    assert person.email in page
    response = post_form(
        client,
        f"/frontdesk/clients/{person.id}/edit",
        {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "email": person.email,
            "phone": "+44 7700 900555",
            "language": "en",
            "consent_sms": "y",
        },
        page=f"/frontdesk/clients/{person.id}/edit",
    )
    assert response.status_code == 303
    session.refresh(person)
    assert (person.consent_email, person.consent_sms, person.phone) == (False, True, "+447700900555")
    [event_row] = actions(session, "client_updated")
    assert event_row.detail["consent_after"] == [False, True]
    assert client.get("/frontdesk/clients/999999/edit").status_code == 404


def test_episode_form_refuses_a_duplicate_and_too_long_goals(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    clinician = staff("clinician")
    episode = make_episode(session, clinician=clinician)
    url = f"/frontdesk/clients/{episode.client_id}/episodes/new"
    response = post_form(
        client,
        url,
        {"clinician_id": clinician.id, "protocol_code": "standard", "started_on": "2026-03-02"},
        page=url,
    )
    assert response.status_code == 400
    assert "already has an open episode" in response.get_data(as_text=True)
    response = post_form(
        client,
        url,
        {"clinician_id": clinician.id, "protocol_code": "nope", "started_on": "2026-03-02"},
        page=url,
    )
    assert response.status_code == 400
    assert session.scalar(select(func.count()).select_from(Episode).where(Episode.client_id == episode.client_id)) == 1


def test_record_page_shows_actions_and_invitation_history_but_never_scores(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    booking = book(starts_in=timedelta(hours=20))
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    session.add(
        Administration(
            invitation_id=invitation.id,
            episode_id=booking.episode.id,
            instrument_code="PHQ-9",
            instrument_version="1",
            total=19,
            answers={"phq9_1": 3},
            scores={"total": 19},
        )
    )
    session.flush()
    page = client.get(f"/frontdesk/clients/{booking.client.id}").get_data(as_text=True)
    assert "Survey invitations" in page
    assert "Before the session" in page
    assert "Sent" in page
    assert "Copy a survey link" in page
    assert "Cancel appointment" in page
    for secret in ("PHQ-9", ">19<", "GAD-7", "Partnership"):
        assert secret not in page
    history = client.get(f"/frontdesk/clients/{booking.client.id}/invitations")
    assert history.status_code == 200
    assert "PHQ-9" not in history.get_data(as_text=True)
    whats = [e.detail["what"] for e in actions(session, "client_viewed")]
    assert whats == ["frontdesk_record", "frontdesk_invitations"]


def test_cancelling_from_the_page_cancels_invitations(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    booking = book(starts_in=timedelta(hours=20))
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    record = f"/frontdesk/clients/{booking.client.id}"
    response = post_form(
        client, f"/frontdesk/appointments/{booking.appointment.id}/cancel", {"next": record}, page=record
    )
    assert response.status_code == 303
    assert response.headers["Location"] == record
    session.expire_all()
    assert booking.appointment.status == "cancelled"
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    assert invitation.status == "cancelled"
    # Twice is harmless; an off-site `next` is ignored.
    again = post_form(
        client,
        f"/frontdesk/appointments/{booking.appointment.id}/cancel",
        {"next": "https://evil.example/"},
        page=record,
    )
    assert again.status_code == 303
    assert again.headers["Location"] == record
    assert len(actions(session, "appointment_cancelled")) == 2


def test_actions_need_csrf_and_refuse_unknown_appointments(
    client: FlaskClient, signed_in: Callable[..., User], book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    booking = book()
    for action in ("cancel", "check-in", "kiosk", "link"):
        assert client.post(f"/frontdesk/appointments/{booking.appointment.id}/{action}").status_code == 400
        response = post_form(client, f"/frontdesk/appointments/999999/{action}", {}, page="/frontdesk/")
        assert response.status_code == 404
    response = post_form(
        client, f"/frontdesk/appointments/{booking.appointment.id}/kiosk", {"phase": "during"}, page="/frontdesk/"
    )
    assert response.status_code == 400


def test_reschedule_page_moves_the_appointment_and_rejects_bad_times(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    booking = book(starts_in=timedelta(days=3))
    url = f"/frontdesk/appointments/{booking.appointment.id}/reschedule"
    page = client.get(url).get_data(as_text=True)
    assert "Move the appointment" in page
    new_day = (utcnow() + timedelta(days=10)).date()
    response = post_form(client, url, {"day": new_day.isoformat(), "at": "09:15", "duration_minutes": "45"}, page=url)
    assert response.status_code == 303
    session.refresh(booking.appointment)
    assert booking.appointment.ends_at - booking.appointment.starts_at == timedelta(minutes=45)
    assert len(actions(session, "appointment_rescheduled")) == 1
    bad = post_form(client, url, {"day": "2026-13-45", "at": "09:15", "duration_minutes": "45"}, page=url)
    assert bad.status_code == 400
    too_long = post_form(client, url, {"day": new_day.isoformat(), "at": "09:15", "duration_minutes": "600"}, page=url)
    assert too_long.status_code == 400


def test_a_time_skipped_by_the_clocks_going_forward_is_refused(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    client = make_app(timezone="Europe/London").test_client()
    login(client, staff("front_desk").email)
    episode = make_episode(session)
    url = f"/frontdesk/episodes/{episode.id}/appointments/new"
    response = post_form(client, url, {"day": "2027-03-28", "at": "01:30", "duration_minutes": "50"}, page=url)
    assert response.status_code == 400
    assert "does not exist on that day" in response.get_data(as_text=True)


def test_check_in_then_kiosk_then_link(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    me = signed_in("front_desk")
    booking = book(starts_in=timedelta(minutes=15))
    # The appointment's own practice-local day: fifteen minutes from now is tomorrow late in the evening.
    with client.application.app_context():
        day = utc_to_local(booking.appointment.starts_at).date().isoformat()
    day_url = f"/frontdesk/appointments?day={day}"
    day_page = client.get(day_url).get_data(as_text=True)
    assert booking.client.last_name in day_page
    assert "Check in" in day_page
    kiosk_url = f"/frontdesk/appointments/{booking.appointment.id}/kiosk"
    refused = post_form(client, kiosk_url, {"next": "/frontdesk/appointments"}, page="/frontdesk/appointments")
    assert refused.status_code == 303
    assert "Check the client in before" in client.get(day_url).get_data(as_text=True)
    response = post_form(
        client,
        f"/frontdesk/appointments/{booking.appointment.id}/check-in",
        {"next": "/frontdesk/appointments"},
        page="/frontdesk/appointments",
    )
    assert response.status_code == 303
    session.refresh(booking.appointment)
    assert booking.appointment.checked_in_at is not None
    response = post_form(client, kiosk_url, {"next": "/frontdesk/appointments"}, page="/frontdesk/appointments")
    assert response.status_code == 303
    page = client.get(day_url).get_data(as_text=True)
    assert "waiting on the kiosk" in page
    session.expire_all()
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    assert (invitation.channel, invitation.status, invitation.created_by_id) == ("kiosk", "sent", me.id)
    link_page = post_form(
        client, f"/frontdesk/appointments/{booking.appointment.id}/link", {}, page="/frontdesk/appointments"
    )
    assert link_page.status_code == 200
    html = link_page.get_data(as_text=True)
    match = re.search(r'id="survey-link"[^>]*>http://rapport\.test/s/([A-Za-z0-9_-]{43})<', html)
    assert match, html
    assert find_invitation_by_token(session, match.group(1)) is not None
    assert link_page.headers["Cache-Control"] == "no-store"
    assert len(actions(session, "survey_link_created")) == 1
    assert len(actions(session, "survey_kiosk_handout")) == 1


def test_check_in_is_for_the_day_of_the_appointment(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    booking = book(starts_in=timedelta(days=4))
    record = f"/frontdesk/clients/{booking.client.id}"
    assert "Check in" not in client.get(record).get_data(as_text=True)
    response = post_form(client, f"/frontdesk/appointments/{booking.appointment.id}/check-in", {}, page=record)
    assert response.status_code == 303
    assert "only on the day of their appointment" in client.get(record).get_data(as_text=True)
    session.refresh(booking.appointment)
    assert booking.appointment.checked_in_at is None


def test_day_list_pages_and_empty_days(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, engine: Engine
) -> None:
    signed_in("front_desk")
    day = datetime(2026, 5, 4, 8, tzinfo=UTC)
    for i in range(55):
        make_appointment(session, episode=make_episode(session), starts_at=day + timedelta(minutes=5 * i))
    first = client.get("/frontdesk/appointments?day=2026-05-04").get_data(as_text=True)
    assert "Page 1 of 2" in first
    second = client.get("/frontdesk/appointments?day=2026-05-04&page=2")
    assert second.status_code == 200
    empty = client.get("/frontdesk/appointments?day=2026-05-05").get_data(as_text=True)
    assert "No appointments on this day." in empty
    assert client.get("/frontdesk/appointments?day=yesterday").status_code == 400
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get("/frontdesk/appointments?day=2026-05-04")
        small = len(statements)
        statements.clear()
        client.get("/frontdesk/appointments?day=2026-05-04&page=2")
        assert len(statements) == small  # no query per row
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_import_page_reports_rows_and_refuses_bad_files(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    booking = book(starts_in=timedelta(days=2))
    start = (utcnow() + timedelta(days=9)).replace(microsecond=0)
    csv_text = (
        "external_id,client_code,starts_at,duration_minutes\n"
        f"x1,{booking.client.code},{start.isoformat()},50\n"
        f"x2,NOBODY,{start.isoformat()},50\n"
    )
    token = csrf_token(client, "/frontdesk/import")
    response = client.post(
        "/frontdesk/import",
        data={
            "csrf_token": token,
            "file": (io.BytesIO(csv_text.encode()), "appointments.csv"),
            "fmt": "auto",
            "source": "acme-cal",
        },
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "1 imported, 0 updated, 1 skipped." in page
    assert "no client with code NOBODY" in page
    imported = session.scalar(select(Appointment).where(Appointment.source == "acme-cal"))
    assert imported is not None
    assert imported.external_id == "x1"
    [audit_row] = actions(session, "appointments_imported")
    assert audit_row.detail == {"source": "acme-cal", "imported": 1, "updated": 0, "skipped": 1}

    bad = client.post(
        "/frontdesk/import",
        data={"csrf_token": token, "file": (io.BytesIO(b"just,some\nwords,here\n"), "x.csv"), "fmt": "csv"},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400
    assert "Nothing was imported." in bad.get_data(as_text=True)
    nothing = client.post("/frontdesk/import", data={"csrf_token": token, "fmt": "auto"})
    assert nothing.status_code == 400
    assert "Choose a file to upload" in nothing.get_data(as_text=True)
    private = client.post(
        "/frontdesk/import", data={"csrf_token": token, "fmt": "ical", "url": "http://127.0.0.1:9/cal.ics"}
    )
    assert private.status_code == 400
    assert "private network" in private.get_data(as_text=True)


def test_funnel_page_counts_by_channel_clinician_and_week(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    signed_in("front_desk")
    assert "No invitations were sent in this period." in client.get("/frontdesk/funnel").get_data(as_text=True)
    booking = book(starts_in=timedelta(hours=20))
    book(starts_in=timedelta(hours=21), clinician=booking.clinician)
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    done = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert done is not None
    done.status, done.opened_at, done.started_at, done.completed_at = "completed", utcnow(), utcnow(), utcnow()
    session.flush()
    page = client.get("/frontdesk/funnel?weeks=4").get_data(as_text=True)
    assert booking.clinician.name in page
    assert "50%" in page
    assert "By week (starting Monday)" in page
    assert client.get("/frontdesk/funnel?weeks=999").status_code == 200


@pytest.mark.parametrize("role", ["clinician", "supervisor", "manager", "admin"])
def test_other_roles_cannot_use_front_desk_pages(
    client: FlaskClient, signed_in: Callable[..., User], role: str, book: Callable[..., Booking]
) -> None:
    signed_in(role)
    booking = book()
    for path in (
        "/frontdesk/clients/new",
        "/frontdesk/appointments",
        "/frontdesk/import",
        "/frontdesk/funnel",
        f"/frontdesk/clients/{booking.client.id}/invitations",
        f"/frontdesk/appointments/{booking.appointment.id}/reschedule",
    ):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/frontdesk/appointments/{booking.appointment.id}/cancel").status_code == 403


def test_ending_an_episode_from_the_record_cancels_later_sessions_and_closes_its_alerts(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    from services.alerts.models import Alert

    signed_in("front_desk")
    booking = book(starts_in=timedelta(days=3))
    dispatch_invitations(session, policy=POLICY, now=utcnow() + timedelta(days=2, hours=12))
    alert = Alert(episode_id=booking.episode.id, kind="outcome", status="open", summary="PHQ-9 not on track")
    session.add(alert)
    session.commit()
    record = f"/frontdesk/clients/{booking.client.id}"
    page = client.get(record).get_data(as_text=True)
    assert "End this episode" in page

    future = (utcnow() + timedelta(days=2)).date().isoformat()
    refused = post_form(client, f"/frontdesk/episodes/{booking.episode.id}/end", {"ended_on": future}, page=record)
    assert refused.status_code == 303
    session.expire_all()
    assert booking.episode.ended_on is None
    assert post_form(client, "/frontdesk/episodes/999999/end", {}, page=record).status_code == 404
    assert client.post(f"/frontdesk/episodes/{booking.episode.id}/end").status_code == 400  # no CSRF token

    ended = post_form(client, f"/frontdesk/episodes/{booking.episode.id}/end", {}, page=record)
    assert ended.status_code == 303
    assert ended.headers["Location"] == record
    session.expire_all()
    assert booking.episode.ended_on is not None
    assert booking.appointment.status == "cancelled"
    assert all(
        row.status == "cancelled"
        for row in session.scalars(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    )
    assert (alert.status, alert.resolution_reason) == ("resolved", "episode_ended")
    assert len(actions(session, "episode_ended")) == 1
    assert "End this episode" not in client.get(record).get_data(as_text=True)
