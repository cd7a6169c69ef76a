"""argon2id password hashing."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.i18n import N_, UserError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

MIN_PASSWORD_LENGTH = 10


class WeakPasswordError(UserError):
    """The password does not meet the minimum rules."""


def check_password_strength(password: str) -> None:
    """Refuse passwords that are too short or blank."""
    if len(password.strip()) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(N_("A password needs at least %(min)d characters."), min=MIN_PASSWORD_LENGTH)


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
