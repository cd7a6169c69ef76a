"""The rate limiter (Flask-Limiter), with its storage from settings (memory locally, Redis in production)."""

from __future__ import annotations

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


# One Limiter for the process; init_app in create_app points it at the app's storage.
limiter = Limiter(key_func=client_ip)
