"""Client verbs: enrol a client, open an episode, add, move, cancel and check in appointments. They flush; the caller
commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import Role, User
from services.alerts.operations import close_alerts_of_ended_episodes
from services.audit.operations import record_event
from services.clients.codes import generate_client_code
from services.clients.models import Appointment, Client, Episode
from services.clients.phones import DEFAULT_REGION, PhoneNumberError, normalise_phone
from services.db import utcnow
from services.i18n import N_, UserError
from services.inputs import InputError, check_plausible_date, normalise_email_address
from services.surveys.invitations import cancel_invitations, reschedule_invitations
from services.surveys.policy import InvitationPolicy
from services.surveys.protocols import get_protocol

LANGUAGES = ("en", "es")
MAX_GOALS = 3
MAX_GOAL_LENGTH = 300
CLINICAL_ROLES = (Role.CLINICIAN.value, Role.SUPERVISOR.value)
MAX_APPOINTMENT = timedelta(hours=8)
MAX_SOURCE_LENGTH = 20
MAX_EXTERNAL_ID_LENGTH = 200
# Check-in is for today's appointments: from this long before the start to this long after the end.
CHECK_IN_BEFORE = timedelta(hours=12)
CHECK_IN_AFTER = timedelta(hours=2)


class ClientError(UserError):
    """A request about a client or episode that cannot be done, with a message fit to show (see services.i18n)."""


def _unique_code(session: Session) -> str:
    for _ in range(10):
        code = generate_client_code()
        if not session.scalar(select(func.count()).select_from(Client).where(Client.code == code)):
            return code
    raise ClientError(N_("Could not generate a unique client code; try again."))  # 25^7 codes: never in practice


def _clean_name(value: str, what: tuple[str, str]) -> str:
    value = " ".join(value.split())
    if not value:
        raise ClientError(what[0])
    if len(value) > 100:
        raise ClientError(what[1])
    return value


@dataclass(frozen=True)
class ContactDetails:
    """A client's cleaned name, contacts, language and consent."""

    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    language: str
    consent_email: bool
    consent_sms: bool


def clean_contact_details(
    *,
    first_name: str,
    last_name: str,
    email: str | None = None,
    phone: str | None = None,
    language: str = "en",
    consent_email: bool = False,
    consent_sms: bool = False,
    phone_region: str = DEFAULT_REGION,
) -> ContactDetails:
    """Validate and normalise what the front desk enters about a client (raises ClientError); phones become E.164."""
    phone = " ".join((phone or "").split()) or None
    try:
        email = normalise_email_address(email) if email and email.strip() else None
    except InputError as exc:
        raise ClientError(exc.message) from None
    if phone is not None:
        try:
            phone = normalise_phone(phone, region=phone_region, for_sms=consent_sms)
        except PhoneNumberError as exc:
            raise ClientError(exc.message) from None
    if language not in LANGUAGES:
        raise ClientError(
            N_("Unknown language %(language)r; choose one of: %(choices)s."),
            language=language,
            choices=", ".join(LANGUAGES),
        )
    if consent_email and email is None:
        raise ClientError(N_("Consent to email needs an email address."))
    if consent_sms and phone is None:
        raise ClientError(N_("Consent to text messages needs a phone number."))
    return ContactDetails(
        first_name=_clean_name(
            first_name, (N_("A client needs a first name."), N_("The first name is longer than 100 characters."))
        ),
        last_name=_clean_name(
            last_name, (N_("A client needs a last name."), N_("The last name is longer than 100 characters."))
        ),
        email=email,
        phone=phone,
        language=language,
        consent_email=consent_email,
        consent_sms=consent_sms,
    )


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
    phone_region: str = DEFAULT_REGION,
) -> Client:
    """Enrol a client under a newly generated pseudonymous code (a phone without a country code is in phone_region)."""
    details = clean_contact_details(
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        language=language,
        consent_email=consent_email,
        consent_sms=consent_sms,
        phone_region=phone_region,
    )
    client = Client(code=_unique_code(session), **asdict(details))
    session.add(client)
    session.flush()
    return client


def update_client(
    session: Session,
    *,
    client_id: int,
    first_name: str,
    last_name: str,
    email: str | None = None,
    phone: str | None = None,
    language: str = "en",
    consent_email: bool = False,
    consent_sms: bool = False,
    phone_region: str = DEFAULT_REGION,
) -> Client:
    """Correct a client's name, contacts, language or consent (withdrawn consent stops messages on that channel)."""
    client = session.get(Client, client_id)
    if client is None:
        raise ClientError(N_("No such client."))
    details = clean_contact_details(
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        language=language,
        consent_email=consent_email,
        consent_sms=consent_sms,
        phone_region=phone_region,
    )
    for name, value in asdict(details).items():
        setattr(client, name, value)
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
        raise ClientError(N_("No such client."))
    if client.archived_at is not None:
        raise ClientError(N_("This client is archived; restore the record before opening an episode."))
    clinician = session.get(User, clinician_id)
    if clinician is None or not clinician.active or clinician.role not in CLINICAL_ROLES:
        raise ClientError(N_("Choose an active clinician or supervisor for the episode."))
    if get_protocol(session, protocol_code) is None:
        raise ClientError(N_("Unknown measurement protocol %(code)r."), code=protocol_code)
    cleaned = [" ".join(goal.split()) for goal in goals]
    cleaned = [goal for goal in cleaned if goal]
    if len(cleaned) > MAX_GOALS:
        raise ClientError(N_("An episode has at most %(max)d goals."), max=MAX_GOALS)
    if any(len(goal) > MAX_GOAL_LENGTH for goal in cleaned):
        raise ClientError(N_("Each goal has at most %(max)d characters."), max=MAX_GOAL_LENGTH)
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
        raise ClientError(N_("This client already has an open episode with this clinician."))
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


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ClientError(N_("Appointment times need a time zone."))
    try:
        check_plausible_date(starts_at)
        check_plausible_date(ends_at)
    except InputError as exc:
        raise ClientError(exc.message) from None
    if ends_at <= starts_at:
        raise ClientError(N_("An appointment must end after it starts."))
    if ends_at - starts_at > MAX_APPOINTMENT:
        raise ClientError(N_("An appointment lasts at most 8 hours."))


def add_appointment(
    session: Session,
    *,
    episode_id: int,
    starts_at: datetime,
    ends_at: datetime,
    source: str = "manual",
    external_id: str | None = None,
) -> Appointment:
    """Add a scheduled appointment to an open episode (an imported one carries its calendar's id)."""
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise ClientError(N_("No such episode."))
    if episode.ended_on is not None:
        raise ClientError(N_("This episode has ended; open a new one to add appointments."))
    if episode.client.archived_at is not None:
        raise ClientError(N_("This client is archived."))
    _check_times(starts_at, ends_at)
    source = source.strip()
    if not source or len(source) > MAX_SOURCE_LENGTH:
        raise ClientError(N_("The source is 1 to %(max)d characters."), max=MAX_SOURCE_LENGTH)
    external_id = (external_id or "").strip() or None
    if external_id is not None:
        if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
            raise ClientError(N_("The calendar id is longer than %(max)d characters."), max=MAX_EXTERNAL_ID_LENGTH)
        taken = session.scalar(
            select(Appointment.id).where(Appointment.source == source, Appointment.external_id == external_id)
        )
        if taken is not None:
            raise ClientError(N_("An appointment with this calendar id already exists."))
    appointment = Appointment(
        episode_id=episode.id,
        starts_at=starts_at,
        ends_at=ends_at,
        status="scheduled",
        source=source,
        external_id=external_id,
    )
    session.add(appointment)
    session.flush()
    return appointment


def _appointment(session: Session, appointment_id: int) -> Appointment:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        raise ClientError(N_("No such appointment."))
    return appointment


def reschedule_appointment(
    session: Session,
    *,
    appointment_id: int,
    starts_at: datetime,
    ends_at: datetime,
    policy: InvitationPolicy | None = None,
) -> Appointment:
    """Move a scheduled appointment; its invitations move with it."""
    appointment = _appointment(session, appointment_id)
    if appointment.status != "scheduled":
        raise ClientError(N_("Only a scheduled appointment can be moved."))
    _check_times(starts_at, ends_at)
    if (appointment.starts_at, appointment.ends_at) == (starts_at, ends_at):
        return appointment
    appointment.starts_at, appointment.ends_at = starts_at, ends_at
    appointment.checked_in_at = None
    session.flush()
    reschedule_invitations(session, appointment, policy=policy or InvitationPolicy())
    return appointment


def cancel_appointment(
    session: Session, *, appointment_id: int, reason: str = "appointment cancelled", now: datetime | None = None
) -> Appointment:
    """Cancel an appointment and every invitation of it not yet answered (a repeat is harmless)."""
    appointment = _appointment(session, appointment_id)
    if appointment.status == "cancelled":
        return appointment
    if appointment.status != "scheduled":
        raise ClientError(N_("This appointment already took place or was missed; it cannot be cancelled."))
    appointment.status = "cancelled"
    appointment.checked_in_at = None
    appointment.detail = {**appointment.detail, "cancel_reason": reason[:200]}
    session.flush()
    cancel_invitations(session, appointment_id=appointment.id, reason=reason, now=now)
    return appointment


def check_in_appointment(session: Session, *, appointment_id: int, now: datetime | None = None) -> Appointment:
    """Record that the client has arrived for today's appointment (the kiosk needs it)."""
    now = now or utcnow()
    appointment = _appointment(session, appointment_id)
    if appointment.status != "scheduled":
        raise ClientError(N_("Only a scheduled appointment can be checked in."))
    if not (appointment.starts_at - CHECK_IN_BEFORE <= now <= appointment.ends_at + CHECK_IN_AFTER):
        raise ClientError(N_("Clients can be checked in only on the day of their appointment."))
    if appointment.checked_in_at is None:
        appointment.checked_in_at = now
        session.flush()
    return appointment


def end_episode(
    session: Session, *, episode_id: int, ended_on: date, actor_id: int | None = None, now: datetime | None = None
) -> Episode:
    """End an episode of care (audited): later sessions are cancelled, open alerts close as "episode ended"."""
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise ClientError("No such episode.")
    if episode.ended_on is not None:
        raise ClientError("This episode has already ended.")
    if ended_on < episode.started_on:
        raise ClientError("An episode cannot end before it started.")
    episode.ended_on = ended_on
    session.flush()
    now = now or utcnow()
    later = session.scalars(
        select(Appointment.id).where(
            Appointment.episode_id == episode.id,
            Appointment.status == "scheduled",
            Appointment.starts_at >= max(now, datetime.combine(ended_on + timedelta(days=1), time.min, tzinfo=UTC)),
        )
    )
    for appointment_id in list(later):
        cancel_appointment(session, appointment_id=appointment_id, reason="episode ended", now=now)
    record_event(
        session,
        action="episode_ended",
        actor_id=actor_id,
        subject_type="episode",
        subject_id=episode.id,
        client_id=episode.client_id,
        detail={"ended_on": ended_on.isoformat()},
    )
    close_alerts_of_ended_episodes(session, today=now.date(), episode_id=episode.id, now=now)
    return episode
