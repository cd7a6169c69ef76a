"""The rate limiter (Flask-Limiter), with its storage from settings (memory locally, Redis in production)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

from flask import Flask, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import TooManyRequests

from web.app import current_settings

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def client_ip() -> str:
    """The caller's address as the WSGI server saw it (put ProxyFix in front when behind a proxy)."""
    return request.remote_addr or "unknown"


def login_email() -> str:
    """The email a form names (reset-link requests are limited per account from any address).

    Sign-in itself is not limited this way: a fixed per-email limit let anyone lock a named person out. Its
    per-account slowing, which spares the owner, is web.auth.throttle.
    """
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

    def init_app(self, app: Flask) -> None:
        """Set up as Flask-Limiter does, then put a shared storage behind the breaker (GuardedStorage)."""
        super().init_app(app)
        storage, strategy = self._storage, self._limiter
        if storage is not None and strategy is not None and not isinstance(storage, MemoryStorage | GuardedStorage):
            self._storage = GuardedStorage(storage)
            self._limiter = type(strategy)(self._storage)

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


# --- the shared storage, never in a client's way ---------------------------------------------------------------
#
# Every limit (logins and token routes alike) counts in Flask-Limiter's storage, which init_app wraps in one
# GuardedStorage: each call to Redis has STORAGE_TIMEOUT to answer; one that fails or is slow trips the breaker, and
# for STORAGE_DOWN_BACKOFF seconds every count goes to this process's memory without asking Redis at all. Then one
# request at a time probes Redis again. A frozen or dead Redis costs a client at most one short timeout.

# Socket timeouts for the rate-limit storage: Redis next to the app answers in a millisecond or two.
STORAGE_TIMEOUT = 0.05
# A call slower than this (a few round trips at most) trips the breaker although it answered.
SLOW_CALL = 0.2
# After a failed or slow call, count in memory this long before asking the shared storage again.
STORAGE_DOWN_BACKOFF = 10.0
T = TypeVar("T")


def storage_options(url: str) -> dict[str, Any]:
    """Options for the rate-limit storage at url: on Redis, short socket timeouts and no retries."""
    if not url.startswith(("redis", "rediss", "valkey")):
        return {}
    return {
        "socket_timeout": STORAGE_TIMEOUT,
        "socket_connect_timeout": STORAGE_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


class CircuitBreaker:
    """Calls a primary unless it recently failed or was slow; then calls the fallback until a probe succeeds."""

    def __init__(
        self,
        *,
        backoff: float = STORAGE_DOWN_BACKOFF,
        slow: float = SLOW_CALL,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self.slow = slow
        self.name = name
        self.clock = clock
        self.trips = 0
        self._open_until = 0.0
        self._probe = threading.Lock()

    @property
    def is_open(self) -> bool:
        """True while calls skip the primary."""
        return self.clock() < self._open_until

    def call(self, primary: Callable[[], T], fallback: Callable[[], T]) -> T:
        """The primary's answer, or the fallback's while the breaker is open or when the primary fails."""
        if self.clock() < self._open_until:
            return fallback()
        probing = self._open_until > 0.0
        if probing and not self._probe.acquire(blocking=False):
            return fallback()  # another request is finding out whether the primary is back
        try:
            started = self.clock()
            try:
                result = primary()
            except Exception:
                self._trip("failed", exc_info=True)
                return fallback()
            if self.clock() - started > self.slow:
                self._trip(f"took {self.clock() - started:.3f}s", exc_info=False)
            elif probing:
                self._open_until = 0.0
                log.info("%s answers again", self.name)
            return result
        finally:
            if probing:
                self._probe.release()

    def _trip(self, why: str, *, exc_info: bool) -> None:
        self.trips += 1
        self._open_until = self.clock() + self.backoff
        log.warning("%s %s; not asking it for %.0fs", self.name, why, self.backoff, exc_info=exc_info)


class GuardedStorage(Storage):
    """A limits storage that counts in the shared storage when it answers quickly and in memory otherwise."""

    STORAGE_SCHEME = None

    def __init__(self, primary: Storage, breaker: CircuitBreaker | None = None) -> None:
        super().__init__()
        self.primary = primary
        self.memory = MemoryStorage()
        self.breaker = breaker or CircuitBreaker(name="rate-limit storage")

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return self.primary.base_exceptions

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.breaker.call(
            lambda: self.primary.incr(key, expiry, amount), lambda: self.memory.incr(key, expiry, amount)
        )

    def get(self, key: str) -> int:
        return self.breaker.call(lambda: self.primary.get(key), lambda: self.memory.get(key))

    def get_expiry(self, key: str) -> float:
        return self.breaker.call(lambda: self.primary.get_expiry(key), lambda: self.memory.get_expiry(key))

    def check(self) -> bool:
        return self.breaker.call(self.primary.check, lambda: False)

    def reset(self) -> int | None:
        self.memory.reset()
        return self.primary.reset()

    def clear(self, key: str) -> None:
        self.memory.clear(key)
        self.breaker.call(lambda: self.primary.clear(key), lambda: None)


# --- token routes ------------------------------------------------------------------------------------------------
#
# The survey and kiosk routes are the busiest in the service (every client answer is one of their requests), so they
# use the limits strategy directly: one storage round trip per request and nothing else. Same rule as
# @limiter.limit(token_limit) would be: settings.token_rate_limit per client address per route.


@lru_cache(maxsize=8)
def _token_items(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec))


def token_limited(view: F) -> F:
    """Limit a token route to settings.token_rate_limit per client address (429 with Retry-After beyond it)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if limiter.enabled:
            keys = ("token", request.endpoint or "", client_ip())
            strategy = limiter.limiter
            item = next((item for item in _token_items(token_limit()) if not strategy.hit(item, *keys)), None)
            if item is not None:
                stats = strategy.get_window_stats
                raise TooManyRequests(retry_after=_seconds_left(lambda: stats(item, *keys).reset_time, item))
        return view(*args, **kwargs)

    return limited  # type: ignore[return-value]
