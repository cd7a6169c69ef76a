"""A sign-in half done: the password was right, the code from the authenticator is still to come.

The state lives in the signed session cookie (it cannot be forged or altered) and is nothing more than whose
password it was, when, and a fingerprint of that password's hash; there is no login session yet, so the browser
reaches no staff page. It lasts PENDING_SECONDS, and a password changed in between makes it worthless.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from flask import session
from sqlalchemy.orm import Session

from services.accounts.models import User

PENDING_KEY = "pending_sign_in"
PENDING_SECONDS = 5 * 60
# Set with the login session's token when the practice requires a second factor the person has not set up yet;
# one cookie, signed as a whole, so the flag cannot be dropped while keeping the token (web.auth.two_factor).
ENROL_FIRST_KEY = "enrol_first"


@dataclass(frozen=True)
class PendingSignIn:
    """Whose password was right, when, and where to go once the code is right too."""

    user: User
    started: int
    next_target: str | None

    @property
    def seconds_left(self) -> int:
        """How long the code step stays open."""
        return max(0, self.started + PENDING_SECONDS - int(time.time()))


def _fingerprint(user: User) -> str:
    return hashlib.sha256(f"{user.id}:{user.password_hash}".encode()).hexdigest()[:32]


def start_pending(user: User, next_target: str | None) -> None:
    """Remember a right password for PENDING_SECONDS in a fresh cookie session (no login session exists yet)."""
    session.clear()
    session[PENDING_KEY] = {"u": user.id, "t": int(time.time()), "f": _fingerprint(user), "n": next_target}


def pending_sign_in(db: Session) -> PendingSignIn | None:
    """The sign-in waiting for its code, or None when there is none, it expired or the account changed."""
    raw = session.get(PENDING_KEY)
    if not isinstance(raw, dict):
        return None
    user_id, started, fingerprint, next_target = raw.get("u"), raw.get("t"), raw.get("f"), raw.get("n")
    if not isinstance(user_id, int) or not isinstance(started, int) or not isinstance(fingerprint, str):
        return None
    if not 0 <= time.time() - started <= PENDING_SECONDS:
        return None
    user = db.get(User, user_id)
    if user is None or not user.active or _fingerprint(user) != fingerprint:
        return None
    return PendingSignIn(user=user, started=started, next_target=next_target if isinstance(next_target, str) else None)


def had_pending() -> bool:
    """True when the cookie carries a half-done sign-in (perhaps expired)."""
    return PENDING_KEY in session


def clear_pending() -> None:
    """Forget the half-done sign-in."""
    session.pop(PENDING_KEY, None)
