"""Alerts in the JSON API: list (scoped, paginated, filtered), read one, and act on one (acknowledge, note, repair
step on a partnership alert, step on a risk or outcome alert, resolve with a reason of the alert's kind).
Clinicians see their caseload's alerts and supervisors their team's; anything else is a 404.

The same scoped query and service functions as the pages: the alert is loaded with for_update=True before acting,
the service writes the alert action and its audit event, and the handler commits once. Bad input is a 400 naming the
problem, acting on a resolved alert a 409; nothing is half-written. `register_alert_routes(bp)` adds the routes;
ALERT_PATHS and ALERT_SCHEMAS are this module's part of the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from services.accounts.models import Role, User
from services.alerts.kinds import EPISODE_ENDED, RESOLUTION_REASONS, STEPS, resolution_reasons, steps_for
from services.alerts.models import Alert, AlertAction
from services.alerts.operations import (
    AlertActionError,
    acknowledge_alert,
    add_alert_note,
    record_repair_step,
    record_step,
    resolve_alert,
)
from services.alerts.queries import ALERT_STATUSES, AlertDetail, get_alert_for, list_alerts_page
from services.alerts.repair import REPAIR_TOPICS
from services.alerts.summary import summarize_alert
from services.audit.operations import record_client_view
from services.clients.queries import DEFAULT_PER_PAGE, MAX_PER_PAGE
from web.access import allow
from web.errors import error_response
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback

ALERT_ROLES = (Role.CLINICIAN, Role.SUPERVISOR)
# The reasons a person may send (the system's "episode_ended" is not one of them).
CHOOSABLE_REASONS = tuple(reason for reason in RESOLUTION_REASONS if reason != EPISODE_ENDED)
ALERT_KINDS = ("risk", "alliance", "outcome")
MAX_TEXT = 2000


class Refused(Exception):
    """A request refused with a status and a message naming the problem."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _language(account: User) -> str:
    return account.language if account.language in ("en", "es") else "en"


def alert_json(
    alert: Alert, *, client_id: int, client_code: str, episode_id: int, clinician_id: int, language: str
) -> dict[str, Any]:
    """The API's view of an alert (no client name: the code and id identify the client to staff)."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "status": alert.status,
        "severity": alert.severity,
        "summary": summarize_alert(alert.kind, alert.evidence, language=language),
        "client": {"id": client_id, "code": client_code},
        "episode_id": episode_id,
        "clinician_id": clinician_id,
        "baseline": alert.baseline,
        "opened_session": alert.opened_session,
        "opened_at": _iso(alert.opened_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "repaired_at": _iso(alert.repaired_at),
        "resolved_at": _iso(alert.resolved_at),
        "resolution_reason": alert.resolution_reason,
        "page_url": url_for("clinician.alert", alert_id=alert.id),
    }


def action_json(action: AlertAction) -> dict[str, Any]:
    """One thing done about an alert."""
    return {
        "id": action.id,
        "action": action.action,
        "at": _iso(action.at),
        "actor_id": action.actor_id,
        "component": action.component,
        "text": action.text,
        "detail": dict(action.detail or {}),
    }


def detail_json(detail: AlertDetail, *, language: str) -> dict[str, Any]:
    """An alert with its evidence (sentences and numbers), what was done, and repair suggestions."""
    data = alert_json(
        detail.alert,
        client_id=detail.client.id,
        client_code=detail.client.code,
        episode_id=detail.episode.id,
        clinician_id=detail.episode.clinician_id,
        language=language,
    )
    data["evidence"] = [
        {"session": line.session, "kind": line.kind, "at": line.at, "text": line.text, "numbers": line.numbers}
        for line in detail.evidence
    ]
    data["actions"] = [action_json(action) for action in detail.actions]
    data["suggestions"] = [
        {"key": s.key, "topic": s.topic, "text": s.in_language(language)} for s in detail.suggestions
    ]
    data["steps"] = list(steps_for(detail.alert.kind))
    data["resolution_reasons"] = list(resolution_reasons(detail.alert.kind))
    return data


def _body(allowed: Collection[str], *, optional: bool = False) -> dict[str, Any]:
    if optional and not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused("Send a JSON object with Content-Type: application/json.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise Refused(f"Unknown field(s): {', '.join(unknown)}.")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise Refused(f"Missing field: {name}.")
        return None
    if not isinstance(value, str):
        raise Refused(f"{name} must be a string.")
    if len(value) > MAX_TEXT:
        raise Refused(f"{name} is longer than {MAX_TEXT} characters.")
    if required and not value.strip():
        raise Refused(f"{name} must not be empty.")
    return value


def _int_arg(name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise Refused(f"{name} must be a whole number from {lo} to {hi}.")
    return int(raw)


def _guarded(view: Callable[..., Response]) -> Callable[..., Response]:
    def run(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except Refused as exc:
            rollback()
            return error_response(exc.status, message=exc.detail)

    run.__name__ = view.__name__
    run.__doc__ = view.__doc__
    return allow(*ALERT_ROLES)(run)


def alerts_list() -> Response:
    """Alerts the token's account may see: ?status=open|acknowledged|resolved, ?kind=risk|alliance|outcome, pages."""
    unknown = sorted(set(request.args) - {"status", "kind", "page", "per_page"})
    if unknown:
        raise Refused(f"Unknown query parameter(s): {', '.join(unknown)}.")
    status = request.args.get("status")
    if status is not None and status not in ALERT_STATUSES:
        raise Refused(f"status must be one of: {', '.join(ALERT_STATUSES)}.")
    kind = request.args.get("kind")
    if kind is not None and kind not in ALERT_KINDS:
        raise Refused(f"kind must be one of: {', '.join(ALERT_KINDS)}.")
    page_number = _int_arg("page", 1, lo=1, hi=1_000_000)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, lo=1, hi=MAX_PER_PAGE)
    account = current_account()
    language = _language(account)
    page = list_alerts_page(db_session(), account, status=status, kind=kind, page=page_number, per_page=per_page)
    return jsonify(
        alerts=[
            alert_json(
                item.alert,
                client_id=item.client_id,
                client_code=item.client_code,
                episode_id=item.episode_id,
                clinician_id=item.clinician_id,
                language=language,
            )
            for item in page.items
        ],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        pages=page.pages,
    )


def _load(alert_id: int, *, for_update: bool) -> AlertDetail:
    account = current_account()
    detail = get_alert_for(db_session(), account, alert_id, language=_language(account), for_update=for_update)
    if detail is None:
        abort(404)
    return detail


def alerts_get(alert_id: int) -> Response:
    """One alert with its evidence, actions and repair suggestions (the view is audited)."""
    account = current_account()
    detail = _load(alert_id, for_update=False)
    record_client_view(
        db_session(), actor_id=account.id, client_id=detail.client.id, what=f"alert:{alert_id}:api", ip=client_ip()
    )
    body = detail_json(detail, language=_language(account))
    commit()
    return jsonify(body)


Act = Callable[[Session, AlertDetail, User], AlertAction | None]


def _act(alert_id: int, act: Act, *, created: bool) -> Response:
    session = db_session()
    account = current_account()
    detail = _load(alert_id, for_update=True)
    try:
        action = act(session, detail, account)
    except AlertActionError as exc:
        rollback()
        conflict = detail.alert.status == "resolved"
        return error_response(409 if conflict else 400, message=str(exc))
    commit()
    session.expire_all()
    fresh = _load(alert_id, for_update=False)
    response = jsonify(
        alert=detail_json(fresh, language=_language(account)),
        action=action_json(action) if action is not None else None,
    )
    response.status_code = 201 if created and action is not None else 200
    return response


def alerts_acknowledge(alert_id: int) -> Response:
    """Acknowledge the alert; 200 with "action": null when it was already acknowledged (harmless)."""
    _body((), optional=True)
    return _act(
        alert_id,
        lambda session, detail, account: acknowledge_alert(session, detail.alert, actor=account, ip=client_ip()),
        created=False,
    )


def alerts_note(alert_id: int) -> Response:
    """Add a note: {"text": "..."}."""
    _load(alert_id, for_update=False)  # 404 outside the caseload before the body is judged (no 400 oracle)
    data = _body(("text",))
    text = _text(data, "text", required=True)
    return _act(
        alert_id,
        lambda session, detail, account: add_alert_note(
            session, detail.alert, actor=account, text=text or "", ip=client_ip()
        ),
        created=True,
    )


def alerts_repair_step(alert_id: int) -> Response:
    """Record a repair step: {"suggestion": key} and/or {"text": "..."}, optionally {"component": topic}."""
    _load(alert_id, for_update=False)  # 404 outside the caseload before the body is judged (no 400 oracle)
    data = _body(("suggestion", "text", "component"))
    suggestion = _text(data, "suggestion")
    text = _text(data, "text")
    component = _text(data, "component")
    if not suggestion and not (text or "").strip():
        raise Refused("Send a suggestion key, a text, or both.")
    if component is not None and component not in REPAIR_TOPICS:
        raise Refused(f"component must be one of: {', '.join(REPAIR_TOPICS)}.")
    return _act(
        alert_id,
        lambda session, detail, account: record_repair_step(
            session,
            detail.alert,
            actor=account,
            suggestion_key=suggestion or None,
            text=text,
            component=component,
            ip=client_ip(),
        ),
        created=True,
    )


def alerts_step(alert_id: int) -> Response:
    """Record a step on a risk or outcome alert: {"step": "contacted_client" | ..., "text": "..."}."""
    _load(alert_id, for_update=False)  # 404 outside the caseload before the body is judged (no 400 oracle)
    data = _body(("step", "text"))
    step = _text(data, "step", required=True)
    if step not in STEPS:
        raise Refused(f"step must be one of: {', '.join(STEPS)}.")
    text = _text(data, "text")
    return _act(
        alert_id,
        lambda session, detail, account: record_step(
            session, detail.alert, actor=account, step=step or "", text=text, ip=client_ip()
        ),
        created=True,
    )


def alerts_resolve(alert_id: int) -> Response:
    """Resolve: {"reason": one of the alert's "resolution_reasons", "note": "..."} (a note with "other")."""
    _load(alert_id, for_update=False)  # 404 outside the caseload before the body is judged (no 400 oracle)
    data = _body(("reason", "note"))
    reason = _text(data, "reason", required=True)
    if reason not in CHOOSABLE_REASONS:
        raise Refused(f"reason must be one of: {', '.join(CHOOSABLE_REASONS)}.")
    note = _text(data, "note")
    return _act(
        alert_id,
        lambda session, detail, account: resolve_alert(
            session, detail.alert, actor=account, reason=reason, note=note, ip=client_ip()
        ),
        created=False,
    )


def register_alert_routes(bp: Blueprint) -> None:
    """Add the alert routes to the API blueprint."""
    routes: list[tuple[str, str, Callable[..., Response], str]] = [
        ("/alerts", "alerts_list", alerts_list, "GET"),
        ("/alerts/<int:alert_id>", "alerts_get", alerts_get, "GET"),
        ("/alerts/<int:alert_id>/acknowledge", "alerts_acknowledge", alerts_acknowledge, "POST"),
        ("/alerts/<int:alert_id>/notes", "alerts_note", alerts_note, "POST"),
        ("/alerts/<int:alert_id>/repair-steps", "alerts_repair_step", alerts_repair_step, "POST"),
        ("/alerts/<int:alert_id>/steps", "alerts_step", alerts_step, "POST"),
        ("/alerts/<int:alert_id>/resolve", "alerts_resolve", alerts_resolve, "POST"),
    ]
    for rule, endpoint, view, method in routes:
        bp.add_url_rule(rule, endpoint=endpoint, view_func=_guarded(view), methods=[method])


# OpenAPI ------------------------------------------------------------------------------------------------------------


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

ALERT_SCHEMAS: dict[str, Any] = {
    "Alert": {
        "type": "object",
        "required": ["id", "kind", "status", "severity", "summary", "client", "episode_id", "opened_at"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": list(ALERT_KINDS)},
            "status": {"type": "string", "enum": list(ALERT_STATUSES)},
            "severity": {"type": "string", "enum": ["info", "amber", "red", "risk"]},
            "summary": {"type": "string", "description": "One-line reason in the account's language"},
            "client": {
                "type": "object",
                "required": ["id", "code"],
                "properties": {"id": {"type": "integer"}, "code": {"type": "string"}},
            },
            "episode_id": {"type": "integer"},
            "clinician_id": {"type": "integer"},
            "baseline": {"type": ["number", "null"]},
            "opened_session": {"type": ["integer", "null"]},
            "opened_at": {"type": "string", "format": "date-time"},
            "acknowledged_at": _NULLABLE_TIME,
            "repaired_at": _NULLABLE_TIME,
            "resolved_at": _NULLABLE_TIME,
            "resolution_reason": {"type": ["string", "null"], "enum": [*RESOLUTION_REASONS, None]},
            "page_url": {"type": "string"},
        },
    },
    "AlertAction": {
        "type": "object",
        "required": ["id", "action", "at"],
        "properties": {
            "id": {"type": "integer"},
            "action": {
                "type": "string",
                "enum": ["acknowledged", "note", "repair_step", "step", "resolved", "escalated"],
            },
            "at": {"type": "string", "format": "date-time"},
            "actor_id": {"type": ["integer", "null"]},
            "component": {"type": ["string", "null"]},
            "text": {"type": ["string", "null"]},
            "detail": {"type": "object"},
        },
    },
    "AlertDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Alert"},
            {
                "type": "object",
                "required": ["evidence", "actions", "suggestions", "steps", "resolution_reasons"],
                "properties": {
                    "evidence": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "session": {"type": ["integer", "null"]},
                                "kind": {"type": "string"},
                                "at": {"type": ["string", "null"]},
                                "text": {"type": "string"},
                                "numbers": {"type": "object"},
                            },
                        },
                    },
                    "actions": {"type": "array", "items": {"$ref": "#/components/schemas/AlertAction"}},
                    "steps": {
                        "type": "array",
                        "description": "Steps this alert's kind records (POST .../steps); empty for partnership alerts",
                        "items": {"type": "string", "enum": list(STEPS)},
                    },
                    "resolution_reasons": {
                        "type": "array",
                        "description": "The reasons this alert's kind may be resolved with",
                        "items": {"type": "string", "enum": list(CHOOSABLE_REASONS)},
                    },
                    "suggestions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "key": {"type": "string"},
                                "topic": {"type": "string"},
                                "text": {"type": "string"},
                            },
                        },
                    },
                },
            },
        ]
    },
    "AlertList": {
        "type": "object",
        "required": ["alerts", "page", "per_page", "total", "pages"],
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    },
    "AlertActionResult": {
        "type": "object",
        "required": ["alert", "action"],
        "properties": {
            "alert": {"$ref": "#/components/schemas/AlertDetail"},
            "action": {"oneOf": [{"$ref": "#/components/schemas/AlertAction"}, {"type": "null"}]},
        },
    },
    "AlertNote": {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}},
    },
    "AlertRepairStep": {
        "type": "object",
        "additionalProperties": False,
        "description": "A suggestion key (from the alert's suggestions), a text, or both.",
        "properties": {
            "suggestion": {"type": "string"},
            "text": {"type": "string", "maxLength": MAX_TEXT},
            "component": {"type": "string", "enum": list(REPAIR_TOPICS)},
        },
    },
    "AlertStep": {
        "type": "object",
        "required": ["step"],
        "additionalProperties": False,
        "description": 'A step of the alert\'s kind (its "steps"), with optional words.',
        "properties": {
            "step": {"type": "string", "enum": list(STEPS)},
            "text": {"type": "string", "maxLength": MAX_TEXT},
        },
    },
    "AlertResolve": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "description": "A reason of the alert's kind (its resolution_reasons; another kind's is a 400). A note is "
        "required when the reason is other.",
        "properties": {
            "reason": {"type": "string", "enum": list(CHOOSABLE_REASONS)},
            "note": {"type": "string", "maxLength": MAX_TEXT},
        },
    },
}

_ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_RESULT = {"application/json": {"schema": {"$ref": "#/components/schemas/AlertActionResult"}}}
_COMMON = {
    "401": _error("Missing, unknown or revoked token"),
    "403": _error("The token's account is not a clinician or supervisor"),
    "404": _error("No such alert, or not in the account's caseload or team"),
}


def _action_path(operation_id: str, summary: str, schema: str | None, ok: str, body_required: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [_ALERT_ID],
        "responses": {
            ok: {"description": "Done", "content": _RESULT},
            "400": _error("Malformed body or a value the action does not accept"),
            **_COMMON,
            "409": _error("The alert is already resolved"),
        },
    }
    if schema is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    return {"post": operation}


ALERT_PATHS: dict[str, Any] = {
    "/alerts": {
        "get": {
            "operationId": "listAlerts",
            "summary": "Alerts in the account's caseload (clinician) or team (supervisor), most urgent first",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(ALERT_STATUSES)}},
                {"name": "kind", "in": "query", "schema": {"type": "string", "enum": list(ALERT_KINDS)}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {
                    "name": "per_page",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
                },
            ],
            "responses": {
                "200": {
                    "description": "One page of alerts",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertList"}}},
                },
                "400": _error("Unknown parameter or value"),
                "401": _COMMON["401"],
                "403": _COMMON["403"],
            },
        }
    },
    "/alerts/{alert_id}": {
        "get": {
            "operationId": "getAlert",
            "summary": "One alert with its evidence, actions and repair suggestions (the view is audited)",
            "parameters": [_ALERT_ID],
            "responses": {
                "200": {
                    "description": "The alert",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertDetail"}}},
                },
                **_COMMON,
            },
        }
    },
    "/alerts/{alert_id}/acknowledge": _action_path(
        "acknowledgeAlert", "Acknowledge the alert (again is harmless: action is null)", None, "200", False
    ),
    "/alerts/{alert_id}/notes": _action_path("addAlertNote", "Add a note", "AlertNote", "201", True),
    "/alerts/{alert_id}/repair-steps": _action_path(
        "recordRepairStep", "Record the repair step taken", "AlertRepairStep", "201", True
    ),
    "/alerts/{alert_id}/steps": _action_path(
        "recordAlertStep", "Record a step taken on a risk or outcome alert", "AlertStep", "201", True
    ),
    "/alerts/{alert_id}/resolve": _action_path(
        "resolveAlert", "Resolve the alert with a reason", "AlertResolve", "200", True
    ),
}
