"""Client verbs: enrol a client, open an episode of care. They flush; the caller commits."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import Role, User
from services.clients.models import Client, Episode

# No look-alike characters (0/O, 1/I/L, 2/Z, 5/S, 8/B), so a code read aloud or copied by hand survives.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 7
LANGUAGES = ("en", "es")
MAX_GOALS = 3
MAX_GOAL_LENGTH = 300
CLINICAL_ROLES = (Role.CLINICIAN.value, Role.SUPERVISOR.value)


class ClientError(ValueError):
    """A request about a client or episode that cannot be done, with a message fit to show."""


def generate_client_code() -> str:
    """A random pseudonymous client code such as ``C4KXHM7Q`` (carries nothing about the person)."""
    return "C" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _unique_code(session: Session) -> str:
    for _ in range(10):
        code = generate_client_code()
        if not session.scalar(select(func.count()).select_from(Client).where(Client.code == code)):
            return code
    raise ClientError("Could not generate a unique client code; try again.")  # 25^7 codes: never in practice


def _clean_name(value: str, what: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ClientError(f"A client needs a {what}.")
    if len(value) > 100:
        raise ClientError(f"The {what} is longer than 100 characters.")
    return value


def create_client(
    session: Session,
    *,
    first_name: str,
    last_name: str,
    email: str | None = None,
    phone: str | None = None,
    language: str = "en",
    consent_email: bool = False,
    consent_sms: bool = False,
) -> Client:
    """Enrol a client under a newly generated pseudonymous code."""
    email = (email or "").strip().lower() or None
    phone = " ".join((phone or "").split()) or None
    if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 254):
        raise ClientError(f"{email!r} is not a valid email address.")
    if phone is not None and len(phone) > 40:
        raise ClientError("The phone number is longer than 40 characters.")
    if language not in LANGUAGES:
        raise ClientError(f"Unknown language {language!r}; choose one of: {', '.join(LANGUAGES)}.")
    if consent_email and email is None:
        raise ClientError("Consent to email needs an email address.")
    if consent_sms and phone is None:
        raise ClientError("Consent to text messages needs a phone number.")
    client = Client(
        code=_unique_code(session),
        first_name=_clean_name(first_name, "first name"),
        last_name=_clean_name(last_name, "last name"),
        email=email,
        phone=phone,
        language=language,
        consent_email=consent_email,
        consent_sms=consent_sms,
    )
    session.add(client)
    session.flush()
    return client


def open_episode(
    session: Session,
    *,
    client_id: int,
    clinician_id: int,
    started_on: date,
    protocol_code: str = "standard",
    goals: Sequence[str] = (),
) -> Episode:
    """Open an episode of care for a client with a clinician (up to three goals in the client's words)."""
    client = session.get(Client, client_id)
    if client is None:
        raise ClientError("No such client.")
    if client.archived_at is not None:
        raise ClientError("This client is archived; restore the record before opening an episode.")
    clinician = session.get(User, clinician_id)
    if clinician is None or not clinician.active or clinician.role not in CLINICAL_ROLES:
        raise ClientError("Choose an active clinician or supervisor for the episode.")
    cleaned = [" ".join(goal.split()) for goal in goals]
    cleaned = [goal for goal in cleaned if goal]
    if len(cleaned) > MAX_GOALS:
        raise ClientError(f"An episode has at most {MAX_GOALS} goals.")
    if any(len(goal) > MAX_GOAL_LENGTH for goal in cleaned):
        raise ClientError(f"Each goal has at most {MAX_GOAL_LENGTH} characters.")
    already_open = session.scalar(
        select(func.count())
        .select_from(Episode)
        .where(
            Episode.client_id == client_id,
            Episode.clinician_id == clinician_id,
            Episode.ended_on.is_(None),
        )
    )
    if already_open:
        raise ClientError("This client already has an open episode with this clinician.")
    episode = Episode(
        client_id=client_id,
        clinician_id=clinician_id,
        started_on=started_on,
        protocol_code=protocol_code,
        goals=cleaned,
    )
    session.add(episode)
    session.flush()
    return episode
