"""Small factories for synthetic test data (no real names, ever)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_user
from services.clients.models import Appointment, Client, Episode

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_user(session: Session, *, role: str = "clinician", team: str | None = "Team North", **kw: Any) -> User:
    """A staff user with the shared test password."""
    n = next(_seq)
    email = kw.pop("email", f"{role}{n}@example.test")
    return create_user(
        session,
        email=email,
        password=PASSWORD,
        role=role,
        team=team,
        name=kw.pop("name", f"{role.title()} {n}"),
        **kw,
    )


def make_client(session: Session, **kw: Any) -> Client:
    """A synthetic client."""
    n = next(_seq)
    client = Client(
        code=kw.pop("code", f"T{n:05d}"),
        first_name=kw.pop("first_name", f"Testa{n}"),
        last_name=kw.pop("last_name", f"Person{n}"),
        email=kw.pop("email", f"client{n}@example.test"),
        language=kw.pop("language", "en"),
        consent_email=kw.pop("consent_email", True),
        **kw,
    )
    session.add(client)
    session.flush()
    return client


def make_episode(
    session: Session, *, client: Client | None = None, clinician: User | None = None, **kw: Any
) -> Episode:
    """An open episode for a client with a clinician."""
    client = client or make_client(session)
    clinician = clinician or make_user(session, role="clinician")
    episode = Episode(
        client_id=client.id,
        clinician_id=clinician.id,
        started_on=kw.pop("started_on", date(2026, 1, 5)),
        goals=kw.pop("goals", ["Sleep through the night"]),
        **kw,
    )
    session.add(episode)
    session.flush()
    return episode


def make_appointment(
    session: Session, *, episode: Episode, starts_at: datetime | None = None, **kw: Any
) -> Appointment:
    """A 50-minute appointment."""
    starts_at = starts_at or datetime(2026, 1, 12, 10, tzinfo=UTC)
    appt = Appointment(episode_id=episode.id, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=50), **kw)
    session.add(appt)
    session.flush()
    return appt
