"""Invitations: created before and after appointments, sent by consent, reminded once, expired, cancelled, linked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes
from email.message import Message

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.clients.operations import cancel_appointment, check_in_appointment, reschedule_appointment
from services.config import Settings
from services.db import Database, utcnow
from services.notifications.delivery import Outcome, deliver_notification
from services.notifications.models import Notification
from services.notifications.operations import mark_attempt_failed
from services.surveys.invitations import (
    InvitationError,
    cancel_invitation,
    cancel_invitations,
    create_kiosk_invitation,
    create_link_invitation,
    dispatch_invitations,
    find_invitation_by_token,
    issue_token,
)
from services.surveys.models import Invitation, InvitationToken
from services.surveys.policy import InvitationPolicy
from services.surveys.tokens import new_token, token_hash
from tests.unit.frontdesk.conftest import POLICY, Booking


def text_of(message: Message) -> str:
    """The decoded plain-text body of a message."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def invitations(session: Session, booking: Booking) -> dict[str, Invitation]:
    """The booking's invitations by phase, fresh from the database."""
    session.expire_all()
    rows = session.scalars(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    return {row.phase: row for row in rows}


def notifications(session: Session, client_id: int) -> list[Notification]:
    """Outbox rows for a client, oldest first."""
    session.expire_all()
    return list(
        session.scalars(
            select(Notification).where(Notification.recipient_client_id == client_id).order_by(Notification.id)
        )
    )


def test_pre_session_invitation_is_created_within_the_lead_time_and_sent_by_email(
    session: Session, book: Callable[..., Booking]
) -> None:
    booking = book(starts_in=timedelta(hours=20), consent_email=True)
    far = book(starts_in=timedelta(hours=30))
    now = utcnow()
    result = dispatch_invitations(session, policy=POLICY, now=now)
    assert (result.created, result.sent) == (1, 1)
    pre = invitations(session, booking)["pre"]
    assert (pre.status, pre.channel, pre.sent_at) == ("sent", "email", now)
    assert pre.instruments == ["PHQ-9", "GAD-7", "GOAL-PROGRESS"]
    assert pre.expires_at == booking.appointment.starts_at + POLICY.pre_grace
    assert invitations(session, far) == {}
    [message] = notifications(session, booking.client.id)
    assert (message.template, message.channel, message.to_address) == ("invitation", "email", booking.client.email)
    assert message.context == {
        "invitation_id": pre.id,
        "language": "en",
        "first_name": booking.client.first_name,
    }
    assert "link" not in message.context  # the raw token exists only when the message is sent
    assert result.notification_ids == [message.id]


def test_dispatch_twice_changes_nothing_the_second_time(session: Session, book: Callable[..., Booking]) -> None:
    booking = book()
    now = utcnow()
    dispatch_invitations(session, policy=POLICY, now=now)
    again = dispatch_invitations(session, policy=POLICY, now=now + timedelta(minutes=1))
    assert again.as_dict() == {"created": 0, "sent": 0, "reminded": 0, "expired": 0, "failed": 0}
    assert len(notifications(session, booking.client.id)) == 1
    assert session.scalar(select(func.count()).select_from(Invitation)) == 1


def test_channel_follows_consent_email_then_sms_then_none(session: Session, book: Callable[..., Booking]) -> None:
    by_sms = book(consent_email=False, consent_sms=True, phone="+44 7700 900123")
    by_email = book(consent_email=True, consent_sms=True, phone="+44 7700 900124")
    unreachable = book(consent_email=False, consent_sms=False)
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    assert invitations(session, by_sms)["pre"].channel == "sms"
    assert notifications(session, by_sms.client.id)[0].to_address == "+44 7700 900123"
    assert invitations(session, by_email)["pre"].channel == "email"
    assert invitations(session, unreachable) == {}
    assert notifications(session, unreachable.client.id) == []
    # Consent given later: the next run picks the appointment up.
    unreachable.client.consent_email = True
    session.flush()
    dispatch_invitations(session, policy=POLICY, now=utcnow() + timedelta(minutes=1))
    assert invitations(session, unreachable)["pre"].status == "sent"


def test_opted_out_and_archived_clients_get_nothing(session: Session, book: Callable[..., Booking]) -> None:
    opted_out = book(opted_out_at=utcnow() - timedelta(days=1))
    archived = book(archived_at=utcnow() - timedelta(days=1))
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    assert invitations(session, opted_out) == {}
    assert invitations(session, archived) == {}
    assert notifications(session, opted_out.client.id) == notifications(session, archived.client.id) == []


def scheduled(session: Session, booking: Booking, *, due_in: timedelta, channel: str = "email") -> Invitation:
    """An invitation written but not yet sent (as after a reschedule or a change of policy)."""
    now = utcnow()
    invitation = Invitation(
        episode_id=booking.episode.id,
        appointment_id=booking.appointment.id,
        phase="pre",
        instruments=["PHQ-9"],
        channel=channel,
        status="scheduled",
        due_at=now + due_in,
        expires_at=booking.appointment.starts_at + POLICY.pre_grace,
    )
    session.add(invitation)
    session.flush()
    return invitation


def test_opting_out_after_scheduling_cancels_at_send_time(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=20))
    invitation = scheduled(session, booking, due_in=timedelta(minutes=-1))
    booking.client.opted_out_at = utcnow()
    session.flush()
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    assert invitations(session, booking)["pre"].status == "cancelled"
    assert invitations(session, booking)["pre"].id == invitation.id
    assert notifications(session, booking.client.id) == []


def test_withdrawn_email_consent_falls_back_to_sms_at_send_time(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=20), consent_sms=True, phone="+44 7700 900126")
    scheduled(session, booking, due_in=timedelta(hours=1))
    now = utcnow()
    assert dispatch_invitations(session, policy=POLICY, now=now).sent == 0  # not due yet
    booking.client.consent_email = False
    session.flush()
    dispatch_invitations(session, policy=POLICY, now=now + timedelta(hours=1, minutes=1))
    pre = invitations(session, booking)["pre"]
    assert (pre.status, pre.channel) == ("sent", "sms")
    assert [n.to_address for n in notifications(session, booking.client.id)] == ["+44 7700 900126"]
    # With no consent left at all, a waiting invitation is cancelled rather than sent.
    other = book(starts_in=timedelta(hours=20))
    scheduled(session, other, due_in=timedelta(minutes=-1))
    other.client.consent_email = False
    session.flush()
    dispatch_invitations(session, policy=POLICY, now=now + timedelta(hours=2))
    assert invitations(session, other)["pre"].status == "cancelled"


def test_post_session_invitation_goes_out_when_the_session_ends(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(minutes=-40), minutes=50)
    now = utcnow()
    dispatch_invitations(session, policy=POLICY, now=now)
    assert "post" not in invitations(session, booking)
    after = now + timedelta(minutes=11)
    result = dispatch_invitations(session, policy=POLICY, now=after)
    post = invitations(session, booking)["post"]
    assert (post.status, post.instruments) == ("sent", ["PARTNERSHIP-CHECK"])
    assert post.expires_at == booking.appointment.ends_at + POLICY.expiry
    assert result.sent == 1


def test_old_appointments_and_protocols_without_a_phase_get_no_invitation(
    session: Session, book: Callable[..., Booking]
) -> None:
    long_ago = book(starts_in=timedelta(days=-3))
    alliance_only = book(starts_in=timedelta(hours=20), protocol_code="alliance_only")
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    assert invitations(session, long_ago) == {}
    assert invitations(session, alliance_only) == {}


def test_reminder_is_sent_once_and_only_while_unanswered(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(minutes=-60), minutes=50)
    answered = book(starts_in=timedelta(minutes=-60), minutes=50)
    now = utcnow()
    dispatch_invitations(session, policy=POLICY, now=now)
    done = invitations(session, answered)["post"]
    done.status, done.completed_at = "completed", now + timedelta(hours=1)
    session.flush()
    for hours in (11, 13, 14, 30):
        dispatch_invitations(session, policy=POLICY, now=now + timedelta(hours=hours))
    post = invitations(session, booking)["post"]
    assert post.reminders == 1
    assert post.reminder_sent_at == now + timedelta(hours=13)
    assert [n.template for n in notifications(session, booking.client.id)] == ["invitation", "reminder"]
    assert [n.template for n in notifications(session, answered.client.id)] == ["invitation"]


def test_no_reminder_when_the_invitation_is_about_to_expire(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=13))
    now = utcnow()
    dispatch_invitations(session, policy=POLICY, now=now)
    # Sent 13 h before the start; 12 h later the link closes within the hour (start + 30 min): no reminder.
    dispatch_invitations(session, policy=POLICY, now=now + timedelta(hours=12, minutes=45))
    assert invitations(session, booking)["pre"].reminders == 0


def test_invitations_expire_after_their_time(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=2))
    now = utcnow()
    dispatch_invitations(session, policy=POLICY, now=now)
    result = dispatch_invitations(session, policy=POLICY, now=now + timedelta(hours=2, minutes=31))
    assert result.expired == 1
    assert invitations(session, booking)["pre"].status == "expired"


def test_cancelling_an_appointment_cancels_its_invitations_and_unsent_messages(
    session: Session, book: Callable[..., Booking]
) -> None:
    booking = book(starts_in=timedelta(hours=20))
    now = utcnow()
    dispatch_invitations(session, policy=POLICY, now=now)
    cancel_appointment(session, appointment_id=booking.appointment.id, now=now)
    assert booking.appointment.status == "cancelled"
    assert invitations(session, booking)["pre"].status == "cancelled"
    [message] = notifications(session, booking.client.id)
    assert message.status == "cancelled"
    # Cancelled before the dispatch ever ran: nothing is created at all.
    other = book(starts_in=timedelta(hours=20))
    cancel_appointment(session, appointment_id=other.appointment.id, now=now)
    dispatch_invitations(session, policy=POLICY, now=now + timedelta(minutes=1))
    assert invitations(session, other) == {}
    assert notifications(session, other.client.id) == []


def test_a_message_whose_invitation_was_cancelled_is_not_delivered(
    db: Database, test_settings: Settings, book: Callable[..., Booking], session: Session
) -> None:
    booking = book()
    with db.unit_of_work() as s:
        result = dispatch_invitations(s, policy=POLICY, now=utcnow())
        [notification_id] = result.notification_ids
        # Claimed by a worker after the cancel slipped in (the status changed, the outbox row did not).
        s.execute(Invitation.__table__.update().values(status="cancelled"))
    assert deliver_notification(db, test_settings, notification_id) is Outcome.SKIPPED
    with db.session() as s:
        row = s.get(Notification, notification_id)
        assert row is not None
        assert (row.status, row.last_error) == ("cancelled", "the invitation is cancelled")
        assert s.scalar(select(func.count()).select_from(InvitationToken)) == 0
    assert booking.client.email is not None


def test_delivery_mints_a_token_that_finds_the_invitation(
    db: Database, test_settings: Settings, book: Callable[..., Booking]
) -> None:
    booking = book(first_name="Ines", last_name="Zubiri-Example")
    with db.unit_of_work() as s:
        [notification_id] = dispatch_invitations(s, policy=POLICY, now=utcnow()).notification_ids
    assert deliver_notification(db, test_settings, notification_id) is Outcome.SENT
    message = message_from_bytes((test_settings.outbox_dir / f"email-{notification_id:08d}.eml").read_bytes())
    body = text_of(message)
    [link] = [w for w in body.split() if w.startswith("http://rapport.test/s/") and not w.endswith("/opt-out")]
    raw = link.rsplit("/", 1)[1]
    assert f"http://rapport.test/s/{raw}/opt-out" in body
    assert "Ines" in body
    for leak in ("Zubiri", "PHQ", "GAD", "Partnership", "score"):
        assert leak not in body
        assert leak not in str(message["Subject"])
    with db.session() as s:
        found = find_invitation_by_token(s, raw)
        assert found is not None
        assert found.appointment_id == booking.appointment.id
        token = s.scalar(select(InvitationToken).where(InvitationToken.invitation_id == found.id))
        assert token is not None
        assert (token.purpose, token.token_hash) == ("email", token_hash(raw))
        assert raw not in str(s.get(Notification, notification_id).context)  # type: ignore[union-attr]


def test_find_invitation_by_token_refuses_malformed_and_unknown_tokens(
    session: Session, book: Callable[..., Booking]
) -> None:
    booking = book()
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    invitation = invitations(session, booking)["pre"]
    raw = issue_token(session, invitation, purpose="link")
    assert find_invitation_by_token(session, raw) is invitation
    assert find_invitation_by_token(session, raw[:-1]) is None
    assert find_invitation_by_token(session, raw + "x") is None
    assert find_invitation_by_token(session, "../../etc/passwd") is None
    assert find_invitation_by_token(session, new_token()[0]) is None
    # A second token for the same invitation works too (a reminder's link, the kiosk's).
    second = issue_token(session, invitation, purpose="reminder")
    assert second != raw
    assert find_invitation_by_token(session, second) is invitation
    with pytest.raises(InvitationError):
        issue_token(session, invitation, purpose="fax")


def test_reminder_link_is_a_new_token(db: Database, test_settings: Settings, book: Callable[..., Booking]) -> None:
    book(starts_in=timedelta(minutes=-60), minutes=50)
    now = utcnow()
    with db.unit_of_work() as s:
        [first] = dispatch_invitations(s, policy=POLICY, now=now).notification_ids
    with db.unit_of_work() as s:
        [reminder] = dispatch_invitations(s, policy=POLICY, now=now + timedelta(hours=13)).notification_ids
    assert deliver_notification(db, test_settings, first) is Outcome.SENT
    assert deliver_notification(db, test_settings, reminder) is Outcome.SENT
    with db.session() as s:
        purposes = sorted(s.scalars(select(InvitationToken.purpose)))
        assert purposes == ["email", "reminder"]
    body = text_of(message_from_bytes((test_settings.outbox_dir / f"email-{reminder:08d}.eml").read_bytes()))
    assert "reminder" in body.lower()


def test_failed_delivery_marks_the_invitation_failed(session: Session, book: Callable[..., Booking]) -> None:
    booking = book()
    now = utcnow()
    [notification_id] = dispatch_invitations(session, policy=POLICY, now=now).notification_ids
    mark_attempt_failed(session, notification_id, error="recipient refused", retry=False, max_attempts=5)
    result = dispatch_invitations(session, policy=POLICY, now=now + timedelta(minutes=1))
    assert result.failed == 1
    assert invitations(session, booking)["pre"].status == "failed"


def test_rescheduling_moves_unsent_invitations(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=30))
    now = utcnow()
    policy = InvitationPolicy(pre_lead=timedelta(hours=36))
    dispatch_invitations(session, policy=policy, now=now)
    sent = invitations(session, booking)["pre"]
    assert sent.status == "sent"
    new_start = booking.appointment.starts_at + timedelta(days=2)
    reschedule_appointment(
        session,
        appointment_id=booking.appointment.id,
        starts_at=new_start,
        ends_at=new_start + timedelta(minutes=50),
        policy=policy,
    )
    assert invitations(session, booking)["pre"].expires_at == new_start + policy.pre_grace
    # An invitation not yet sent moves wholly: its due time follows the appointment.
    waiting = book(starts_in=timedelta(hours=20))
    scheduled(session, waiting, due_in=timedelta(hours=1))
    later = waiting.appointment.starts_at + timedelta(days=7)
    reschedule_appointment(
        session, appointment_id=waiting.appointment.id, starts_at=later, ends_at=later + timedelta(minutes=50)
    )
    pre = invitations(session, waiting)["pre"]
    assert (pre.status, pre.due_at) == ("scheduled", later - POLICY.pre_lead)
    assert dispatch_invitations(session, policy=POLICY, now=now + timedelta(hours=2)).sent == 0


def test_cancel_invitations_of_a_client_and_one_invitation(session: Session, book: Callable[..., Booking]) -> None:
    first = book()
    second = book(starts_in=timedelta(hours=21))
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    assert cancel_invitations(session, client_id=first.client.id, reason="client opted out") == 1
    assert invitations(session, first)["pre"].status == "cancelled"
    with pytest.raises(ValueError, match="exactly one"):
        cancel_invitations(session, reason="x")
    pre = invitations(session, second)["pre"]
    assert cancel_invitation(session, invitation_id=pre.id, reason="front desk")
    assert not cancel_invitation(session, invitation_id=pre.id, reason="again")


def test_kiosk_needs_a_checked_in_client(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(minutes=20), consent_email=False)
    with pytest.raises(InvitationError, match="Check the client in"):
        create_kiosk_invitation(session, appointment_id=booking.appointment.id, created_by_id=None)
    check_in_appointment(session, appointment_id=booking.appointment.id)
    invitation, raw = create_kiosk_invitation(session, appointment_id=booking.appointment.id, created_by_id=None)
    assert (invitation.phase, invitation.channel, invitation.status) == ("pre", "kiosk", "sent")
    assert invitation.expires_at >= utcnow() + POLICY.kiosk_expiry - timedelta(seconds=5)
    assert find_invitation_by_token(session, raw) is invitation
    token = session.scalar(select(InvitationToken).where(InvitationToken.token_hash == token_hash(raw)))
    assert token is not None
    assert token.purpose == "kiosk"
    # Asked again (the tablet was busy): the same invitation, one more hand-out.
    again, raw_again = create_kiosk_invitation(session, appointment_id=booking.appointment.id, created_by_id=None)
    assert again.id == invitation.id
    assert raw_again != raw
    # The dispatch job does not also email it.
    booking.client.consent_email = True
    session.flush()
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    assert notifications(session, booking.client.id) == []


def test_kiosk_takes_over_an_unsent_invitation_and_refuses_an_answered_one(
    session: Session, book: Callable[..., Booking]
) -> None:
    booking = book(starts_in=timedelta(hours=3))
    pre = scheduled(session, booking, due_in=timedelta(hours=1))
    check_in_appointment(session, appointment_id=booking.appointment.id)
    invitation, _ = create_kiosk_invitation(session, appointment_id=booking.appointment.id, created_by_id=None)
    assert (invitation.id, invitation.channel, invitation.status) == (pre.id, "kiosk", "sent")
    assert dispatch_invitations(session, policy=POLICY, now=utcnow() + timedelta(hours=2)).sent == 0
    invitation.status = "completed"
    session.flush()
    with pytest.raises(InvitationError, match="already answered"):
        create_kiosk_invitation(session, appointment_id=booking.appointment.id, created_by_id=None, phase="pre")


def test_copied_link_rules(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=2))
    invitation, raw = create_link_invitation(session, appointment_id=booking.appointment.id, created_by_id=None)
    assert (invitation.channel, invitation.phase, invitation.status) == ("link", "pre", "sent")
    assert find_invitation_by_token(session, raw) is invitation
    post, _ = create_link_invitation(session, appointment_id=booking.appointment.id, created_by_id=None, phase="post")
    assert post.phase == "post"
    with pytest.raises(InvitationError, match="Unknown phase"):
        create_link_invitation(session, appointment_id=booking.appointment.id, created_by_id=None, phase="during")
    opted_out = book(opted_out_at=utcnow())
    with pytest.raises(InvitationError, match="opted out"):
        create_link_invitation(session, appointment_id=opted_out.appointment.id, created_by_id=None)
    alliance = book(protocol_code="alliance_only")
    with pytest.raises(InvitationError, match="asks nothing before"):
        create_link_invitation(session, appointment_id=alliance.appointment.id, created_by_id=None, phase="pre")
    cancelled = book()
    cancel_appointment(session, appointment_id=cancelled.appointment.id)
    with pytest.raises(InvitationError, match="cancelled"):
        create_link_invitation(session, appointment_id=cancelled.appointment.id, created_by_id=None)
    with pytest.raises(InvitationError, match="No such appointment"):
        create_link_invitation(session, appointment_id=999_999, created_by_id=None)
    past = book(starts_in=timedelta(days=-5))
    with pytest.raises(InvitationError, match="too late"):
        create_link_invitation(session, appointment_id=past.appointment.id, created_by_id=None, phase="post")
