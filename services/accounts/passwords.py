"""argon2id password hashing."""

from __future__ import annotations

import itertools
import string
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.i18n import N_, UserError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

# NIST SP 800-63B: a minimum length and a list of known-common passwords, no composition rules.
MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 4  # "aaaaaaaaaaaa" or "abababababab" is long but trivial to guess
_COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
_SUFFIX_CHARACTERS = string.digits + string.punctuation + " "


class WeakPasswordError(UserError):
    """The password does not meet the minimum rules."""


TOO_SHORT = N_("A password needs at least %(min)d characters.")
TOO_COMMON = N_("This password is too common or too easy to guess. Try a few unrelated words instead.")


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased (see the header of common_passwords.txt)."""
    lines = _COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _is_sequence(text: str) -> bool:
    """True for a run like "123456789012" or "zyxwvutsrqpo" (each character one step from the last)."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return steps <= {1, -9} or steps <= {-1, 9}


def is_common_password(password: str) -> bool:
    """True for a listed password (bar digits or punctuation tacked on), a sequence, or a few repeated characters."""
    lowered = password.strip().lower()
    if len(set(lowered)) < MIN_DISTINCT_CHARACTERS or _is_sequence(lowered):
        return True
    listed = common_passwords()
    stem = lowered.rstrip(_SUFFIX_CHARACTERS).lstrip(_SUFFIX_CHARACTERS)
    return lowered in listed or (len(stem) >= MIN_DISTINCT_CHARACTERS and stem in listed)


def check_password_strength(password: str) -> None:
    """Refuse passwords that are too short, blank or common (WeakPasswordError)."""
    if len(password.strip()) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(TOO_SHORT, min=MIN_PASSWORD_LENGTH)
    if is_common_password(password):
        raise WeakPasswordError(TOO_COMMON)


def hash_password(password: str) -> str:
    """An argon2id hash of password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when password matches the stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters."""
    return _hasher.check_needs_rehash(password_hash)


# A valid hash of a random string: verifying against it when the user does not exist costs the same
# time as a real check, so response time does not reveal which emails have accounts.
DUMMY_HASH = _hasher.hash("not-a-real-password-0f3c")
