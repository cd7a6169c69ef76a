"""Front-desk queries on PostgreSQL: the roster's correlated lookups and the link lifetime setting."""

from __future__ import annotations

import secrets
from datetime import timedelta

from services.clients.queries import list_roster
from services.db import Database, utcnow
from services.practice.settings import set_setting
from services.surveys.invitations import create_link_invitation
from tests.factories import make_appointment, make_client, make_episode, make_user


def test_roster_and_link_lifetime_on_postgresql(it_db: Database) -> None:
    tag = secrets.token_hex(4)
    with it_db.session() as session:
        desk = make_user(session, role="front_desk", email=f"desk-{tag}@example.test")
        clinician = make_user(session, role="clinician", name=f"Dr Pg{tag}", email=f"pg-{tag}@example.test")
        client = make_client(session, last_name=f"Pgroster{tag}", code=f"T{tag}")
        episode = make_episode(session, client=client, clinician=clinician)
        appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(minutes=20))
        set_setting(session, "survey_link_hours", 3, user_id=desk.id)
        invitation, _ = create_link_invitation(session, appointment_id=appointment.id, created_by_id=desk.id)
        assert utcnow() + timedelta(hours=2, minutes=59) <= invitation.expires_at <= utcnow() + timedelta(hours=3)
        page = list_roster(session, desk, search=f"Pgroster{tag}")
        assert page.total == 1
        (row,) = page.items
        assert row.clinician_name == f"Dr Pg{tag}"
        assert row.next_appointment_at == appointment.starts_at
        assert row.invitation_status == "sent"
        session.rollback()
