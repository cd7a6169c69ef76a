"""Outbox rows, message templates without client data, and at-most-once delivery by conditional claim."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes

import pytest
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database, utcnow
from services.notifications.delivery import Outcome, deliver_notification
from services.notifications.models import Notification
from services.notifications.operations import claim_notification, queue_notification
from services.notifications.templates import ALLOWED_FIELDS, TEMPLATES, MessageTemplate, TemplateError, render_message
from services.ops.reconcile import find_pending


def test_every_template_renders_from_allowed_fields_only() -> None:
    values = {name: f"<{name}>" for name in ALLOWED_FIELDS}
    for name, template in TEMPLATES.items():
        for language in template.body:
            subject, body = render_message(name, values, language=language)
            assert subject
            assert body


def test_a_template_asking_for_client_data_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    leaky = MessageTemplate(subject="Score", body="{first_name} scored {score} on {instrument}")
    monkeypatch.setitem(TEMPLATES, "leaky", leaky)
    with pytest.raises(TemplateError, match=r"may not carry: \['instrument', 'score'\]"):
        render_message("leaky", {"first_name": "A", "score": 27, "instrument": "PHQ-9"})


def test_client_messages_carry_an_opt_out_link() -> None:
    _, body = render_message(
        "invitation",
        {"first_name": "Ola", "practice": "P", "link": "https://x/s/t", "opt_out_link": "https://x/o/t"},
    )
    assert "https://x/o/t" in body


def test_same_dedupe_key_returns_the_first_row(session: Session) -> None:
    first = queue_notification(session, channel="email", template="alert", to_address="a@example.test", dedupe_key="k1")
    again = queue_notification(session, channel="email", template="alert", to_address="a@example.test", dedupe_key="k1")
    assert again.id == first.id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "fax", "template": "alert", "to_address": "a@example.test"}, "Unknown channel"),
        ({"channel": "email", "template": "nope", "to_address": "a@example.test"}, "Unknown message template"),
        ({"channel": "email", "template": "alert", "to_address": ""}, "needs an address"),
    ],
)
def test_bad_notifications_are_refused_with_a_clear_message(
    session: Session, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        queue_notification(session, **kwargs)


def test_delivery_writes_to_the_outbox_folder_once(db: Database, test_settings: Settings) -> None:
    with db.unit_of_work() as session:
        row = queue_notification(session, channel="email", template="test_message", to_address="ops@example.test")
    assert deliver_notification(db, test_settings, row.id) is Outcome.SENT
    assert deliver_notification(db, test_settings, row.id) is Outcome.SKIPPED
    path = test_settings.outbox_dir / f"email-{row.id:08d}.eml"
    message = message_from_bytes(path.read_bytes())
    assert message["To"] == "ops@example.test"
    assert test_settings.practice_name in message.get_payload()
    with db.session() as s:
        stored = s.get(Notification, row.id)
        assert stored is not None
        assert (stored.status, stored.attempts) == ("sent", 1)


def test_sms_goes_to_the_outbox_as_json(db: Database, test_settings: Settings) -> None:
    with db.unit_of_work() as session:
        row = queue_notification(session, channel="sms", template="test_message", to_address="+44 7700 900001")
    assert deliver_notification(db, test_settings, row.id) is Outcome.SENT
    assert (test_settings.outbox_dir / f"sms-{row.id:08d}.json").exists()


def test_a_claim_is_exclusive_until_it_goes_stale(session: Session) -> None:
    row = queue_notification(session, channel="email", template="alert", to_address="a@example.test")
    now = utcnow()
    assert claim_notification(session, row.id, now=now)
    assert not claim_notification(session, row.id, now=now + timedelta(minutes=1))
    assert claim_notification(session, row.id, now=now + timedelta(minutes=11))


def test_reconcile_finds_old_pending_and_stale_rows_and_gives_up_on_exhausted_ones(session: Session) -> None:
    now = utcnow()
    fresh = queue_notification(session, channel="email", template="alert", to_address="a@example.test")
    old = queue_notification(session, channel="email", template="alert", to_address="b@example.test")
    old.created_at = now - timedelta(minutes=5)
    stale = queue_notification(session, channel="email", template="alert", to_address="c@example.test")
    stale.created_at, stale.status, stale.claimed_at = now - timedelta(hours=1), "sending", now - timedelta(minutes=30)
    exhausted = queue_notification(session, channel="email", template="alert", to_address="d@example.test")
    exhausted.created_at, exhausted.attempts = now - timedelta(hours=1), 5
    session.flush()
    work = find_pending(session, grace=timedelta(seconds=60), max_attempts=5, now=now)
    assert sorted(work.notifications) == sorted([old.id, stale.id])
    assert fresh.id not in work.notifications
    assert work.failed == {"notifications": 1}
    session.refresh(exhausted)
    assert exhausted.status == "failed"
