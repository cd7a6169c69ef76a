"""The demo practice has sessions today and this week, so check-in and the kiosk can be tried right after seeding."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.clients.models import Appointment, Episode
from services.clients.operations import check_in_appointment
from services.db import Database
from services.demo.seed import seed_demo
from services.surveys.invitations import create_kiosk_invitation

LONDON = ZoneInfo("Europe/London")


def test_the_demo_has_sessions_today_in_working_hours_that_can_be_checked_in(db: Database) -> None:
    day = date(2026, 11, 20)  # a Friday; the seed's clock is noon UTC that day
    now = datetime.combine(day, time(12), tzinfo=UTC)
    seed_demo(db, clients=36, months=3, seed=4, today=day)
    with db.session() as s:
        rows = s.execute(
            select(Appointment, Episode.clinician_id).join(Episode, Episode.id == Appointment.episode_id)
        ).all()
        today = [(a, c) for a, c in rows if a.starts_at.astimezone(LONDON).date() == day]
        assert len(today) >= 3
        for appointment, _clinician in today:
            local = appointment.starts_at.astimezone(LONDON)
            assert 8 <= local.hour <= 20
            assert appointment.status == "scheduled"
        # No clinician sees two clients at once.
        slots = [(c, a.starts_at) for a, c in today]
        assert len(slots) == len(set(slots))
        # The first one can be checked in now and put on the kiosk.
        first = min((a for a, _ in today if a.starts_at > now), key=lambda a: a.starts_at)
        check_in_appointment(s, appointment_id=first.id, now=now)
        invitation, _ = create_kiosk_invitation(s, appointment_id=first.id, created_by_id=None, now=now)
        assert invitation.status == "sent"
        week = [a for a, _ in rows if now < a.starts_at <= now + timedelta(days=7) and a.status == "scheduled"]
        open_episodes = s.scalars(select(Episode.id).where(Episode.ended_on.is_(None))).all()
        assert {a.episode_id for a in week} == set(open_episodes)  # every open episode has a session this week
        s.rollback()
