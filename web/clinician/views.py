"""Clinician: my caseload and my clients' records."""

from __future__ import annotations

from flask import Blueprint, render_template

from services.accounts.models import Role
from services.clients.queries import my_caseload
from web.access import allow
from web.client_pages import show_client_record
from web.login import current_account
from web.request_db import db_session

bp = Blueprint("clinician", __name__, url_prefix="/clinician")


@bp.get("/")
@allow(Role.CLINICIAN)
def home() -> str:
    """Clients with an open episode, those with open alerts first."""
    rows = my_caseload(db_session(), current_account())
    return render_template("clinician/home.html", rows=rows)


@bp.get("/clients/<int:client_id>")
@allow(Role.CLINICIAN)
def client(client_id: int) -> str:
    """One of my clients' records (404 for anyone else's; audited)."""
    return show_client_record(client_id, template="clinician/client.html", what="clinician_record")
