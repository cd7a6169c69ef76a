"""The Flask application factory and the accessors for its settings and database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, redirect, url_for
from werkzeug.wrappers import Response

from services.config import Settings, load_settings
from services.db import Database, get_database

WEB_DIR = Path(__file__).resolve().parent
EXTENSION_KEY = "rapport"


@dataclass(frozen=True)
class RapportState:
    """What create_app hangs on app.extensions["rapport"]."""

    settings: Settings
    database: Database


def current_settings() -> Settings:
    """The running app's Settings."""
    state: RapportState = current_app.extensions[EXTENSION_KEY]
    return state.settings


def current_db() -> Database:
    """The running app's Database."""
    state: RapportState = current_app.extensions[EXTENSION_KEY]
    return state.database


def _configure_flask(app: Flask, settings: Settings) -> None:
    from web.limiter import storage_options

    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="rapport_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PREFERRED_URL_SCHEME="https" if settings.is_production else "http",
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
        JSON_SORT_KEYS=False,
        # The Referrer-Policy is no-referrer, so browsers send no Referer for Flask-WTF's HTTPS check to
        # compare; the CSRF token plus SameSite=Lax cookies do the work.
        WTF_CSRF_SSL_STRICT=False,
        BABEL_TRANSLATION_DIRECTORIES=str(WEB_DIR / "translations"),
        BABEL_DEFAULT_LOCALE="en",
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        # Tens of milliseconds per Redis call, no retries; web.limiter's breaker does the rest.
        RATELIMIT_STORAGE_OPTIONS=storage_options(settings.ratelimit_storage_url),
        # Retry-After is added to 429 pages by web.errors; X-RateLimit-* on every response would cost two storage
        # round trips per request.
        RATELIMIT_HEADERS_ENABLED=False,
        # A broken Redis must not lock everyone out: fall back to per-process memory and log it.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    # Autoescape every template, whatever its extension.
    app.jinja_options = {**app.jinja_options, "autoescape": True, "trim_blocks": True, "lstrip_blocks": True}


def _configure_enqueueing(settings: Settings) -> None:
    """Point the Celery publisher at these settings (the app only ever enqueues, after commit)."""
    from workers import runtime

    runtime.use_settings(settings)
    from workers.app import configure

    configure(settings)


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    """Build the Rapport web app on settings (default: the environment) and database (default: settings')."""
    settings = settings or load_settings()
    database = database or get_database(settings.database_url)
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.extensions[EXTENSION_KEY] = RapportState(settings=settings, database=database)
    _configure_flask(app, settings)
    _configure_enqueueing(settings)
    if settings.trusted_proxies:
        # Behind N proxies (infra/nginx/), the client's address and scheme are the Nth from the right of the
        # X-Forwarded-* headers, which each proxy appends to: rate limits and audit rows see the client, not nginx.
        # Without proxies nothing is trusted, so a client cannot choose its own address with a header.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]

    from web import access, errors, i18n, inputs, layout, login, request_db, security
    from web.admin import api_tokens as _admin_api_tokens  # noqa: F401  (its routes join the admin blueprint)
    from web.admin import audit as _admin_audit  # noqa: F401  (the same)
    from web.admin import crisis as _admin_crisis  # noqa: F401  (the same)
    from web.admin import kiosks as _admin_kiosks  # noqa: F401  (the same)
    from web.admin import practice as _admin_practice  # noqa: F401  (the same)
    from web.admin import rules as _admin_rules  # noqa: F401  (the same)
    from web.admin.views import bp as admin_bp
    from web.api.views import bp as api_bp
    from web.auth import two_factor
    from web.auth.views import bp as auth_bp
    from web.clinician.views import bp as clinician_bp
    from web.frontdesk.views import bp as frontdesk_bp
    from web.health.views import bp as health_bp
    from web.limiter import limiter
    from web.manager.views import bp as manager_bp
    from web.reviews.views import bp as reviews_bp
    from web.supervisor.views import bp as supervisor_bp
    from web.survey.views import bp as survey_bp

    request_db.init_app(app)
    inputs.register_converters(app)
    # The access check runs before any other request hook, so nothing runs for a request it refuses.
    access.init_app(app)
    two_factor.init_app(app)  # then the practice's two-step rule, before any view's own work
    # And every parameter to its type's range (control characters, 64-bit numbers), before any view reads it.
    inputs.init_app(app)
    login.init_app(app)
    csrf = security.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    layout.init_app(app)
    errors.init_app(app)

    for blueprint in (
        auth_bp,
        frontdesk_bp,
        clinician_bp,
        supervisor_bp,
        reviews_bp,
        manager_bp,
        admin_bp,
        survey_bp,
        api_bp,
        health_bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(api_bp)  # bearer tokens, never cookies: nothing for a forged cross-site request to ride on

    @app.get("/")
    @access.public
    def index() -> Response:
        """Send a signed-in user to their home and everyone else to the login page."""
        viewer = login.current_staff()
        if viewer is not None:
            return redirect(access.home_url(viewer.role))
        return redirect(url_for("auth.login"))

    return app
