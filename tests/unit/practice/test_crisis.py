"""Crisis information: numbers validated with phonenumbers, stored as E.164, shown as tel: links per language."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from services.db import Database
from services.demo.seed import seed_demo
from services.practice.crisis import (
    CrisisEntry,
    InvalidNumber,
    crisis_entry,
    crisis_info_for,
    parse_number,
    phone_for_display,
    set_crisis_entry,
)


@pytest.mark.parametrize(
    ("text", "region", "stored"),
    [
        ("+1 202-555-0143", "GB", "+12025550143"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("+44 20 7946 0123", "GB", "+442079460123"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("999", "GB", "999"),
        ("116 123", "GB", "116123"),
        ("112", "ES", "112"),
        ("024", "ES", "024"),
    ],
)
def test_numbers_are_stored_as_e164_or_as_a_short_number(text: str, region: str, stored: str) -> None:
    assert parse_number(text, region) == stored


@pytest.mark.parametrize(
    ("text", "region"),
    [("", "GB"), ("call us", "GB"), ("12345", "GB"), ("+44 1", "GB"), ("020 7946 0123", "US"), ("+999", "GB")],
)
def test_what_is_not_a_number_is_refused(text: str, region: str) -> None:
    with pytest.raises(InvalidNumber):
        parse_number(text, region)


def test_display_is_national_at_home_and_international_abroad() -> None:
    home = phone_for_display("Line", "+442079460123", "GB")
    assert (home.display, home.tel) == ("020 7946 0123", "tel:+442079460123")
    abroad = phone_for_display("Line", "+12025550143", "GB")
    assert (abroad.display, abroad.tel) == ("+1 202-555-0143", "tel:+12025550143")
    assert phone_for_display("Emergency", "999", "GB").tel == "tel:999"


def test_each_language_is_kept_apart_and_defaults_until_set(session: Session) -> None:
    assert crisis_info_for(session, "es").heading == "Si necesita ayuda ahora"
    assert crisis_info_for(session, "es").phones == ()
    entry = CrisisEntry(region="GB", heading="Get help", body="One.\n\nTwo.", phones=(("Line", "+442079460123"),))
    set_crisis_entry(session, "en", entry, user_id=None)
    info = crisis_info_for(session, "en")
    assert info.heading == "Get help"
    assert info.paragraphs == ("One.", "Two.")
    assert [phone.tel for phone in info.phones] == ["tel:+442079460123"]
    assert crisis_entry(session, "es").heading == "Si necesita ayuda ahora"  # Spanish untouched
    spanish = crisis_info_for(session, "es")
    assert spanish.paragraphs[0].startswith("Si está en peligro")
    assert [phone.tel for phone in spanish.phones] == ["tel:+442079460123"]  # no Spanish numbers yet: the English
    assert crisis_info_for(session, "fr").heading == "Get help"  # an unknown language reads English


def test_the_demo_practice_has_synthetic_numbers_in_both_languages(db: Database) -> None:
    seed_demo(db, clients=3, months=2, seed=1)
    with db.session() as session:
        for lang in ("en", "es"):
            info = crisis_info_for(session, lang)
            assert info.phones, lang
            # NANP 555-01xx: reserved for fiction, so no real service is ever called from the demo.
            assert all(phone.tel.startswith("tel:+120255501") for phone in info.phones)
        assert crisis_info_for(session, "es").heading == "Si necesita ayuda ahora"
