"""The rate limiter (Flask-Limiter), with its storage from settings (memory locally, Redis in production)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

from flask import request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter
from werkzeug.exceptions import TooManyRequests

from web.app import current_settings

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
# After the shared storage fails, count in this process's memory for a while instead of paying its timeout each time.
STORAGE_DOWN_BACKOFF = 5.0


def client_ip() -> str:
    """The caller's address as the WSGI server saw it (put ProxyFix in front when behind a proxy)."""
    return request.remote_addr or "unknown"


def login_email() -> str:
    """The email a login attempt names, so guessing one account's password is limited from any address."""
    email = request.form.get("email", "")
    return "email:" + email.strip().lower()[:254]


def login_limit() -> str:
    """The login rate limit from settings, e.g. "10 per minute;50 per hour"."""
    return current_settings().login_rate_limit


def token_limit() -> str:
    """The rate limit on token routes (survey links) from settings."""
    return current_settings().token_rate_limit


def failed_attempt(response: object) -> bool:
    """Count a login attempt against the limits unless it succeeded (a redirect to the user's home)."""
    return getattr(response, "status_code", 200) != 302


def retry_after_seconds() -> int:
    """Seconds until the limit this request broke resets (asked of the storage only on a 429).

    Flask-Limiter's own X-RateLimit-* headers are off: they cost two storage round trips on every limited
    request, which on the survey submit was a tenth of its time. Retry-After on a 429 is what clients use.
    """
    limit = limiter.current_limit
    if limit is None:
        return 60
    return _seconds_left(lambda: limit.reset_at, limit.limit)


def _seconds_left(reset_at: Callable[[], float], item: RateLimitItem) -> int:
    """Seconds until a window resets (asking the storage), or the whole window when the storage cannot say."""
    try:
        return max(1, int(reset_at() - time.time()))
    except Exception:
        return max(1, int(item.get_expiry()))


class ViewLimiter(Limiter):
    """Flask-Limiter that checks only the limits declared on views.

    Rapport sets no application-wide or blueprint limits: every limit is a @limiter.limit on a view (logins, token
    routes). Flask-Limiter still walks its limit resolution in a before_request hook for every request, finding
    nothing, and then again in the decorator; skipping the empty first pass saves a few percent of a survey submit.
    """

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        if in_middleware and not self.has_wide_limits():
            return
        super()._check_request_limit(callable_name, in_middleware)

    def has_wide_limits(self) -> bool:
        """Whether any application-wide, default or blueprint limit is set (then the before_request pass runs)."""
        manager = self.limit_manager
        return bool(manager.application_limits or manager.default_limits or manager._blueprint_limits)


# One Limiter for the process; init_app in create_app points it at the app's storage.
limiter = ViewLimiter(key_func=client_ip)


# --- token routes ------------------------------------------------------------------------------------------------
#
# The survey and kiosk routes are the busiest in the service (every client answer is one of their requests), so they
# use the limits library directly with Flask-Limiter's storage: one storage round trip per request and nothing else.
# Same rule as @limiter.limit(token_limit) had: settings.token_rate_limit per client address per route, and a
# per-process memory count when the shared storage is unreachable (a broken Redis must not lock clients out).


@lru_cache(maxsize=8)
def _token_items(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec))


class _TokenCounter:
    def __init__(self) -> None:
        self.fallback = FixedWindowRateLimiter(MemoryStorage())
        self.down_until = 0.0

    def strategy(self) -> RateLimiter:
        if time.monotonic() < self.down_until:
            return self.fallback
        return limiter.limiter

    def refused(self, keys: tuple[str, ...]) -> RateLimitItem | None:
        """The first limit this request breaks (counting it), or None."""
        items = _token_items(token_limit())
        strategy = self.strategy()
        try:
            return next((item for item in items if not strategy.hit(item, *keys)), None)
        except Exception:
            if strategy is self.fallback:
                raise
            log.warning("rate-limit storage unreachable; counting token requests in memory for now", exc_info=True)
            self.down_until = time.monotonic() + STORAGE_DOWN_BACKOFF
            return next((item for item in items if not self.fallback.hit(item, *keys)), None)

    def retry_after(self, item: RateLimitItem, keys: tuple[str, ...]) -> int:
        strategy = self.strategy()
        return _seconds_left(lambda: strategy.get_window_stats(item, *keys).reset_time, item)


_token_counter = _TokenCounter()


def token_limited(view: F) -> F:
    """Limit a token route to settings.token_rate_limit per client address (429 with Retry-After beyond it)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if limiter.enabled:
            keys = ("token", request.endpoint or "", client_ip())
            item = _token_counter.refused(keys)
            if item is not None:
                raise TooManyRequests(retry_after=_token_counter.retry_after(item, keys))
        return view(*args, **kwargs)

    return limited  # type: ignore[return-value]
