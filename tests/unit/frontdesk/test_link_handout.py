"""The survey-link hand-out: the whole link, a copy button, a QR code, "send now" by a consented channel, lifetime."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import segno
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.config import Settings
from services.db import Database, utcnow
from services.notifications.delivery import Outcome, deliver_notification
from services.notifications.models import Notification
from services.practice.settings import set_setting
from services.surveys.invitations import (
    InvitationError,
    create_link_invitation,
    find_invitation_by_token,
    send_invitation_now,
)
from services.surveys.models import Invitation
from tests.unit.frontdesk.conftest import Booking
from tests.unit.web.conftest import login, post_form

LINK = re.compile(r'id="survey-link"[^>]*>(http://rapport\.test/s/([A-Za-z0-9_-]{43}))<')


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Tasks the request published after its commit."""
    sent: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr("workers.enqueue._publish", lambda name, *args: sent.append((name, args)))
    return sent


@pytest.fixture
def desk(make_app: Callable[..., Flask], staff: Callable[..., User], tmp_path: Path) -> tuple[FlaskClient, Settings]:
    """A front-desk browser on an app whose outbox folder is this test's own."""
    app = make_app(var_dir=tmp_path)
    browser = app.test_client()
    assert login(browser, staff("front_desk").email).status_code == 302
    return browser, app.extensions["rapport"].settings


def hand_out(browser: FlaskClient, booking: Booking) -> tuple[str, str, str]:
    """Press "Copy a survey link" on the client's record; returns the page, the link and its token."""
    record = f"/frontdesk/clients/{booking.client.id}"
    response = post_form(
        browser, f"/frontdesk/appointments/{booking.appointment.id}/link", {"next": record}, page=record
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    match = LINK.search(html)
    assert match, html
    return html, match.group(1), match.group(2)


def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules (row, column) drawn by segno's one-path SVG, border removed."""
    path = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert path
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.update((int(y - 0.5), int(x) + i) for i in range(int(a)))
            x += float(a)
    border = min(c for _, c in dark)
    return {(r - border, c - border) for r, c in dark}


def test_the_page_shows_the_whole_link_a_copy_button_and_a_qr_code_of_it(
    desk: tuple[FlaskClient, Settings], session: Session, book: Callable[..., Booking]
) -> None:
    browser, _settings = desk
    booking = book(starts_in=timedelta(minutes=15))
    html, link, token = hand_out(browser, booking)
    assert find_invitation_by_token(session, token) is not None
    assert 'type="text"' not in html  # not cut off in a text box
    assert 'data-copy-target="survey-link"' in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))  # the CSP allows no inline script
    script = browser.get("/static/copy-link.js")
    assert script.status_code == 200
    script.close()
    svg = re.search(r"<svg[^>]*class=\"qr-code\".*?</svg>", html, re.S)
    assert svg, html
    expected = segno.make(link, error="m")
    assert qr_modules(svg.group(0)) == {
        (r, c) for r, row in enumerate(expected.matrix) for c, value in enumerate(row) if value
    }
    # The link lasts the practice's link lifetime (a day), not the 30 minutes after the session starts.
    session.expire_all()
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    assert invitation.expires_at >= utcnow() + timedelta(hours=23, minutes=59)


def test_the_link_lifetime_is_a_practice_setting(session: Session, book: Callable[..., Booking]) -> None:
    soon = book(starts_in=timedelta(minutes=15))
    set_setting(session, "survey_link_hours", 2, user_id=None)
    before = utcnow()
    invitation, _ = create_link_invitation(session, appointment_id=soon.appointment.id, created_by_id=None)
    assert before + timedelta(hours=2) <= invitation.expires_at <= utcnow() + timedelta(hours=2)
    # A phase that stays open longer keeps its own expiry; a nonsense stored value falls back to the default.
    later = book(starts_in=timedelta(days=3))
    post, _ = create_link_invitation(session, appointment_id=later.appointment.id, created_by_id=None, phase="post")
    assert post.expires_at == later.appointment.ends_at + timedelta(hours=72)
    set_setting(session, "survey_link_hours", "forever", user_id=None)
    other = book(starts_in=timedelta(minutes=15))
    fallback, _ = create_link_invitation(session, appointment_id=other.appointment.id, created_by_id=None)
    assert fallback.expires_at >= utcnow() + timedelta(hours=23, minutes=59)


def test_send_now_by_email_lands_in_the_outbox_with_a_working_link_and_no_client_data(
    desk: tuple[FlaskClient, Settings],
    session: Session,
    db: Database,
    book: Callable[..., Booking],
    published: list[Any],
) -> None:
    browser, settings = desk
    booking = book(starts_in=timedelta(minutes=15), consent_email=True, last_name="Sendnowperson")
    html, _link, _token = hand_out(browser, booking)
    assert "Send by email" in html
    assert "Send by text message" not in html  # no consent to text messages
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    record = f"/frontdesk/clients/{booking.client.id}"
    send = f"/frontdesk/invitations/{invitation.id}/send"
    response = post_form(browser, send, {"channel": "email", "next": record}, page=record)
    assert response.status_code == 303
    assert response.headers["Location"] == record
    assert "on its way" in browser.get(record).get_data(as_text=True)
    post_form(browser, send, {"channel": "email", "next": record}, page=record)  # a double click
    rows = list(session.scalars(select(Notification).where(Notification.recipient_client_id == booking.client.id)))
    assert len(rows) == 1
    assert (rows[0].channel, rows[0].to_address, rows[0].template) == ("email", booking.client.email, "invitation")
    assert ("notifications.send", (rows[0].id,)) in published
    assert deliver_notification(db, settings, rows[0].id) is Outcome.SENT
    message = email.message_from_bytes((settings.outbox_dir / f"email-{rows[0].id:08d}.eml").read_bytes())
    body = "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
    )
    sent_token = re.search(r"http://rapport\.test/s/([A-Za-z0-9_-]{43})", body)
    assert sent_token, body
    assert find_invitation_by_token(session, sent_token.group(1)).id == invitation.id
    assert "Sendnowperson" not in body
    session.expire_all()
    assert session.get(Invitation, invitation.id).channel == "email"
    sent = session.scalars(select(AuditEvent).where(AuditEvent.action == "survey_link_sent")).all()
    assert {event.detail["channel"] for event in sent} == {"email"}  # each request is audited


def test_send_now_needs_consent_to_the_channel(
    desk: tuple[FlaskClient, Settings], session: Session, book: Callable[..., Booking], published: list[Any]
) -> None:
    browser, _settings = desk
    booking = book(starts_in=timedelta(minutes=15), consent_email=False)
    html, _link, _token = hand_out(browser, booking)
    assert "Send by email" not in html
    assert "has not agreed to email or text messages" in html
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    record = f"/frontdesk/clients/{booking.client.id}"
    send = f"/frontdesk/invitations/{invitation.id}/send"
    for channel in ("email", "sms"):
        refused = post_form(browser, send, {"channel": channel}, page=record)
        assert refused.status_code == 303
        assert "record their consent first" in browser.get(record).get_data(as_text=True)
    assert post_form(browser, send, {"channel": "fax"}, page=record).status_code == 400
    assert (
        post_form(browser, "/frontdesk/invitations/999999/send", {"channel": "email"}, page=record).status_code == 404
    )
    assert browser.post(send, data={"channel": "email"}).status_code == 400  # no CSRF token
    assert session.scalar(select(func.count()).select_from(Notification)) == 0
    assert published == []


def test_send_now_refuses_closed_invitations_and_stops_after_three(
    session: Session, book: Callable[..., Booking]
) -> None:
    booking = book(starts_in=timedelta(minutes=15), consent_sms=True, phone="+447700900777")
    invitation, _ = create_link_invitation(session, appointment_id=booking.appointment.id, created_by_id=None)
    now = utcnow()
    for minute in range(3):
        send_invitation_now(session, invitation_id=invitation.id, channel="sms", now=now + timedelta(minutes=minute))
    with pytest.raises(InvitationError, match="three times"):
        send_invitation_now(session, invitation_id=invitation.id, channel="email", now=now + timedelta(minutes=5))
    invitation.status = "completed"
    session.flush()
    with pytest.raises(InvitationError, match="closed"):
        send_invitation_now(session, invitation_id=invitation.id, channel="email", now=now)


def test_the_kiosk_set_up_page_is_in_the_front_desk_menu(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("front_desk")
    home = client.get("/frontdesk/").get_data(as_text=True)
    assert 'href="/frontdesk/kiosk"' in home
    page = client.get("/frontdesk/kiosk").get_data(as_text=True)
    assert "Pair this device" in page
    assert 'href="/kiosk/pair"' in page


def test_roster_link_and_kiosk_pages_in_spanish(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, book: Callable[..., Booking]
) -> None:
    me = signed_in("front_desk")
    me.language = "es"
    session.flush()
    booking = book(starts_in=timedelta(minutes=15), consent_email=True)
    roster = client.get("/frontdesk/").get_data(as_text=True)
    assert "Última invitación al cuestionario" in roster
    assert "Last survey invitation" not in roster
    record = f"/frontdesk/clients/{booking.client.id}"
    page = post_form(client, f"/frontdesk/appointments/{booking.appointment.id}/link", {"next": record}, page=record)
    html = page.get_data(as_text=True)
    assert "Enviar por correo electrónico" in html
    assert "Código QR del enlace al cuestionario" in html
    assert "Send by email" not in html
    assert "Vincular este dispositivo" in client.get("/frontdesk/kiosk").get_data(as_text=True)
