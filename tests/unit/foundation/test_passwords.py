"""Password policy (NIST SP 800-63B): at least 12 characters, no common passwords, no composition rules."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from services.accounts.operations import create_user, set_password
from services.accounts.passwords import (
    MIN_PASSWORD_LENGTH,
    TOO_COMMON,
    TOO_SHORT,
    WeakPasswordError,
    check_password_strength,
    common_passwords,
    verify_password,
)
from services.demo.seed import DEMO_PASSWORD
from services.i18n import translator_for
from tests.factories import PASSWORD, make_user


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("1234567890", TOO_SHORT),  # passed the old ten-character rule
        ("elevenchars", TOO_SHORT),
        ("   short   ", TOO_SHORT),  # spaces around do not count
        ("password1234", TOO_COMMON),  # in the list itself
        ("qwertyuiop12", TOO_COMMON),
        ("123qweasdzxc", TOO_COMMON),
        ("PASSWORD1234", TOO_COMMON),  # case does not help
        ("Sunshine2024!", TOO_COMMON),  # a listed word with digits and punctuation tacked on
        ("!!football!!", TOO_COMMON),
        ("aaaaaaaaaaaaaa", TOO_COMMON),  # repeated characters
        ("abababababab", TOO_COMMON),
        ("123456789012", TOO_COMMON),  # a sequence
        ("zyxwvutsrqpon", TOO_COMMON),
    ],
)
def test_short_and_common_passwords_are_refused(password: str, reason: str) -> None:
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength(password)
    assert caught.value.template == reason


@pytest.mark.parametrize(
    "password",
    [
        DEMO_PASSWORD,  # `make run` prints it: the demo keeps working
        PASSWORD,
        "a brand new passphrase",
        "mi perro come pan",  # all lower case, no digits, no symbols: no composition rules
        "tortoise lamp 99",
        "x" * 11 + "yzw",
    ],
)
def test_long_uncommon_passwords_are_accepted_without_composition_rules(password: str) -> None:
    assert len(password.strip()) >= MIN_PASSWORD_LENGTH
    check_password_strength(password)


def test_the_bundled_list_is_the_cited_one() -> None:
    listed = common_passwords()
    assert len(listed) == 30_000
    assert {"123456", "password", "qwerty", "iloveyou", "password1234"} <= listed
    assert all(word == word.lower() and word.strip() == word for word in listed)


def test_the_messages_read_in_spanish() -> None:
    spanish = translator_for("es")
    for msgid in (TOO_SHORT, TOO_COMMON):
        assert spanish.gettext(msgid, min=MIN_PASSWORD_LENGTH) != msgid.replace("%(min)d", str(MIN_PASSWORD_LENGTH))


def test_every_way_of_setting_a_password_refuses_a_common_one(session: Session) -> None:
    with pytest.raises(WeakPasswordError):
        create_user(session, email="new@example.test", password="password1234", role="clinician")
    user = make_user(session)
    with pytest.raises(WeakPasswordError):
        set_password(session, user, password="Sunshine2024!", actor_id=None)
    assert verify_password(user.password_hash, PASSWORD)
