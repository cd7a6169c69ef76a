"""CSRF protection for every form and the security headers on every response."""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from web.app import current_settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)
HSTS = "max-age=63072000; includeSubDomains"

csrf = CSRFProtect()


def add_security_headers(response: Response) -> Response:
    """after_request: a strict CSP and friends; no caching of anything but static files."""
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if current_settings().is_production:
        headers["Strict-Transport-Security"] = HSTS
    if request.endpoint != "static":
        # Pages carry health information: keep them out of every cache, shared or not, and the back-forward cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> CSRFProtect:
    """Turn on CSRF checks for every unsafe method and add the headers to every response."""
    csrf.init_app(app)
    app.after_request(add_security_headers)
    return csrf
