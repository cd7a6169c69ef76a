"""Front-desk test fixtures: the web helpers (login, CSRF, staff) and a small practice to work on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.clients.models import Appointment, Client, Episode
from services.db import utcnow
from services.surveys.policy import InvitationPolicy
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.unit.web.conftest import _quick_argon2, make_app, signed_in, staff  # noqa: F401 - fixtures

POLICY = InvitationPolicy()


@dataclass
class Booking:
    """A client with an open episode and one appointment."""

    client: Client
    episode: Episode
    appointment: Appointment
    clinician: User


@pytest.fixture
def book(session: Session) -> Callable[..., Booking]:
    """book(starts_in=timedelta(hours=20), consent_email=True, ...) -> a client, episode and appointment."""

    def build(
        *,
        starts_in: timedelta = timedelta(hours=20),
        minutes: int = 50,
        clinician: User | None = None,
        protocol_code: str = "standard",
        now: datetime | None = None,
        **client_fields: object,
    ) -> Booking:
        clinician = clinician or make_user(session, role="clinician")
        client = make_client(session, **client_fields)
        episode = make_episode(session, client=client, clinician=clinician, protocol_code=protocol_code)
        starts_at = (now or utcnow()) + starts_in
        appointment = make_appointment(session, episode=episode, starts_at=starts_at)
        appointment.ends_at = starts_at + timedelta(minutes=minutes)
        session.flush()
        return Booking(client=client, episode=episode, appointment=appointment, clinician=clinician)

    return build
