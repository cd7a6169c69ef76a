"""One client-code format everywhere; phone numbers checked with phonenumbers in the practice's region, stored E.164."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.clients.codes import generate_client_code, is_client_code
from services.clients.imports import parse_ics
from services.clients.models import Client
from services.clients.operations import ClientError, create_client
from services.clients.phones import PhoneNumberError, display_phone, normalise_phone
from services.config import ConfigError, load_settings
from services.db import Database
from services.demo.names import client_code
from services.demo.seed import seed_demo
from tests.unit.web.conftest import login, post_form


def test_every_generator_makes_the_one_format(session: Session, db: Database) -> None:
    assert is_client_code(generate_client_code())
    assert is_client_code(create_client(session, first_name="Ana", last_name="Example").code)
    taken: set[str] = set()
    rng = random.Random(1)
    demo = [client_code(rng, taken) for _ in range(200)]
    assert all(is_client_code(code) for code in demo)
    assert len(set(demo)) == 200
    # The old demo shape and look-alike characters are not codes.
    for wrong in ("C-GTJNY", "c4kxhm7q", "C0OIL1ZS", "CNXJ4UN", "CNXJ4UNVV"):
        assert not is_client_code(wrong), wrong


def test_the_demo_seeds_codes_in_the_one_format(db: Database) -> None:
    seed_demo(db, clients=6, months=2, seed=5, today=date(2026, 11, 20))
    with db.session() as s:
        codes = list(s.scalars(select(Client.code)))
        phones = [p for p in s.scalars(select(Client.phone)) if p]
    assert len(codes) == 6
    assert all(is_client_code(code) for code in codes), codes
    assert all(normalise_phone(p) == p for p in phones), phones


def test_calendar_events_name_clients_by_the_one_format() -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTART:20260302T140000Z\r\nDTEND:20260302T145000Z\r\n"
        "SUMMARY:Session CNXJ4UNV\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:e2\r\nDTSTART:20260302T150000Z\r\n"
        "DTEND:20260302T155000Z\r\nSUMMARY:Session C-GTJNY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    rows = parse_ics(ics, tz=__import__("zoneinfo").ZoneInfo("Europe/London"))
    assert [row.client_code for row in rows] == ["CNXJ4UNV", None]


@pytest.mark.parametrize(
    ("raw", "region", "stored"),
    [
        ("07700 900123", "GB", "+447700900123"),
        ("+44 (0)7700-900124", "GB", "+447700900124"),
        ("+34 612 34 56 78", "GB", "+34612345678"),
        ("612 345 678", "ES", "+34612345678"),
        ("(201) 555-0123", "US", "+12015550123"),
    ],
)
def test_numbers_are_read_in_the_region_and_stored_as_e164(raw: str, region: str, stored: str) -> None:
    assert normalise_phone(raw, region=region) == stored
    assert normalise_phone(stored, region=region) == stored  # idempotent: a saved number saves again unchanged


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("call me maybe", "is not a phone number"),
        ("123", "is not a valid phone number"),
        ("07700 90012", "is not a valid phone number"),
        ("9" * 41, "longer than 40"),
    ],
)
def test_invalid_numbers_are_refused_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(PhoneNumberError, match=message):
        normalise_phone(raw, region="GB")


def test_a_landline_cannot_take_text_messages(session: Session) -> None:
    assert normalise_phone("020 7946 0958") == "+442079460958"
    with pytest.raises(ClientError, match="landline"):
        create_client(session, first_name="A", last_name="B", phone="020 7946 0958", consent_sms=True)
    assert display_phone("+447700900123") == "+44 7700 900123"


def test_phone_region_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("RAPPORT_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("RAPPORT_PHONE_REGION", raising=False)
    assert load_settings().phone_region == "GB"
    monkeypatch.setenv("RAPPORT_PHONE_REGION", "es")
    assert load_settings().phone_region == "ES"
    monkeypatch.setenv("RAPPORT_PHONE_REGION", "Spain")
    with pytest.raises(ConfigError, match="RAPPORT_PHONE_REGION"):
        load_settings()


def test_the_enrolment_form_stores_e164_in_the_practice_region(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    app = make_app(phone_region="ES")
    browser: FlaskClient = app.test_client()
    assert login(browser, staff("front_desk").email).status_code == 302
    page = browser.get("/frontdesk/clients/new").get_data(as_text=True)
    assert "+34" in page  # the hint shows the region's country code
    fields = {"first_name": "Lucia", "last_name": "Phoneform", "language": "es", "consent_sms": "y"}
    refused = post_form(browser, "/frontdesk/clients/new", {**fields, "phone": "6123"}, page="/frontdesk/clients/new")
    assert refused.status_code == 400
    assert "is not a valid phone number" in refused.get_data(as_text=True)
    saved = post_form(
        browser, "/frontdesk/clients/new", {**fields, "phone": "612 34 56 78"}, page="/frontdesk/clients/new"
    )
    assert saved.status_code == 303
    person = session.scalar(select(Client).where(Client.last_name == "Phoneform"))
    assert person is not None
    assert person.phone == "+34612345678"
    record = browser.get(f"/frontdesk/clients/{person.id}").get_data(as_text=True)
    assert '<a href="tel:+34612345678">+34 612 34 56 78</a>' in record


def test_the_api_stores_e164_and_refuses_an_invalid_number(
    client: FlaskClient, staff: Callable[..., User], session: Session
) -> None:
    headers = {"Authorization": f"Bearer {create_api_token(session, user=staff('front_desk'), name='t')}"}
    created = client.post(
        "/api/v1/clients",
        headers=headers,
        json={"first_name": "Api", "last_name": "Phone", "phone": "07700 900321", "consent_sms": True},
    )
    assert created.status_code == 201, created.json
    assert created.json["phone"] == "+447700900321"
    assert is_client_code(created.json["code"])
    bad = client.patch(f"/api/v1/clients/{created.json['id']}", headers=headers, json={"phone": "07700"})
    assert bad.status_code == 400
    assert "is not a valid phone number" in bad.json["error"]["detail"]
    assert session.get(Client, created.json["id"]).phone == "+447700900321"


def test_the_migration_rewrites_stored_numbers_it_can_read(tmp_path: Any) -> None:
    from sqlalchemy import text

    from services import schema
    from services.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'phones.sqlite3'}")
    try:
        schema.upgrade(engine, "0005")
        with engine.begin() as conn:
            for code, phone in (("CAAAAAAA", "07700 900123"), ("CAAAAAAC", "+44 7700 900124"), ("CAAAAAAD", "ring")):
                conn.execute(
                    text(
                        "INSERT INTO clients (code, first_name, last_name, phone, language, consent_email, "
                        "consent_sms, created_at) VALUES (:c, 'A', 'B', :p, 'en', 0, 1, '2026-01-01 00:00:00')"
                    ),
                    {"c": code, "p": phone},
                )
        schema.upgrade(engine)
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT code, phone FROM clients")).all())
        assert stored == {"CAAAAAAA": "+447700900123", "CAAAAAAC": "+447700900124", "CAAAAAAD": "ring"}
    finally:
        engine.dispose()
