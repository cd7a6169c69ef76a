"""Monthly reports in the JSON API: list them, ask for one, download one (audited). Managers and admins only.

`register_report_routes(bp)` adds the routes to the /api/v1 blueprint; REPORT_PATHS and REPORT_SCHEMAS are this
module's part of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, jsonify, request, send_file, url_for
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.audit.operations import record_event
from services.db import utcnow
from services.reporting.models import Report
from services.reporting.operations import ReportRequestError, request_report, stale_running_after
from services.reporting.periods import PeriodError, ReportScope, parse_period, period_containing
from services.reporting.queries import ScopeNotFoundError, get_report, list_reports, scope_label
from web.access import allow
from web.app import current_settings
from web.errors import error_response
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session
from workers.enqueue import enqueue_after_commit

REPORT_ROLES = (Role.MANAGER, Role.ADMIN)
LIST_LIMIT = 200


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def report_json(row: Report) -> dict[str, Any]:
    """The API's view of a report row (no file path: the download link instead)."""
    ready = row.file_path is not None and row.sha256 is not None
    return {
        "id": row.id,
        "scope": row.scope,
        "period": row.period,
        "status": row.status,
        "progress": row.progress,
        "error": row.error if row.status == "failed" else None,
        "generated_at": _iso(row.generated_at),
        "updated_at": _iso(row.updated_at),
        "size_bytes": row.size_bytes if ready else None,
        "sha256": row.sha256 if ready else None,
        "download_url": url_for("api.reports_download", report_id=row.id, _external=False) if ready else None,
    }


@allow(*REPORT_ROLES)
def reports_list() -> Response:
    """Stored reports, newest period first; ?period=YYYY-MM narrows the list."""
    period = request.args.get("period")
    if period is not None:
        try:
            parse_period(period)
        except PeriodError as exc:
            return error_response(400, message=str(exc))
    rows = list_reports(db_session(), limit=LIST_LIMIT, period=period)
    return jsonify(reports=[report_json(row) for row in rows])


@allow(*REPORT_ROLES)
def reports_request() -> Response:
    """Ask for a report of a period and scope; 202 with the row (queued, or already being generated)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, message='send a JSON object: {"period": "YYYY-MM", "scope": "practice"}')
    period, scope_text = body.get("period"), body.get("scope", "practice")
    if not isinstance(period, str) or not isinstance(scope_text, str):
        return error_response(400, message="period and scope must be strings")
    session = db_session()
    settings = current_settings()
    try:
        scope = ReportScope.parse(scope_text)
        scope_label(session, scope)
        row, fresh = request_report(
            session,
            scope=scope,
            period=period,
            requested_by_id=current_account().id,
            tz_period_now=period_containing(utcnow(), settings.tz),
            stale_after=stale_running_after(settings.report_time_limit),
        )
    except ScopeNotFoundError as exc:
        return error_response(404, message=str(exc))
    except (PeriodError, ReportRequestError) as exc:
        return error_response(400, message=str(exc))
    record_event(
        session,
        action="report_requested",
        actor_id=current_account().id,
        subject_type="report",
        subject_id=row.id,
        ip=client_ip(),
        detail={"scope": row.scope, "period": row.period, "queued": fresh, "via": "api"},
    )
    if fresh:
        enqueue_after_commit(session, "reports.generate", row.id)
    commit()
    response = jsonify(report_json(row))
    response.status_code = 202
    response.headers["Location"] = url_for("api.reports_get", report_id=row.id)
    return response


def _row(report_id: int) -> Report:
    row = get_report(db_session(), report_id)
    if row is None:
        abort(404)
    return row


@allow(*REPORT_ROLES)
def reports_get(report_id: int) -> Response:
    """One report's status."""
    return jsonify(report_json(_row(report_id)))


@allow(*REPORT_ROLES)
def reports_download(report_id: int) -> Response:
    """The PDF of a ready report; the download is audited before it is sent."""
    row = _row(report_id)
    if row.file_path is None or row.sha256 is None:
        return error_response(409, message="this report has no file yet")
    path = Path(row.file_path).resolve()
    if not path.is_relative_to(current_settings().reports_dir.resolve()) or not path.is_file():
        return error_response(404, message="the report's file is missing; generate it again")
    record_event(
        db_session(),
        action="report_downloaded",
        actor_id=current_account().id,
        subject_type="report",
        subject_id=row.id,
        ip=client_ip(),
        detail={"scope": row.scope, "period": row.period, "sha256": row.sha256, "via": "api"},
    )
    commit()
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"rapport-monthly-{ReportScope.parse(row.scope).slug}-{row.period}.pdf",
        conditional=False,
        etag=False,
        max_age=0,
    )


def register_report_routes(bp: Blueprint) -> None:
    """Add the report routes to the API blueprint."""
    bp.add_url_rule("/reports", endpoint="reports_list", view_func=reports_list, methods=["GET"])
    bp.add_url_rule("/reports", endpoint="reports_request", view_func=reports_request, methods=["POST"])
    bp.add_url_rule("/reports/<int:report_id>", endpoint="reports_get", view_func=reports_get, methods=["GET"])
    bp.add_url_rule(
        "/reports/<int:report_id>/download",
        endpoint="reports_download",
        view_func=reports_download,
        methods=["GET"],
    )


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


REPORT_SCHEMAS: dict[str, Any] = {
    "Report": {
        "type": "object",
        "required": ["id", "scope", "period", "status", "progress"],
        "properties": {
            "id": {"type": "integer"},
            "scope": {"type": "string", "pattern": r"^(practice|team:\d+|clinician:\d+)$"},
            "period": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
            "status": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "error": {"type": ["string", "null"]},
            "generated_at": {"type": ["string", "null"], "format": "date-time"},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
            "size_bytes": {"type": ["integer", "null"]},
            "sha256": {"type": ["string", "null"]},
            "download_url": {"type": ["string", "null"]},
        },
    },
    "ReportList": {
        "type": "object",
        "required": ["reports"],
        "properties": {"reports": {"type": "array", "items": {"$ref": "#/components/schemas/Report"}}},
    },
    "ReportRequest": {
        "type": "object",
        "required": ["period"],
        "properties": {
            "period": {"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2026-10"},
            "scope": {
                "type": "string",
                "pattern": r"^(practice|team:\d+|clinician:\d+)$",
                "default": "practice",
            },
        },
    },
}

_REPORT_ID = {"name": "report_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_REPORT_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}

REPORT_PATHS: dict[str, Any] = {
    "/reports": {
        "get": {
            "operationId": "listReports",
            "summary": "Monthly reports, newest period first (managers and admins)",
            "parameters": [
                {"name": "period", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The reports",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportList"}}},
                },
                "400": _error("Malformed period"),
                "401": _error("Missing, unknown or revoked token"),
                "403": _error("The token's account is not a manager or admin"),
            },
        },
        "post": {
            "operationId": "requestReport",
            "summary": "Generate (or generate again) the report of a period and scope",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportRequest"}}},
            },
            "responses": {
                "202": {"description": "Queued, or already being generated", "content": _REPORT_JSON},
                "400": _error("Malformed period or scope, or a month that has not started"),
                "401": _error("Missing, unknown or revoked token"),
                "403": _error("The token's account is not a manager or admin"),
                "404": _error("No such team or clinician"),
            },
        },
    },
    "/reports/{report_id}": {
        "get": {
            "operationId": "getReport",
            "summary": "One report's status and progress",
            "parameters": [_REPORT_ID],
            "responses": {
                "200": {"description": "The report", "content": _REPORT_JSON},
                "401": _error("Missing, unknown or revoked token"),
                "403": _error("The token's account is not a manager or admin"),
                "404": _error("No such report"),
            },
        }
    },
    "/reports/{report_id}/download": {
        "get": {
            "operationId": "downloadReport",
            "summary": "The report's PDF (audited)",
            "parameters": [_REPORT_ID],
            "responses": {
                "200": {
                    "description": "The PDF",
                    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                },
                "401": _error("Missing, unknown or revoked token"),
                "403": _error("The token's account is not a manager or admin"),
                "404": _error("No such report, or its file is missing"),
                "409": _error("The report has no file yet"),
            },
        }
    },
}
