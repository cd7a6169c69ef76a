"""Manager: practice-wide counts and the monthly reports (no individual client records)."""

from __future__ import annotations

from flask import Blueprint, render_template

from services.accounts.models import Role
from services.clients.queries import practice_summary
from web.access import allow
from web.manager.queries import list_reports
from web.request_db import db_session

bp = Blueprint("manager", __name__, url_prefix="/manager")


@bp.get("/")
@allow(Role.MANAGER)
def home() -> str:
    """Practice summary and the list of reports."""
    session = db_session()
    return render_template("manager/home.html", summary=practice_summary(session), reports=list_reports(session))
