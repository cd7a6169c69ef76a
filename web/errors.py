"""Friendly error pages (JSON under /api); never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from web.inputs import BadParameter
from web.request_db import rollback

log = logging.getLogger(__name__)

TITLES = {
    400: _l("That request could not be handled"),
    401: _l("Please sign in"),
    403: _l("You do not have access to this page"),
    404: _l("We could not find that page"),
    405: _l("That action is not available here"),
    410: _l("This link is no longer valid"),
    413: _l("That upload is too large"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong on our side"),
    503: _l("Rapport is busy or being updated"),
}
MESSAGES = {
    400: _l("Something in the request was not right. Go back and try again."),
    401: _l("Sign in to see this page."),
    403: _l("Your role does not include this page. If you think it should, ask your practice's administrator."),
    404: _l("The page may have moved, or the address may be mistyped."),
    405: _l("Go back and use the buttons on the page."),
    410: _l("The link has expired or was already used. Ask the practice for a new one."),
    413: _l("Choose a smaller file and try again."),
    429: _l("Please wait a minute before trying again."),
    500: _l("The problem has been logged. Please try again in a moment."),
    503: _l("Please try again in a minute."),
}
CSRF_MESSAGE = _l(
    "This form has expired or was sent from somewhere else. Go back, reload the page and submit it again."
)
# Headers an error keeps when it becomes a page (Retry-After on 429, Allow on 405, WWW-Authenticate on 401).
KEPT_HEADERS = ("Retry-After", "Allow", "WWW-Authenticate")


def _wants_json() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def _plain_page(code: int, title: str, message: str) -> str:
    return (
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p><p><a href='/'>Home</a></p></html>"
    )


def error_response(code: int, *, message: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The response for an error status: a JSON body under /api, else the friendly page."""
    title = str(TITLES.get(code, TITLES[500] if code >= 500 else TITLES[400]))
    text = message or str(MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400]))
    response: Response
    if _wants_json():
        response = jsonify(error={"status": code, "title": title, "detail": text})
    else:
        try:
            body = render_template("errors/error.html", code=code, title=title, message=text)
        except Exception:
            log.exception("the error page itself failed to render")
            body = _plain_page(code, title, text)
        response = Response(body, mimetype="text/html")
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if code == 401 and _wants_json():
        response.headers["WWW-Authenticate"] = 'Bearer realm="rapport"'
    return response


def handle_http_error(exc: HTTPException) -> Response:
    """Render an HTTP error raised by abort() or by routing."""
    code = exc.code or 500
    kept = {name: value for name, value in exc.get_headers() if name in KEPT_HEADERS}
    if exc.response is not None:
        kept.update({k: v for k, v in exc.response.headers.items() if k in KEPT_HEADERS})
    if code == 429:
        kept.setdefault("Retry-After", retry_after())
    message = str(CSRF_MESSAGE) if isinstance(exc, CSRFError) else None
    if isinstance(exc, BadParameter):
        message = exc.description
    return error_response(code, message=message, headers=kept)


def retry_after() -> str:
    """The Retry-After value for a rate-limited request."""
    from web.limiter import retry_after_seconds

    return str(retry_after_seconds())


def handle_unexpected(exc: InternalServerError) -> Response:
    """Render the 500 page for an unhandled exception (already logged by Flask with its traceback)."""
    try:
        rollback()
    except Exception:
        log.exception("rollback after an unhandled error failed")
    return error_response(500)


def handle_database_busy(exc: OperationalError) -> Response:
    """The embedded database stayed locked past its busy timeout: ask to try again (503), never a 500.

    Every write transaction waits its turn for SQLite's write lock (BEGIN IMMEDIATE), so this only happens when
    one writer held it for longer than the timeout; nothing was written, so sending the form again is safe.
    Any other database error is unexpected and goes to the 500 handler.
    """
    if "database is locked" not in str(exc.orig):
        raise exc
    log.warning("database busy past the timeout on %s %s", request.method, request.path)
    try:
        rollback()
    except Exception:
        log.exception("rollback after a busy database failed")
    return error_response(503, headers={"Retry-After": "5"})


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(OperationalError, handle_database_busy)
    app.register_error_handler(InternalServerError, handle_unexpected)
