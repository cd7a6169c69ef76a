"""The JSON API under /api/v1: bearer tokens only, JSON errors, an OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from web.access import public, signed_in
from web.api.openapi import openapi_document
from web.app import current_settings
from web.login import current_account

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/me")
@signed_in
def me() -> Response:
    """The account the bearer token acts as."""
    account = current_account()
    return jsonify(
        id=account.id,
        email=account.email,
        name=account.name,
        role=account.role,
        team=account.team.name if account.team is not None else None,
    )


@bp.get("/openapi.json")
@public
def openapi() -> Response:
    """The OpenAPI document."""
    return jsonify(openapi_document(current_settings().base_url))


# The front desk's endpoints register on this blueprint.
from web.api import frontdesk as _frontdesk  # noqa: E402,F401

# Monthly reports (list, request, download) register on this blueprint too.
from web.api.reports import register_report_routes  # noqa: E402

register_report_routes(bp)

# Clinicians' and supervisors' alerts (list, read, acknowledge, note, repair step, resolve).
from web.api.alerts import register_alert_routes  # noqa: E402

register_alert_routes(bp)
