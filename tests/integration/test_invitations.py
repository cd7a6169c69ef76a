"""Invitations end to end: PostgreSQL, Redis, a real Celery worker and a real SMTP server.

An appointment tomorrow becomes an email (the dispatch job runs on the worker) whose link resolves to the
invitation and opens the survey; a cancelled appointment sends nothing, even when its message was already
queued; a reminder carries a fresh link; no message carries a last name, an instrument or a score.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from sqlalchemy import select

from services.clients.models import Appointment, Client, Episode
from services.clients.operations import cancel_appointment
from services.config import Settings
from services.db import Database, utcnow
from services.notifications.models import Notification
from services.surveys.invitations import dispatch_invitations, find_invitation_by_token
from services.surveys.models import Invitation
from services.surveys.policy import InvitationPolicy
from tests.factories import make_user
from tests.integration.conftest import SmtpSink, WorkerProcess, wait_for
from workers.enqueue import send_notification_after_commit

LINK = re.compile(r"(https?://\S+/s/([A-Za-z0-9_-]{43}))(?!/opt-out)(?=\s|$)")
FORBIDDEN = ("PHQ", "GAD", "Partnership", "PARTNERSHIP", "GOAL", "score", "Score")


def body_of(message: Message) -> str:
    """The decoded text of a plain-text message."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def book(db: Database, *, starts_in: timedelta, minutes: int = 50, **client_fields: Any) -> dict[str, Any]:
    """Commit a client (unique synthetic names), an open episode and one appointment; returns their ids."""
    tag = secrets.token_hex(3)
    with db.unit_of_work() as session:
        clinician = make_user(session, role="clinician", email=f"it-clinician-{tag}@example.test", team=None)
        client = Client(
            code=f"IT{tag.upper()}",
            first_name=client_fields.pop("first_name", f"Itzel{tag}"),
            last_name=client_fields.pop("last_name", f"Lastname{tag}"),
            email=f"it-client-{tag}@example.test",
            language=client_fields.pop("language", "en"),
            consent_email=True,
            **client_fields,
        )
        session.add(client)
        session.flush()
        episode = Episode(client_id=client.id, clinician_id=clinician.id, started_on=utcnow().date(), goals=["Rest"])
        session.add(episode)
        session.flush()
        starts_at = utcnow() + starts_in
        appointment = Appointment(
            episode_id=episode.id, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes)
        )
        session.add(appointment)
        session.flush()
        return {
            "client_id": client.id,
            "email": client.email,
            "first_name": client.first_name,
            "last_name": client.last_name,
            "appointment_id": appointment.id,
        }


def dispatch_and_publish(db: Database, *, now: Any = None, publish: bool = True) -> list[int]:
    """One dispatch pass in this process; its messages go to the real worker after the commit."""
    with db.unit_of_work() as session:
        result = dispatch_invitations(session, policy=InvitationPolicy(), now=now or utcnow())
        if publish:
            for notification_id in result.notification_ids:
                send_notification_after_commit(session, notification_id)
        return result.notification_ids


def barrier(db: Database, smtp: SmtpSink) -> None:
    """Send one more invitation and wait for it: whatever was queued before it has been handled by then."""
    other = book(db, starts_in=timedelta(hours=21))
    dispatch_and_publish(db)
    wait_for(lambda: smtp.to(other["email"]), what="the barrier message")


def test_an_appointment_tomorrow_leads_to_an_email_whose_link_opens_the_survey(
    it_db: Database,
    it_settings: Settings,
    running_worker: WorkerProcess,
    smtp: SmtpSink,
    celery_publisher: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booked = book(it_db, starts_in=timedelta(hours=20), last_name="Zapatero-Example")
    # The beat job itself, run by the worker (keyed by the minute; this is the only test that runs it).
    celery_publisher.send_task("surveys.dispatch")
    [message] = wait_for(lambda: smtp.to(booked["email"]), timeout=30, what="the invitation email")
    body = body_of(message)
    subject = str(message["Subject"])
    assert subject == f"A quick check-in from {it_settings.practice_name}"
    assert f"Hello {booked['first_name']}," in body
    links = LINK.findall(body)
    assert len(links) == 1, body
    link, raw = links[0]
    assert link == f"{it_settings.base_url}/s/{raw}"
    assert f"{link}/opt-out" in body
    for leak in (booked["last_name"], "Zapatero", *FORBIDDEN):
        assert leak not in body
        assert leak not in subject
    with it_db.session() as s:
        invitation = find_invitation_by_token(s, raw)
        assert invitation is not None
        assert invitation.appointment_id == booked["appointment_id"]
        assert (invitation.phase, invitation.channel, invitation.status) == ("pre", "email", "sent")
        notification = s.scalar(select(Notification).where(Notification.recipient_client_id == booked["client_id"]))
        assert notification is not None
        assert notification.status == "sent"
        assert raw not in str(notification.context)
    # The link opens the survey (the client half's page) and opening it does not consume it. This process's
    # publisher is already configured for these settings: create_app must not reconfigure it, because
    # workers.app.configure closes kombu's shared connection pool and later publishes would fail.
    from web.app import create_app

    monkeypatch.setattr("workers.app.configure", lambda settings: celery_publisher)
    app = create_app(settings=it_settings, database=it_db)
    browser = app.test_client()
    page = browser.get(f"/s/{raw}")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    assert browser.get(f"/s/{raw}").status_code == 200
    assert browser.get(f"/s/{raw[:-1]}x").status_code == 404


def test_a_cancelled_appointment_sends_nothing(
    it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    before = book(it_db, starts_in=timedelta(hours=19))
    with it_db.unit_of_work() as session:
        cancel_appointment(session, appointment_id=before["appointment_id"])
    late = book(it_db, starts_in=timedelta(hours=19))
    # Its message is queued but not published (as if the broker had been down) ...
    [queued] = [n for n in dispatch_and_publish(it_db, publish=False) if _recipient(it_db, n) == late["client_id"]]
    # ... then the appointment is cancelled, and only afterwards does a re-drive hand the message to the worker.
    with it_db.unit_of_work() as session:
        cancel_appointment(session, appointment_id=late["appointment_id"])
        session.execute(Notification.__table__.update().where(Notification.id == queued).values(status="pending"))
        send_notification_after_commit(session, queued)
    barrier(it_db, smtp)
    assert smtp.to(before["email"]) == []
    assert smtp.to(late["email"]) == []
    with it_db.session() as s:
        assert s.scalar(select(Invitation).where(Invitation.appointment_id == before["appointment_id"])) is None
        invitation = s.scalar(select(Invitation).where(Invitation.appointment_id == late["appointment_id"]))
        assert invitation is not None
        assert invitation.status == "cancelled"
        row = s.get(Notification, queued)
        assert row is not None
        assert row.status == "cancelled"


def _recipient(db: Database, notification_id: int) -> int | None:
    with db.session() as s:
        row = s.get(Notification, notification_id)
        return row.recipient_client_id if row is not None else None


def test_one_reminder_with_a_fresh_link_in_the_clients_language(
    it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    booked = book(it_db, starts_in=timedelta(minutes=-55), minutes=50, language="es")
    now = utcnow()
    dispatch_and_publish(it_db, now=now)
    [first] = wait_for(lambda: smtp.to(booked["email"]), what="the post-session invitation")
    dispatch_and_publish(it_db, now=now + timedelta(hours=13))
    dispatch_and_publish(it_db, now=now + timedelta(hours=14))
    messages = wait_for(lambda: m if len(m := smtp.to(booked["email"])) >= 2 else None, what="the reminder")
    barrier(it_db, smtp)
    assert len(smtp.to(booked["email"])) == 2
    reminder = messages[1]
    assert str(reminder["Subject"]).startswith("Recordatorio")
    assert "Hola" in body_of(first)
    [(_, first_raw)] = LINK.findall(body_of(first))
    [(_, second_raw)] = LINK.findall(body_of(reminder))
    assert first_raw != second_raw
    for message in (first, reminder):
        for leak in (booked["last_name"], *FORBIDDEN):
            assert leak not in body_of(message)
    with it_db.session() as s:
        one, two = find_invitation_by_token(s, first_raw), find_invitation_by_token(s, second_raw)
        assert one is not None
        assert two is not None
        assert one.id == two.id
        assert (one.phase, one.reminders) == ("post", 1)
