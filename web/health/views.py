"""/healthz for load balancers and the launcher: is the database answering?"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from web.access import public
from web.request_db import db_session

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> tuple[Response, int]:
    """200 with {"status": "ok"} when SELECT 1 works, else 503 (details go to the log, not the caller)."""
    try:
        db_session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.exception("health check: the database did not answer")
        return jsonify(status="error", database="unavailable"), 503
    return jsonify(status="ok", database="ok"), 200
