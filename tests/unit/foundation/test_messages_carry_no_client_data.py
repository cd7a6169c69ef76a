"""No email or SMS carries client data: every template, in both languages, rendered with sentinels everywhere."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.message import Message

import pytest

import services.accounts.operations
import services.surveys.invitations  # noqa: F401 - both register the send-time builders this test leaves out
from services.config import Settings
from services.db import Database
from services.notifications.delivery import Outcome, _context_builders, deliver_notification
from services.notifications.operations import queue_notification
from services.notifications.templates import ALLOWED_FIELDS, TEMPLATES, render_message

# Client data a caller might hand a message by mistake: name, instrument, score, item text, diagnosis.
SENTINELS = {
    "name": "Sentinelname Zqxname",
    "instrument": "SENTINEL-INSTRUMENT-PHQ",
    "score": "Sentinelscore-4719",
    "item_text": "Sentinel item text about thoughts",
    "diagnosis": "SENTINEL-DIAGNOSIS-F32",
}
# Every key under which a builder, a context or a careless caller could pass them.
CLIENT_KEYS = {
    "name": ("name", "client_name", "full_name", "last_name", "surname", "client", "client_code", "display_name"),
    "instrument": ("instrument", "instruments", "instrument_name", "measure", "survey"),
    "score": ("score", "total", "severity", "result", "scores", "risk"),
    "item_text": ("item_text", "item", "question", "answer", "answers", "comment", "free_text"),
    "diagnosis": ("diagnosis", "diagnoses", "condition", "note", "notes", "goal"),
}
# What the allowed fields legitimately hold (a first name is the only personal detail a client message may have).
ALLOWED_VALUES = {
    "link": "https://rapport.example.test/s/abc",
    "practice": "Harbour Practice",
    "first_name": "Ana",
    "opt_out_link": "https://rapport.example.test/o/abc",
    "count": 3,
    "briefs": 2,
    "role": "supervisor",
    "minutes": 4,
}
LANGUAGES = ("en", "es")


def hostile_values() -> dict[str, object]:
    """The allowed values plus every sentinel under every client-data key."""
    values: dict[str, object] = dict(ALLOWED_VALUES)
    for kind, keys in CLIENT_KEYS.items():
        for key in keys:
            values[key] = SENTINELS[kind]
    values["client_data"] = dict(SENTINELS)
    return values


def leaks(text: str) -> list[str]:
    """The sentinels (or distinctive parts of them) found in text."""
    lowered = text.lower()
    parts = {
        word.lower() for value in SENTINELS.values() for word in value.split() if word.lower().startswith("sentinel")
    }
    return sorted(part for part in parts | {v.lower() for v in SENTINELS.values()} if part in lowered)


def test_the_sentinels_are_caught_when_they_leak() -> None:
    assert leaks(f"Hello, your {SENTINELS['instrument']} score was {SENTINELS['score']}") != []
    assert leaks(render_message("test_message", {"practice": SENTINELS["name"]})[1]) != []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_no_template_carries_client_data(name: str, language: str) -> None:
    assert not (set(ALLOWED_FIELDS) - ALLOWED_VALUES.keys() - {"duration"})  # a new allowed field needs a value here
    for values in (hostile_values(), {**hostile_values(), "opt_out_link": ""}):
        subject, body = render_message(name, values, language=language)
        assert leaks(subject) == [], (name, language, subject)
        assert leaks(body) == [], (name, language, body)
        assert body.strip()


def _sent_text(settings: Settings, notification_id: int, channel: str) -> str:
    if channel == "email":
        message: Message = message_from_bytes((settings.outbox_dir / f"email-{notification_id:08d}.eml").read_bytes())
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return f"{message['Subject']}\n{payload.decode()}"
    sms = json.loads((settings.outbox_dir / f"sms-{notification_id:08d}.json").read_text(encoding="utf-8"))
    return json.dumps(sms, ensure_ascii=False)


# Templates whose values come only from the stored context (the others mint a link from real rows at send time,
# and their builders return only link, opt_out_link and minutes; render_message above covers their text).
STORED_ONLY = sorted(name for name in TEMPLATES if name not in _context_builders)


@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_sent_messages_carry_no_client_data(
    db: Database, test_settings: Settings, tmp_path: object, channel: str, language: str
) -> None:
    settings = test_settings.with_overrides(var_dir=tmp_path)
    address = "ops@example.test" if channel == "email" else "+44 7700 900001"
    assert STORED_ONLY
    for name in STORED_ONLY:
        with db.unit_of_work() as session:
            context = {**hostile_values(), "language": language}
            row = queue_notification(session, channel=channel, template=name, to_address=address, context=context)
        assert deliver_notification(db, settings, row.id) is Outcome.SENT
        assert leaks(_sent_text(settings, row.id, channel)) == [], (name, channel, language)
