"""The client survey at /s/<token>. Only the route exists yet: the survey itself is the front-desk-and-surveys
issue's. Every link answers with the friendly "not valid" page (404) until then; GET never consumes a token."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.access import public
from web.app import current_settings
from web.limiter import limiter, token_limit

bp = Blueprint("survey", __name__, url_prefix="/s")


@bp.get("/<token>")
@public
@limiter.limit(token_limit)
def start(token: str) -> tuple[str, int]:
    """The survey's first page (for now: every token is unknown)."""
    return render_template("survey/unknown.html", crisis_info=current_settings().crisis_info), 404
