"""Invitations: created for appointments, sent through the outbox, reminded once, expired, cancelled; their links.

Lifecycle (this module sets the front-desk half; the survey pages set opened, started and completed):
scheduled -> sent -> opened -> started -> completed, or cancelled, expired, failed. Every change is a conditional
UPDATE on the status it expects, so a repeated or concurrent run changes nothing twice; one invitation per
(appointment, phase) is a unique key.

Raw tokens are never stored. A token is minted when a link is handed out: by the outbox at the moment an email or
text is sent (the message context builder below), by the kiosk, or for a copied link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.clients.models import Appointment, Client, Episode
from services.config import Settings
from services.db import utcnow
from services.notifications.delivery import SkipDelivery, register_context_builder
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from services.practice.settings import DEFAULTS, get_setting
from services.surveys.models import Invitation, InvitationToken, Protocol
from services.surveys.policy import InvitationPolicy
from services.surveys.protocols import instruments_for, protocol_for_episode
from services.surveys.tokens import looks_like_token, new_token, token_hash

TOKEN_PURPOSES = ("email", "sms", "kiosk", "link", "reminder")
MESSAGE_CHANNELS = ("email", "sms")
# Not yet answered and not closed: what cancelling, expiring or reminding can act on.
OPEN_STATUSES = ("scheduled", "sent", "opened", "started")
# Handed out and not yet answered: a link to it works.
ANSWERABLE_STATUSES = ("sent", "opened", "started")
ACTIVE_APPOINTMENT_STATUSES = ("scheduled", "completed")
BATCH = 1000
# Hand-outs whose expiry is at least their own lifetime, whatever the appointment's times.
HAND_OUT_CHANNELS = ("kiosk", "link")
LINK_HOURS_SETTING = "survey_link_hours"
LINK_HOURS_RANGE = (1, 24 * 14)
DEFAULTS_LINK_HOURS = DEFAULTS[LINK_HOURS_SETTING]


class InvitationError(ValueError):
    """An invitation request that cannot be done, with a message fit to show."""


def survey_link(base_url: str, raw: str) -> str:
    """The link a client opens to answer."""
    return f"{base_url.rstrip('/')}/s/{raw}"


def opt_out_link(base_url: str, raw: str) -> str:
    """The link that stops messages to the client."""
    return f"{survey_link(base_url, raw)}/opt-out"


def dedupe_key(invitation_id: int, *, reminder: bool = False) -> str:
    """The outbox key of an invitation's message (or its reminder): written at most once."""
    return f"invitation:{invitation_id}:reminder" if reminder else f"invitation:{invitation_id}"


def issue_token(session: Session, invitation: Invitation, *, purpose: str) -> str:
    """Mint a new link token for an invitation; returns the raw token, of which only the hash is stored."""
    if purpose not in TOKEN_PURPOSES:
        raise InvitationError(f"Unknown token purpose {purpose!r}.")
    raw, digest = new_token()
    session.add(InvitationToken(invitation_id=invitation.id, token_hash=digest, purpose=purpose))
    session.flush()
    return raw


def find_invitation_by_token(session: Session, raw: str) -> Invitation | None:
    """The invitation a raw link token belongs to (whatever its status), or None for a malformed or unknown token."""
    if not looks_like_token(raw):
        return None
    return session.scalar(
        select(Invitation)
        .join(InvitationToken, InvitationToken.invitation_id == Invitation.id)
        .where(InvitationToken.token_hash == token_hash(raw))
    )


def choose_channel(client: Client) -> str | None:
    """How to reach a client from their consent: email, else text message, else not at all."""
    if client.opted_out_at is not None or client.archived_at is not None:
        return None
    if client.consent_email and client.email:
        return "email"
    if client.consent_sms and client.phone:
        return "sms"
    return None


def address_for(client: Client, channel: str) -> str | None:
    """The client's address on a message channel, if they consented to it."""
    if client.opted_out_at is not None or client.archived_at is not None:
        return None
    if channel == "email" and client.consent_email:
        return client.email
    if channel == "sms" and client.consent_sms:
        return client.phone
    return None


def phase_times(appointment: Appointment, phase: str, policy: InvitationPolicy) -> tuple[datetime, datetime]:
    """When an appointment's invitation of a phase is due, and when it expires."""
    if phase == "pre":
        return appointment.starts_at - policy.pre_lead, appointment.starts_at + policy.pre_grace
    return appointment.ends_at, appointment.ends_at + policy.expiry


# --- creating invitations for appointments -------------------------------------------------------------------


def _insert_invitation(session: Session, invitation: Invitation) -> Invitation | None:
    """Insert under the (appointment, phase) key; None when another transaction got there first."""
    try:
        with session.begin_nested():
            session.add(invitation)
    except IntegrityError:
        return None
    return invitation


def _without_invitation(phase: str) -> Any:
    return ~exists().where(Invitation.appointment_id == Appointment.id, Invitation.phase == phase)


def _candidates(session: Session, *conditions: Any) -> list[tuple[Appointment, Episode, Client]]:
    rows = session.execute(
        select(Appointment, Episode, Client)
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Client.opted_out_at.is_(None), Client.archived_at.is_(None), *conditions)
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(BATCH)
    ).all()
    return [(a, e, c) for a, e, c in rows]


def create_due_invitations(session: Session, *, policy: InvitationPolicy, now: datetime) -> int:
    """Create pre-session invitations once an appointment is within the lead time, post-session ones once it ends."""
    created = 0
    pre = _candidates(
        session,
        Appointment.status == "scheduled",
        Appointment.starts_at > now,
        Appointment.starts_at <= now + policy.pre_lead,
        Episode.ended_on.is_(None),
        _without_invitation("pre"),
    )
    post = _candidates(
        session,
        Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
        Appointment.ends_at <= now,
        Appointment.ends_at > now - policy.post_window,
        _without_invitation("post"),
    )
    protocols = {protocol.code: protocol for protocol in session.scalars(select(Protocol))}
    default = next((protocol for protocol in protocols.values() if protocol.is_default), None)
    for phase, rows in (("pre", pre), ("post", post)):
        for appointment, episode, client in rows:
            if phase == "post" and episode.ended_on is not None and episode.ended_on < appointment.starts_at.date():
                continue
            channel = choose_channel(client)
            instruments = instruments_for(protocols.get(episode.protocol_code, default), phase)
            if channel is None or not instruments:
                continue  # no consent yet (looked at again next run) or nothing to answer in this phase
            due_at, expires_at = phase_times(appointment, phase, policy)
            invitation = Invitation(
                episode_id=episode.id,
                appointment_id=appointment.id,
                phase=phase,
                instruments=instruments,
                channel=channel,
                status="scheduled",
                due_at=max(due_at, now) if phase == "pre" else due_at,
                expires_at=expires_at,
            )
            if _insert_invitation(session, invitation) is not None:
                created += 1
    return created


# --- sending, reminding, expiring -----------------------------------------------------------------------------


def _close(session: Session, invitation_id: int, *, status: str, reason: str, now: datetime) -> bool:
    values: dict[str, Any] = {"status": status, "last_error": reason[:500]}
    if status == "cancelled":
        values["cancelled_at"] = now
    result = session.execute(
        update(Invitation).where(Invitation.id == invitation_id, Invitation.status.in_(OPEN_STATUSES)).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _message_context(invitation: Invitation, client: Client) -> dict[str, Any]:
    # No link here: the raw token is minted when the message is sent (see invitation_message_context).
    return {"invitation_id": invitation.id, "language": client.language, "first_name": client.first_name}


def send_due_invitations(session: Session, *, now: datetime) -> list[int]:
    """Mark due invitations sent and write their messages to the outbox; returns the notification ids to publish."""
    rows = session.execute(
        select(Invitation, Client)
        .join(Episode, Episode.id == Invitation.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(
            Invitation.status == "scheduled",
            Invitation.due_at <= now,
            Invitation.channel.in_(MESSAGE_CHANNELS),
        )
        .order_by(Invitation.due_at, Invitation.id)
        .limit(BATCH)
    ).all()
    notification_ids: list[int] = []
    for invitation, client in rows:
        if invitation.expires_at <= now:
            continue  # expire_invitations closes it
        if client.opted_out_at is not None:
            _close(session, invitation.id, status="cancelled", reason="client opted out", now=now)
            continue
        channel = invitation.channel if address_for(client, invitation.channel) else choose_channel(client)
        address = address_for(client, channel) if channel else None
        if channel is None or not address:
            _close(session, invitation.id, status="cancelled", reason="no consent to any channel", now=now)
            continue
        claimed = session.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.status == "scheduled")
            .values(status="sent", sent_at=now, channel=channel, attempts=Invitation.attempts + 1)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue  # sent or cancelled by someone else meanwhile
        notification = queue_notification(
            session,
            channel=channel,
            template="invitation",
            to_address=address,
            recipient_client_id=client.id,
            context=_message_context(invitation, client),
            dedupe_key=dedupe_key(invitation.id),
        )
        notification_ids.append(notification.id)
    return notification_ids


def send_reminders(session: Session, *, policy: InvitationPolicy, now: datetime) -> list[int]:
    """One reminder for a message invitation still unanswered after the reminder delay; returns notification ids."""
    rows = session.execute(
        select(Invitation, Client)
        .join(Episode, Episode.id == Invitation.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(
            Invitation.status.in_(ANSWERABLE_STATUSES),
            Invitation.channel.in_(MESSAGE_CHANNELS),
            Invitation.reminders == 0,
            Invitation.sent_at <= now - policy.reminder_after,
            Invitation.expires_at > now + policy.reminder_margin,
            Client.opted_out_at.is_(None),
        )
        .order_by(Invitation.sent_at, Invitation.id)
        .limit(BATCH)
    ).all()
    notification_ids: list[int] = []
    for invitation, client in rows:
        address = address_for(client, invitation.channel)
        if not address:
            continue  # consent to that channel withdrawn since: no reminder
        claimed = session.execute(
            update(Invitation)
            .where(
                Invitation.id == invitation.id,
                Invitation.reminders == 0,
                Invitation.status.in_(ANSWERABLE_STATUSES),
            )
            .values(reminders=1, reminder_sent_at=now)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        notification = queue_notification(
            session,
            channel=invitation.channel,
            template="reminder",
            to_address=address,
            recipient_client_id=client.id,
            context=_message_context(invitation, client),
            dedupe_key=dedupe_key(invitation.id, reminder=True),
        )
        notification_ids.append(notification.id)
    return notification_ids


def expire_invitations(session: Session, *, now: datetime) -> int:
    """Close every open invitation whose time is up."""
    result = session.execute(
        update(Invitation)
        .where(Invitation.status.in_(OPEN_STATUSES), Invitation.expires_at <= now)
        .values(status="expired")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def mark_failed_deliveries(session: Session) -> int:
    """Invitations whose message the outbox gave up on are failed (the front desk sees them and can hand out a link)."""
    failed_message = exists().where(
        Notification.dedupe_key == literal("invitation:") + cast(Invitation.id, String),
        Notification.status == "failed",
    )
    result = session.execute(
        update(Invitation)
        .where(Invitation.status == "sent", failed_message)
        .values(status="failed", last_error="the message could not be delivered")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class DispatchResult:
    """What one dispatch run did, and the outbox rows to publish once it commits."""

    created: int = 0
    sent: int = 0
    reminded: int = 0
    expired: int = 0
    failed: int = 0
    notification_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """Counts only (for the job log)."""
        return {
            "created": self.created,
            "sent": self.sent,
            "reminded": self.reminded,
            "expired": self.expired,
            "failed": self.failed,
        }


def dispatch_invitations(session: Session, *, policy: InvitationPolicy, now: datetime | None = None) -> DispatchResult:
    """One pass of the invitation job: expire, create, send, remind, record failed deliveries. Idempotent."""
    now = now or utcnow()
    result = DispatchResult()
    result.expired = expire_invitations(session, now=now)
    result.created = create_due_invitations(session, policy=policy, now=now)
    sent = send_due_invitations(session, now=now)
    reminded = send_reminders(session, policy=policy, now=now)
    result.failed = mark_failed_deliveries(session)
    result.sent, result.reminded = len(sent), len(reminded)
    result.notification_ids = sent + reminded
    session.flush()
    return result


# --- the link in a message, built when the outbox sends it ---------------------------------------------------


def invitation_message_context(session: Session, settings: Settings, notification: Notification) -> dict[str, Any]:
    """Mint the token of an invitation or reminder message as it is sent; refuse if the invitation is closed."""
    invitation_id = notification.context.get("invitation_id")
    invitation = session.get(Invitation, invitation_id) if isinstance(invitation_id, int) else None
    if invitation is None:
        raise SkipDelivery("the invitation no longer exists")
    if invitation.status not in ANSWERABLE_STATUSES:
        raise SkipDelivery(f"the invitation is {invitation.status}")
    if invitation.expires_at <= utcnow():
        raise SkipDelivery("the invitation has expired")
    client = session.get(Client, invitation.episode.client_id)
    if client is None or client.opted_out_at is not None:
        raise SkipDelivery("the client opted out")
    purpose = "reminder" if notification.template == "reminder" else notification.channel
    raw = issue_token(session, invitation, purpose=purpose)
    from services.surveys.estimate import survey_minutes  # submission (which it plans with) imports this module

    return {
        "link": survey_link(settings.base_url, raw),
        "opt_out_link": opt_out_link(settings.base_url, raw),
        "minutes": survey_minutes(invitation.instruments or (), invitation.episode.goals or ()),
    }


register_context_builder("invitation", invitation_message_context)
register_context_builder("reminder", invitation_message_context)


# --- appointments changing -----------------------------------------------------------------------------------


def _cancel_pending_messages(session: Session, invitation_ids: list[int]) -> None:
    if not invitation_ids:
        return
    keys = [dedupe_key(i) for i in invitation_ids] + [dedupe_key(i, reminder=True) for i in invitation_ids]
    sent_now = [Notification.dedupe_key.like(f"{dedupe_key(i)}:now:%") for i in invitation_ids]
    session.execute(
        update(Notification)
        .where(or_(Notification.dedupe_key.in_(keys), *sent_now), Notification.status == "pending")
        .values(status="cancelled", last_error="invitation cancelled")
    )


def cancel_invitations(
    session: Session,
    *,
    appointment_id: int | None = None,
    client_id: int | None = None,
    reason: str,
    now: datetime | None = None,
) -> int:
    """Cancel the open invitations of an appointment or of a client, and their unsent messages."""
    now = now or utcnow()
    if (appointment_id is None) == (client_id is None):
        raise ValueError("give exactly one of appointment_id and client_id")
    if appointment_id is not None:
        scope = Invitation.appointment_id == appointment_id
    else:
        scope = Invitation.episode_id.in_(select(Episode.id).where(Episode.client_id == client_id))
    ids = list(session.scalars(select(Invitation.id).where(scope, Invitation.status.in_(OPEN_STATUSES))))
    if not ids:
        return 0
    session.execute(
        update(Invitation)
        .where(Invitation.id.in_(ids), Invitation.status.in_(OPEN_STATUSES))
        .values(status="cancelled", cancelled_at=now, last_error=reason[:500])
    )
    _cancel_pending_messages(session, ids)
    return len(ids)


def reschedule_invitations(session: Session, appointment: Appointment, *, policy: InvitationPolicy) -> int:
    """Move the times of an appointment's invitations with it (unsent ones wholly, handed-out ones' expiry)."""
    moved = 0
    for invitation in session.scalars(
        select(Invitation).where(Invitation.appointment_id == appointment.id, Invitation.status.in_(OPEN_STATUSES))
    ):
        due_at, expires_at = phase_times(appointment, invitation.phase, policy)
        if invitation.status == "scheduled":
            invitation.due_at = due_at
        if invitation.channel in HAND_OUT_CHANNELS:
            expires_at = max(expires_at, invitation.expires_at)
        invitation.expires_at = expires_at
        moved += 1
    session.flush()
    return moved


# --- kiosk and copied links ----------------------------------------------------------------------------------


def survey_link_lifetime(session: Session) -> timedelta:
    """How long a handed-out link stays open: the practice setting survey_link_hours (1 hour to 14 days)."""
    value = get_setting(session, LINK_HOURS_SETTING)
    low, high = LINK_HOURS_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        value = DEFAULTS_LINK_HOURS
    return timedelta(hours=value)


def _auto_phase(session: Session, appointment: Appointment, now: datetime) -> str:
    if now < appointment.starts_at:
        return "pre"
    if now >= appointment.ends_at:
        return "post"
    pre_done = session.scalar(
        select(Invitation.id).where(
            Invitation.appointment_id == appointment.id, Invitation.phase == "pre", Invitation.status == "completed"
        )
    )
    return "post" if pre_done else "pre"


def _hand_out(
    session: Session,
    *,
    appointment_id: int,
    created_by_id: int | None,
    channel: str,
    phase: str | None,
    policy: InvitationPolicy,
    now: datetime,
) -> tuple[Invitation, str]:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        raise InvitationError("No such appointment.")
    if appointment.status in ("cancelled", "no_show"):
        raise InvitationError("This appointment is cancelled or was missed; there is nothing to answer for it.")
    episode = appointment.episode
    client = episode.client
    if client.archived_at is not None:
        raise InvitationError("This client is archived.")
    if channel == "kiosk" and appointment.checked_in_at is None:
        raise InvitationError("Check the client in before opening the kiosk.")
    if channel == "link" and client.opted_out_at is not None:
        raise InvitationError("This client opted out of messages; offer the kiosk in person instead.")
    phase = phase or _auto_phase(session, appointment, now)
    if phase not in ("pre", "post"):
        raise InvitationError(f"Unknown phase {phase!r}.")
    instruments = instruments_for(protocol_for_episode(session, episode), phase)
    if not instruments:
        raise InvitationError(
            "This episode's protocol asks nothing before the session."
            if phase == "pre"
            else "This episode's protocol asks nothing after the session."
        )
    _, phase_expiry = phase_times(appointment, phase, policy)
    expires_at = phase_expiry
    if channel == "kiosk":
        expires_at = max(phase_expiry, now + policy.kiosk_expiry)
    elif channel == "link" and phase_expiry > now:
        # A link handed out while the appointment's window is open lasts the practice's link lifetime at least.
        expires_at = max(phase_expiry, now + survey_link_lifetime(session))
    if expires_at <= now:
        raise InvitationError("It is too late to answer for this appointment.")
    invitation = session.scalar(
        select(Invitation).where(Invitation.appointment_id == appointment.id, Invitation.phase == phase)
    )
    if invitation is None:
        invitation = _insert_invitation(
            session,
            Invitation(
                episode_id=episode.id,
                appointment_id=appointment.id,
                phase=phase,
                instruments=instruments,
                channel=channel,
                status="sent",
                due_at=now,
                sent_at=now,
                expires_at=expires_at,
                created_by_id=created_by_id,
            ),
        )
        if invitation is None:  # created by the dispatch job a moment ago: hand that one out
            invitation = session.scalar(
                select(Invitation).where(Invitation.appointment_id == appointment.id, Invitation.phase == phase)
            )
            assert invitation is not None
    if invitation.status == "completed":
        raise InvitationError("The client has already answered this questionnaire.")
    if invitation.status in ANSWERABLE_STATUSES:
        # Already out by message: the same invitation, one more way in. Its channel stays where it was sent.
        invitation.expires_at = max(invitation.expires_at, expires_at)
    else:
        # Not sent yet, or closed (expired, failed, cancelled while the appointment still stands): hand it out now.
        invitation.channel = channel
        invitation.status = "sent"
        invitation.sent_at = now
        invitation.due_at = min(invitation.due_at, now)
        invitation.expires_at = expires_at
        invitation.cancelled_at = None
        invitation.last_error = None
        invitation.instruments = invitation.instruments or instruments
        if invitation.created_by_id is None:
            invitation.created_by_id = created_by_id
    session.flush()
    raw = issue_token(session, invitation, purpose=channel)
    return invitation, raw


def create_kiosk_invitation(
    session: Session,
    *,
    appointment_id: int,
    created_by_id: int | None,
    phase: str | None = None,
    policy: InvitationPolicy | None = None,
    now: datetime | None = None,
) -> tuple[Invitation, str]:
    """Hand an invitation to the practice tablet for a checked-in client; returns it and the raw token (not stored)."""
    return _hand_out(
        session,
        appointment_id=appointment_id,
        created_by_id=created_by_id,
        channel="kiosk",
        phase=phase,
        policy=policy or InvitationPolicy(),
        now=now or utcnow(),
    )


def create_link_invitation(
    session: Session,
    *,
    appointment_id: int,
    created_by_id: int | None,
    phase: str | None = None,
    policy: InvitationPolicy | None = None,
    now: datetime | None = None,
) -> tuple[Invitation, str]:
    """Make a link the front desk can copy and pass on (shown once); returns the invitation and the raw token."""
    return _hand_out(
        session,
        appointment_id=appointment_id,
        created_by_id=created_by_id,
        channel="link",
        phase=phase,
        policy=policy or InvitationPolicy(),
        now=now or utcnow(),
    )


SEND_NOW_LIMIT = 3


def send_invitation_now(
    session: Session, *, invitation_id: int, channel: str, now: datetime | None = None
) -> Notification:
    """Queue a handed-out invitation's link by email or text message now, if the client agreed to that channel.

    The outbox row is keyed by the minute, so a double click sends one message; at most SEND_NOW_LIMIT per
    invitation. The message mints its own token when the worker sends it (after the caller's commit).
    """
    now = now or utcnow()
    if channel not in MESSAGE_CHANNELS:
        raise InvitationError(f"Unknown channel {channel!r}.")
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise InvitationError("No such invitation.")
    if invitation.status not in ANSWERABLE_STATUSES or invitation.expires_at <= now:
        raise InvitationError("This invitation is closed; make a new link for the appointment.")
    client = invitation.episode.client
    if client.opted_out_at is not None or client.archived_at is not None:
        raise InvitationError("This client opted out of messages; offer the kiosk in person instead.")
    address = address_for(client, channel)
    if not address:
        raise InvitationError(
            "The client has not agreed to email, or has no email address: record their consent first."
            if channel == "email"
            else "The client has not agreed to text messages, or has no mobile number: record their consent first."
        )
    prefix = f"{dedupe_key(invitation.id)}:now:"
    key = f"{prefix}{now:%Y%m%dT%H%M}"
    earlier = list(session.scalars(select(Notification.dedupe_key).where(Notification.dedupe_key.like(f"{prefix}%"))))
    if key not in earlier and len(earlier) >= SEND_NOW_LIMIT:
        raise InvitationError("This link was already sent three times; check the address with the client.")
    if invitation.channel == "link":
        invitation.channel = channel  # now out by message: counted, and reminded, as one
    session.flush()
    return queue_notification(
        session,
        channel=channel,
        template="invitation",
        to_address=address,
        recipient_client_id=client.id,
        context=_message_context(invitation, client),
        dedupe_key=key,
    )


def cancel_invitation(session: Session, *, invitation_id: int, reason: str, now: datetime | None = None) -> bool:
    """Cancel one open invitation and its unsent messages; False when it was already closed."""
    now = now or utcnow()
    if not _close(session, invitation_id, status="cancelled", reason=reason, now=now):
        return False
    _cancel_pending_messages(session, [invitation_id])
    return True
