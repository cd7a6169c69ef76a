"""Kiosk tablets are rows: listed, revocable, expiring when unused, bound to the browser and to a rotating secret."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.kiosks import KIOSK_IDLE, PREVIOUS_GRACE, ROTATE_AFTER, resume_kiosk
from services.accounts.models import KioskDevice
from services.audit.models import AuditEvent
from services.db import utcnow
from tests.factories import make_user
from tests.unit.survey.test_kiosk import csrf, pair, sign_in

UNPAIRED = "This device is not set up as a kiosk"


def _device(session: Session) -> KioskDevice:
    session.expire_all()
    device = session.scalars(select(KioskDevice).order_by(KioskDevice.id.desc())).first()
    assert device is not None
    return device


def _cookie(tablet: FlaskClient) -> str:
    cookie = tablet.get_cookie("rapport_kiosk", path="/kiosk")
    assert cookie is not None
    return cookie.value


def test_pairing_makes_a_row_that_the_device_page_lists(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    assert tablet.get("/kiosk").status_code == 200
    device = _device(session)
    assert device.name == "Waiting room"
    assert device.paired_by_id is not None
    assert device.revoked_at is None
    cookie = tablet.get_cookie("rapport_kiosk", path="/kiosk")
    assert cookie is not None
    assert cookie.expires is not None
    assert cookie.expires - utcnow() < KIOSK_IDLE + timedelta(minutes=1)  # not 180 days any more
    desk = app.test_client()
    sign_in(desk, make_user(session, role="front_desk"))
    page = desk.get("/admin/kiosks").get_data(as_text=True)
    assert "Waiting room" in page
    assert "Revoke" in page


def test_a_revoked_kiosk_is_unpaired_at_once(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    device = _device(session)
    admin = app.test_client()
    sign_in(admin, make_user(session, role="admin"))
    page = admin.get("/admin/kiosks").get_data(as_text=True)
    response = admin.post(f"/admin/kiosks/{device.id}/revoke", data={"csrf_token": csrf(page)})
    assert response.status_code == 303
    assert _device(session).revoked_at is not None
    refused = tablet.get("/kiosk")
    assert refused.status_code == 403
    assert UNPAIRED in refused.get_data(as_text=True)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "kiosk_revoked"))


def test_a_copied_cookie_does_not_work_in_another_browser(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    copy = app.test_client()
    copy.set_cookie("rapport_kiosk", _cookie(tablet), path="/kiosk")
    refused = copy.get("/kiosk", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"})
    assert refused.status_code == 403
    assert UNPAIRED in refused.get_data(as_text=True)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "kiosk_refused"))
    assert event is not None
    assert event.detail["reason"] == "other_browser"
    assert tablet.get("/kiosk").status_code == 200  # the real tablet is unaffected


def test_the_secret_rotates_with_use_and_an_old_copy_stops_working(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    old_cookie = _cookie(tablet)
    device = _device(session)
    device.secret_rotated_at = utcnow() - ROTATE_AFTER - timedelta(seconds=1)
    session.commit()
    assert tablet.get("/kiosk").status_code == 200
    new_cookie = _cookie(tablet)
    assert new_cookie != old_cookie  # rotated and sent back, with a fresh lifetime
    assert _device(session).previous_secret_hash is not None
    copy = app.test_client()
    copy.set_cookie("rapport_kiosk", old_cookie, path="/kiosk")
    assert copy.get("/kiosk").status_code == 200  # a request in flight with the previous secret still works
    device = _device(session)
    device.secret_rotated_at = utcnow() - PREVIOUS_GRACE - timedelta(seconds=1)
    session.commit()
    assert copy.get("/kiosk").status_code == 403  # after the grace, the old secret is refused
    assert tablet.get("/kiosk").status_code == 200


def test_an_unused_kiosk_expires_and_use_slides_its_lifetime(app: Flask, session: Session) -> None:
    tablet = pair(app, session)
    device = _device(session)
    device.last_seen_at = utcnow() - timedelta(minutes=5)
    session.commit()
    assert tablet.get("/kiosk").status_code == 200
    assert utcnow() - _device(session).last_seen_at < timedelta(minutes=1)  # use slides it
    device = _device(session)
    device.last_seen_at = utcnow() - KIOSK_IDLE - timedelta(minutes=1)
    session.commit()
    assert tablet.get("/kiosk").status_code == 403


def test_unknown_devices_are_refused(session: Session) -> None:
    check = resume_kiosk(session, device_id=2_000_000_000, secret="x", user_agent="a", ip=None)
    assert check.device is None
    assert check.refused == "unknown"


def test_clinicians_cannot_see_or_revoke_kiosks(app: Flask, session: Session) -> None:
    pair(app, session)
    device = _device(session)
    clinician = app.test_client()
    sign_in(clinician, make_user(session, role="clinician"))
    assert clinician.get("/admin/kiosks").status_code == 403
    assert clinician.post(f"/admin/kiosks/{device.id}/revoke").status_code in (400, 403)
    assert _device(session).revoked_at is None
