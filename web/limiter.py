"""The rate limiter (Flask-Limiter), with its storage from settings (memory locally, Redis in production)."""

from __future__ import annotations

import time

from flask import request
from flask_limiter import Limiter

from web.app import current_settings


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
    try:
        return max(1, int(limit.reset_at - time.time()))
    except Exception:
        return max(1, int(limit.limit.get_expiry()))


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
