"""Per-account slowing of sign-in attempts: an attacker is slowed, the account's owner is not locked out.

Failures are counted per account (the email typed, known or not, so the answer never tells whether an account
exists) in the rate limiter's storage, so every web process sees the same count (Redis in production, behind
web.limiter's breaker). The first FREE_FAILURES cost nothing; after that each failure makes the next attempt for
that account wait twice as long as the one before (2, 4, 8 ... seconds), never more than MAX_DELAY. The count is
forgotten FAILURE_WINDOW after the first failure, and at a successful sign-in.

While an account is being slowed, web.auth.views still lets its owner in at once when they sign in from an address
they signed in from before (services.accounts.two_factor.is_known_address), or with their password together with a
code from their authenticator: the attacker's failures from elsewhere cost the owner nothing. The code step after
the password has a count of its own per account, under the same rule. Per-address limits (settings'
login_rate_limit) stay as they were.
"""

from __future__ import annotations

import math
import time

from services.crypto import keyed_digest
from web.app import current_settings
from web.limiter import limiter

FREE_FAILURES = 5
MAX_DELAY = 15 * 60
FAILURE_WINDOW = 24 * 3600
KEY_PURPOSE = b"rapport.login-throttle.v1"


def delay_after(failures: int) -> int:
    """Seconds the next attempt must wait after this many failures in a row: 0, then 2, 4, 8 ... up to MAX_DELAY."""
    if failures < FREE_FAILURES:
        return 0
    exponent = failures - FREE_FAILURES + 1
    return MAX_DELAY if exponent >= 10 else min(2**exponent, MAX_DELAY)


def _keys(subject: str) -> tuple[str, str]:
    digest = keyed_digest(current_settings().secret_key, KEY_PURPOSE, subject)[:40]
    return f"login-failures/{digest}", f"login-wait/{digest}"


def password_subject(email: str) -> str:
    """The throttle's name for the password step of the account an email names."""
    return "password:" + email.strip().lower()[:254]


def code_subject(user_id: int) -> str:
    """The throttle's name for the code step of an account."""
    return f"code:{user_id}"


def wait_seconds(subject: str) -> int:
    """How many seconds the next attempt for subject must still wait (0: it may go ahead)."""
    if not limiter.enabled:
        return 0
    storage = limiter.storage
    _, wait_key = _keys(subject)
    if storage.get(wait_key) <= 0:
        return 0
    return max(1, math.ceil(storage.get_expiry(wait_key) - time.time()))


def record_failure(subject: str) -> int:
    """Count a failed attempt for subject; returns the seconds the next one must wait."""
    if not limiter.enabled:
        return 0
    storage = limiter.storage
    failures_key, wait_key = _keys(subject)
    failures = storage.incr(failures_key, FAILURE_WINDOW)
    delay = delay_after(failures)
    if delay:
        storage.clear(wait_key)
        storage.incr(wait_key, delay)
    return delay


def record_success(subject: str) -> None:
    """Forget subject's failures (its owner is in)."""
    if not limiter.enabled:
        return
    for key in _keys(subject):
        limiter.storage.clear(key)


def wait_text_minutes(seconds: int) -> int:
    """Whole minutes, rounded up, for a message about a wait of seconds."""
    return max(1, math.ceil(seconds / 60))
