"""Protocols, the funnel query, the outbox's context-builder hook, the token migration and appointment rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from services import schema
from services.clients.operations import (
    ClientError,
    add_appointment,
    cancel_appointment,
    check_in_appointment,
    open_episode,
    reschedule_appointment,
    update_client,
)
from services.config import ConfigError, Settings
from services.db import Database, make_engine, utcnow
from services.notifications import delivery
from services.notifications.delivery import Outcome, SkipDelivery, deliver_notification, register_context_builder
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from services.surveys.models import Invitation, Protocol
from services.surveys.policy import InvitationPolicy, invitation_policy
from services.surveys.protocols import (
    DEFAULT_PROTOCOLS,
    ProtocolError,
    ProtocolSpec,
    define_protocol,
    ensure_default_protocols,
    get_default_protocol,
    instruments_for,
    protocol_for_episode,
    set_default_protocol,
)
from services.surveys.queries import invitation_funnel, week_start
from tests.factories import make_client, make_episode, make_user
from tests.unit.frontdesk.conftest import Booking


def test_default_protocols_exist_after_migration_and_ensuring_is_idempotent(session: Session) -> None:
    codes = {p.code for p in session.scalars(select(Protocol))}
    assert {spec.code for spec in DEFAULT_PROTOCOLS} <= codes
    before = session.scalar(select(func.count()).select_from(Protocol))
    ensure_default_protocols(session)
    ensure_default_protocols(session)
    assert session.scalar(select(func.count()).select_from(Protocol)) == before
    default = get_default_protocol(session)
    assert default is not None
    assert (default.code, default.pre_session, default.post_session) == (
        "standard",
        ["PHQ-9", "GAD-7", "GOAL-PROGRESS"],
        ["PARTNERSHIP-CHECK"],
    )


def test_protocols_name_real_instruments_and_episodes_choose_one(session: Session) -> None:
    with pytest.raises(ProtocolError, match="Unknown instrument 'NOPE-1'"):
        define_protocol(session, ProtocolSpec(code="bad", name="Bad", pre_session=("NOPE-1",), post_session=()))
    with pytest.raises(ProtocolError, match="at least one"):
        define_protocol(session, ProtocolSpec(code="empty", name="Empty", pre_session=(), post_session=()))
    core = define_protocol(
        session, ProtocolSpec(code="core10", name="CORE-10", pre_session=("CORE-10",), post_session=())
    )
    episode = make_episode(session, protocol_code="core10")
    assert protocol_for_episode(session, episode) is core
    assert instruments_for(core, "pre") == ["CORE-10"]
    assert instruments_for(core, "post") == []
    assert instruments_for(None, "pre") == []
    with pytest.raises(ProtocolError):
        instruments_for(core, "during")
    lost = make_episode(session, protocol_code="deleted-since")
    assert protocol_for_episode(session, lost) == get_default_protocol(session)
    set_default_protocol(session, "core10")
    assert get_default_protocol(session) is core
    assert session.scalar(select(func.count()).select_from(Protocol).where(Protocol.is_default.is_(True))) == 1
    with pytest.raises(ProtocolError):
        set_default_protocol(session, "missing")


def test_open_episode_refuses_an_unknown_protocol(session: Session) -> None:
    client = make_client(session)
    with pytest.raises(ClientError, match="Unknown measurement protocol"):
        open_episode(
            session,
            client_id=client.id,
            clinician_id=make_user(session, role="clinician").id,
            started_on=date(2026, 3, 2),
            protocol_code="nope",
        )


def sent(session: Session, episode_id: int, *, channel: str, at: datetime, reached: str = "sent") -> Invitation:
    """An invitation sent at `at` that got as far as `reached`."""
    steps = ("sent", "opened", "started", "completed")
    invitation = Invitation(
        episode_id=episode_id,
        phase="adhoc",
        instruments=["PHQ-9"],
        channel=channel,
        status=reached,
        due_at=at,
        sent_at=at,
        expires_at=at + timedelta(days=3),
        opened_at=at + timedelta(minutes=1) if steps.index(reached) >= 1 else None,
        started_at=at + timedelta(minutes=2) if steps.index(reached) >= 2 else None,
        completed_at=at + timedelta(minutes=3) if reached == "completed" else None,
    )
    session.add(invitation)
    session.flush()
    return invitation


def test_funnel_counts_by_channel_clinician_and_week(session: Session) -> None:
    ann = make_user(session, role="clinician", name="Ann Example")
    bob = make_user(session, role="clinician", name="Bob Example")
    a = make_episode(session, clinician=ann)
    b = make_episode(session, clinician=bob)
    monday = datetime(2026, 3, 2, 9, tzinfo=UTC)
    sent(session, a.id, channel="email", at=monday, reached="completed")
    sent(session, a.id, channel="email", at=monday + timedelta(days=1), reached="opened")
    sent(session, a.id, channel="sms", at=monday + timedelta(days=7), reached="started")
    sent(session, b.id, channel="kiosk", at=monday + timedelta(days=8), reached="completed")
    sent(session, b.id, channel="email", at=monday + timedelta(days=9))
    # A kiosk answer with no opened/started times still counts as opened and started.
    odd = sent(session, b.id, channel="kiosk", at=monday + timedelta(days=9), reached="completed")
    odd.opened_at = odd.started_at = None
    sent(session, b.id, channel="email", at=monday - timedelta(days=1), reached="completed")  # before the period
    session.flush()
    funnel = invitation_funnel(session, start=monday, end=monday + timedelta(days=14), tz="Europe/London")
    assert (funnel.total.sent, funnel.total.opened, funnel.total.started, funnel.total.completed) == (6, 5, 4, 3)
    assert funnel.total.completion_rate == 0.5
    channels = {g.key: (g.counts.sent, g.counts.completed) for g in funnel.by_channel}
    assert channels == {"email": (3, 1), "sms": (1, 0), "kiosk": (2, 2)}
    assert [g.key for g in funnel.by_channel] == ["email", "sms", "kiosk"]
    assert [(g.label, g.counts.sent) for g in funnel.by_clinician] == [("Ann Example", 3), ("Bob Example", 3)]
    assert [(g.key, g.counts.sent) for g in funnel.by_week] == [("2026-03-02", 2), ("2026-03-09", 4)]
    only_ann = invitation_funnel(session, start=monday, end=monday + timedelta(days=14), clinician_ids=[ann.id])
    assert only_ann.total.sent == 3
    empty = invitation_funnel(session, start=monday - timedelta(days=30), end=monday - timedelta(days=20))
    assert empty.total.sent == 0
    assert empty.total.completion_rate is None
    assert empty.by_week == []


def test_weeks_are_practice_local() -> None:
    sunday_night_utc = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)  # already Monday in Berlin
    assert week_start(sunday_night_utc, ZoneInfo("Europe/Berlin")) == date(2026, 3, 9)
    assert week_start(sunday_night_utc, ZoneInfo("America/New_York")) == date(2026, 3, 2)


def test_policy_reads_settings_extra(test_settings: Settings) -> None:
    assert invitation_policy(test_settings) == InvitationPolicy()
    custom = invitation_policy(
        test_settings.with_overrides(
            extra={"invite_lead_hours": "48", "reminder_after_hours": "6", "import_allow_private_urls": "yes"}
        )
    )
    assert (custom.pre_lead, custom.reminder_after, custom.import_allow_private_urls) == (
        timedelta(hours=48),
        timedelta(hours=6),
        True,
    )
    with pytest.raises(ConfigError, match="RAPPORT_INVITE_LEAD_HOURS must be a number"):
        invitation_policy(test_settings.with_overrides(extra={"invite_lead_hours": "soon"}))
    with pytest.raises(ConfigError, match="RAPPORT_IMPORT_ALLOW_PRIVATE_URLS must be true or false"):
        invitation_policy(test_settings.with_overrides(extra={"import_allow_private_urls": "maybe"}))
    with pytest.raises(ConfigError, match="at least"):
        invitation_policy(test_settings.with_overrides(extra={"invite_expiry_hours": "0"}))


def test_context_builder_adds_values_skips_and_retries(
    db: Database, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "_context_builders", {})
    calls: list[str] = []

    def builder(session: Session, settings: Settings, row: Notification) -> dict[str, Any]:
        calls.append(row.to_address)
        if row.to_address.startswith("skip"):
            raise SkipDelivery("not any more")
        if row.to_address.startswith("boom"):
            raise RuntimeError("database hiccup")
        return {"link": "http://rapport.test/x", "count": 3}

    register_context_builder("alert_digest", builder)
    with db.unit_of_work() as s:
        ok = queue_notification(s, channel="email", template="alert_digest", to_address="ok@example.test").id
        skip = queue_notification(s, channel="email", template="alert_digest", to_address="skip@example.test").id
        boom = queue_notification(s, channel="email", template="alert_digest", to_address="boom@example.test").id
        plain = queue_notification(s, channel="email", template="test_message", to_address="p@example.test").id
    assert deliver_notification(db, test_settings, ok) is Outcome.SENT
    assert "3 item(s)" in (test_settings.outbox_dir / f"email-{ok:08d}.eml").read_text()
    assert deliver_notification(db, test_settings, skip) is Outcome.SKIPPED
    assert deliver_notification(db, test_settings, boom) is Outcome.RETRY
    assert deliver_notification(db, test_settings, plain) is Outcome.SENT
    with db.session() as s:
        statuses = {n.id: (n.status, n.attempts) for n in s.scalars(select(Notification))}
        assert statuses[skip] == ("cancelled", 1)
        assert statuses[boom] == ("pending", 1)
        assert "database hiccup" in (s.get(Notification, boom).last_error or "")  # type: ignore[union-attr]
    assert calls == ["ok@example.test", "skip@example.test", "boom@example.test"]


def test_migration_moves_existing_token_hashes(tmp_path: Any) -> None:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        schema.upgrade(engine, "0001")
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO clients (code, first_name, last_name, language, consent_email, consent_sms,"
                    " created_at) VALUES ('CMIG0001', 'A', 'B', 'en', 1, 0, '2026-01-01 00:00:00')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO users (email, name, role, password_hash, active, on_call, notify_mode, language,"
                    " created_at) VALUES ('m@example.test', 'M', 'clinician', 'x', 1, 0, 'immediate', 'en',"
                    " '2026-01-01 00:00:00')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO episodes (client_id, clinician_id, protocol_code, started_on, goals, created_at)"
                    " VALUES (1, 1, 'standard', '2026-01-01', '[]', '2026-01-01 00:00:00')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO invitations (episode_id, phase, instruments, channel, token_hash, status, due_at,"
                    " expires_at, reminders, attempts, created_at) VALUES (1, 'pre', '[]', 'sms', 'h1', 'sent',"
                    " '2026-01-01 00:00:00', '2026-01-02 00:00:00', 0, 0, '2026-01-01 00:00:00')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO administrations (invitation_id, episode_id, instrument_code, instrument_version,"
                    " respondent, answers, scores, complete, language, completed_at, eval_attempts)"
                    " VALUES (1, 1, 'PHQ-9', '1', 'client', '{}', '{}', 1, 'en', '2026-01-01 00:00:00', 0)"
                )
            )
        schema.upgrade(engine)
        assert schema.drift(engine) == []
        with engine.connect() as c:
            assert c.execute(text("SELECT invitation_id, token_hash, purpose FROM invitation_tokens")).all() == [
                (1, "h1", "sms")
            ]
            assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert "token_hash" not in {row[1] for row in c.exec_driver_sql("PRAGMA table_info(invitations)")}
    finally:
        engine.dispose()


def test_appointment_operations_validate(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(days=2))
    now = utcnow()
    with pytest.raises(ClientError, match="end after it starts"):
        add_appointment(session, episode_id=booking.episode.id, starts_at=now, ends_at=now)
    with pytest.raises(ClientError, match="at most 8 hours"):
        add_appointment(session, episode_id=booking.episode.id, starts_at=now, ends_at=now + timedelta(hours=9))
    with pytest.raises(ClientError, match="time zone"):
        add_appointment(
            session, episode_id=booking.episode.id, starts_at=now.replace(tzinfo=None), ends_at=now + timedelta(hours=1)
        )
    with pytest.raises(ClientError, match="No such episode"):
        add_appointment(session, episode_id=999_999, starts_at=now, ends_at=now + timedelta(hours=1))
    booking.episode.ended_on = date(2026, 1, 31)
    session.flush()
    with pytest.raises(ClientError, match="has ended"):
        add_appointment(session, episode_id=booking.episode.id, starts_at=now, ends_at=now + timedelta(hours=1))
    done = book(starts_in=timedelta(days=-2))
    done.appointment.status = "completed"
    session.flush()
    with pytest.raises(ClientError, match="already took place"):
        cancel_appointment(session, appointment_id=done.appointment.id)
    with pytest.raises(ClientError, match="Only a scheduled appointment can be moved"):
        reschedule_appointment(session, appointment_id=done.appointment.id, starts_at=now, ends_at=now + timedelta(1))
    with pytest.raises(ClientError, match="Only a scheduled appointment can be checked in"):
        check_in_appointment(session, appointment_id=done.appointment.id)
    with pytest.raises(ClientError, match="No such appointment"):
        cancel_appointment(session, appointment_id=999_999)
    with pytest.raises(ClientError, match="No such client"):
        update_client(session, client_id=999_999, first_name="A", last_name="B")
