"""Front desk: the client roster and client records (contacts, episodes, appointments; never scores)."""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.clients.queries import list_visible_clients
from web.access import allow
from web.client_pages import show_client_record
from web.htmx import wants_fragment
from web.login import current_account
from web.request_db import db_session

bp = Blueprint("frontdesk", __name__, url_prefix="/frontdesk")

ROSTER_TARGET = "roster-results"


@bp.get("/")
@allow(Role.FRONT_DESK)
def home() -> Response:
    """The roster: search by name or code, 25 to a page."""
    query = request.args.get("q", "").strip()[:100]
    page = request.args.get("page", 1, type=int) or 1
    results = list_visible_clients(db_session(), current_account(), search=query, page=page)
    template = "frontdesk/_roster.html" if wants_fragment(ROSTER_TARGET) else "frontdesk/home.html"
    response = make_response(render_template(template, results=results, q=query, target=ROSTER_TARGET))
    response.vary.add("HX-Request")
    return response


@bp.get("/clients/<int:client_id>")
@allow(Role.FRONT_DESK)
def client(client_id: int) -> str:
    """One client's record for the front desk (audited)."""
    return show_client_record(client_id, template="frontdesk/client.html", what="frontdesk_record")
