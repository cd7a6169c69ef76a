"""OpenAPI paths and schemas of the front desk's endpoints (web/api/frontdesk.py); merged by openapi.py."""

from __future__ import annotations

from typing import Any

STAMP: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
INVITATION_STATUSES = ["scheduled", "sent", "opened", "started", "completed", "cancelled", "expired", "failed"]
APPOINTMENT_STATUSES = ["scheduled", "completed", "cancelled", "no_show"]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _page_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 1},
        },
    }


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PAGING = [
    _query("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number"),
    _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}, "Items per page"),
]


def _op(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    status: str = "200",
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    not_found: bool = False,
    bad_request: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: ok,
        "401": _error("Missing, unknown or revoked token"),
        "403": _error("The token's account is not front desk"),
    }
    if bad_request or body is not None or params:
        responses["400"] = _error("Invalid input; the detail names the problem")
    if not_found:
        responses["404"] = _error("No such record (or not visible to this account)")
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["front desk"],
        "responses": responses,
    }
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


CLIENT_INPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "first_name": {"type": "string", "maxLength": 100},
        "last_name": {"type": "string", "maxLength": 100},
        "email": {"type": ["string", "null"], "maxLength": 254},
        "phone": {
            "type": ["string", "null"],
            "maxLength": 40,
            "description": "A mobile number; without a country code it is read in the practice's region "
            "(RAPPORT_PHONE_REGION). Stored as E.164; an invalid number is a 400.",
        },
        "language": {"type": "string", "enum": ["en", "es"]},
        "consent_email": {"type": "boolean"},
        "consent_sms": {"type": "boolean"},
    },
}

TIMES: dict[str, Any] = {
    "starts_at": {"type": "string", "format": "date-time", "description": "ISO 8601 with a UTC offset"},
    "ends_at": {"type": "string", "format": "date-time"},
    "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 480},
}

PHASE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"phase": {"type": "string", "enum": ["pre", "post"]}},
}

FUNNEL_COUNTS: dict[str, Any] = {
    "sent": {"type": "integer"},
    "opened": {"type": "integer"},
    "started": {"type": "integer"},
    "completed": {"type": "integer"},
}

SCHEMAS: dict[str, Any] = {
    "Client": {
        "type": "object",
        "required": ["id", "code", "first_name", "last_name", "language", "consent_email", "consent_sms"],
        "properties": {
            "id": {"type": "integer"},
            "code": {
                "type": "string",
                "description": "Pseudonymous client code: C and seven characters without look-alikes (CNXJ4UNV)",
            },
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "phone": {"type": ["string", "null"], "description": "E.164, such as +447700900123"},
            "language": {"type": "string", "enum": ["en", "es"]},
            "consent_email": {"type": "boolean"},
            "consent_sms": {"type": "boolean"},
            "opted_out_at": STAMP,
            "archived_at": STAMP,
            "created_at": STAMP,
        },
    },
    "ClientInput": {**CLIENT_INPUT, "required": ["first_name", "last_name"]},
    "ClientUpdate": CLIENT_INPUT,
    "Episode": {
        "type": "object",
        "required": ["id", "client_id", "clinician_id", "protocol_code", "started_on", "goals"],
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "clinician_id": {"type": "integer"},
            "protocol_code": {"type": "string"},
            "started_on": {"type": "string", "format": "date"},
            "ended_on": {"type": ["string", "null"], "format": "date"},
            "goals": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
    },
    "EpisodeInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["client_id", "clinician_id"],
        "properties": {
            "client_id": {"type": "integer"},
            "clinician_id": {"type": "integer"},
            "protocol_code": {"type": "string", "default": "standard"},
            "started_on": {"type": "string", "format": "date"},
            "goals": {"type": "array", "items": {"type": "string", "maxLength": 300}, "maxItems": 3},
        },
    },
    "Appointment": {
        "type": "object",
        "required": ["id", "episode_id", "client_id", "starts_at", "ends_at", "status", "source", "invitations"],
        "properties": {
            "id": {"type": "integer"},
            "episode_id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": APPOINTMENT_STATUSES},
            "source": {"type": "string"},
            "external_id": {"type": ["string", "null"]},
            "checked_in_at": STAMP,
            "invitations": {
                "type": "object",
                "description": "Invitation status per phase (pre, post)",
                "additionalProperties": {"type": "string", "enum": INVITATION_STATUSES},
            },
        },
    },
    "AppointmentInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["episode_id", "starts_at"],
        "description": "Give ends_at or duration_minutes.",
        "properties": {
            "episode_id": {"type": "integer"},
            **TIMES,
            "source": {"type": "string", "maxLength": 20, "default": "api"},
            "external_id": {"type": "string", "maxLength": 200},
        },
    },
    "AppointmentMove": {
        "type": "object",
        "additionalProperties": False,
        "required": ["starts_at"],
        "description": "Give ends_at or duration_minutes.",
        "properties": TIMES,
    },
    "Invitation": {
        "type": "object",
        "required": ["id", "client_id", "episode_id", "phase", "channel", "status", "expires_at"],
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "episode_id": {"type": "integer"},
            "appointment_id": {"type": ["integer", "null"]},
            "phase": {"type": "string", "enum": ["pre", "post", "adhoc"]},
            "channel": {"type": "string", "enum": ["email", "sms", "kiosk", "link"]},
            "status": {"type": "string", "enum": INVITATION_STATUSES},
            "questionnaires": {"type": "integer"},
            "due_at": STAMP,
            "sent_at": STAMP,
            "opened_at": STAMP,
            "started_at": STAMP,
            "completed_at": STAMP,
            "cancelled_at": STAMP,
            "expires_at": {"type": "string", "format": "date-time"},
            "reminder_sent_at": STAMP,
            "created_at": STAMP,
        },
    },
    "ImportReport": {
        "type": "object",
        "required": ["source", "imported", "updated", "skipped", "rows"],
        "properties": {
            "source": {"type": "string"},
            "imported": {"type": "integer"},
            "updated": {"type": "integer"},
            "skipped": {"type": "integer"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["line", "outcome", "reason"],
                    "properties": {
                        "line": {"type": "integer"},
                        "external_id": {"type": ["string", "null"]},
                        "outcome": {"type": "string", "enum": ["imported", "updated", "skipped"]},
                        "reason": {"type": "string"},
                        "appointment_id": {"type": ["integer", "null"]},
                        "client_id": {"type": ["integer", "null"]},
                    },
                },
            },
        },
    },
    "FunnelGroup": {
        "type": "object",
        "required": ["key", "label", "sent", "opened", "started", "completed"],
        "properties": {"key": {"type": "string"}, "label": {"type": "string"}, **FUNNEL_COUNTS},
    },
    "Funnel": {
        "type": "object",
        "required": ["from", "to", "total", "by_channel", "by_clinician", "by_week"],
        "properties": {
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "total": {"type": "object", "properties": FUNNEL_COUNTS},
            "by_channel": {"type": "array", "items": _ref("FunnelGroup")},
            "by_clinician": {"type": "array", "items": _ref("FunnelGroup")},
            "by_week": {"type": "array", "items": _ref("FunnelGroup")},
        },
    },
}


def _items(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": schema}}}


APPOINTMENT = _ref("Appointment")
INVITATION = _ref("Invitation")

PATHS: dict[str, Any] = {
    "/clients": {
        "get": _op(
            "listClients",
            "Clients, by last name",
            _json(_page_of("Client"), "A page of clients"),
            params=[_query("q", {"type": "string", "maxLength": 100}, "Search by name or code"), *PAGING],
        ),
        "post": _op(
            "createClient",
            "Enrol a client",
            _json(_ref("Client"), "The new client"),
            status="201",
            body=_ref("ClientInput"),
        ),
    },
    "/clients/{client_id}": {
        "parameters": [_id_param("client_id")],
        "get": _op("getClient", "One client (audited)", _json(_ref("Client"), "The client"), not_found=True),
        "patch": _op(
            "updateClient",
            "Correct a client's details or consent",
            _json(_ref("Client"), "The client"),
            body=_ref("ClientUpdate"),
            not_found=True,
        ),
    },
    "/clients/{client_id}/episodes": {
        "parameters": [_id_param("client_id")],
        "get": _op(
            "listClientEpisodes",
            "A client's episodes",
            _json(_items(_ref("Episode")), "The episodes"),
            not_found=True,
        ),
    },
    "/episodes": {
        "post": _op(
            "openEpisode",
            "Open an episode of care",
            _json(_ref("Episode"), "The new episode"),
            status="201",
            body=_ref("EpisodeInput"),
            not_found=True,
        )
    },
    "/episodes/{episode_id}": {
        "parameters": [_id_param("episode_id")],
        "get": _op("getEpisode", "One episode", _json(_ref("Episode"), "The episode"), not_found=True),
    },
    "/clinicians": {
        "get": _op(
            "listClinicians",
            "Staff who can hold an episode",
            _json(
                _items(
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "email": {"type": "string"},
                        },
                    }
                ),
                "Clinicians and supervisors",
            ),
        )
    },
    "/protocols": {
        "get": _op(
            "listProtocols",
            "Measurement protocols",
            _json(
                _items(
                    {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "name": {"type": "string"},
                            "pre_session": {"type": "array", "items": {"type": "string"}},
                            "post_session": {"type": "array", "items": {"type": "string"}},
                            "is_default": {"type": "boolean"},
                        },
                    }
                ),
                "The protocols",
            ),
        )
    },
    "/appointments": {
        "get": _op(
            "listAppointments",
            "Appointments by start time",
            _json(_page_of("Appointment"), "A page of appointments"),
            params=[
                _query("from", {"type": "string", "format": "date-time"}, "Starting at or after (with offset)"),
                _query("to", {"type": "string", "format": "date-time"}, "Starting before (with offset)"),
                _query("episode_id", {"type": "integer", "minimum": 1}, "One episode"),
                _query("client_id", {"type": "integer", "minimum": 1}, "One client"),
                _query("status", {"type": "string", "enum": APPOINTMENT_STATUSES}, "Status"),
                *PAGING,
            ],
        ),
        "post": _op(
            "addAppointment",
            "Add an appointment to an open episode",
            _json(APPOINTMENT, "The new appointment"),
            status="201",
            body=_ref("AppointmentInput"),
            not_found=True,
        ),
    },
    "/appointments/{appointment_id}": {
        "parameters": [_id_param("appointment_id")],
        "get": _op("getAppointment", "One appointment", _json(APPOINTMENT, "The appointment"), not_found=True),
        "patch": _op(
            "moveAppointment",
            "Move an appointment (its unsent invitations move with it)",
            _json(APPOINTMENT, "The appointment"),
            body=_ref("AppointmentMove"),
            not_found=True,
        ),
    },
    "/appointments/{appointment_id}/cancel": {
        "parameters": [_id_param("appointment_id")],
        "post": {
            **_op(
                "cancelAppointment",
                "Cancel an appointment and its unanswered invitations",
                _json(APPOINTMENT, "The appointment"),
                not_found=True,
                bad_request=True,
            ),
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"reason": {"type": "string", "maxLength": 200}},
                        }
                    }
                },
            },
        },
    },
    "/appointments/{appointment_id}/check-in": {
        "parameters": [_id_param("appointment_id")],
        "post": _op(
            "checkIn",
            "Record that the client has arrived",
            _json(APPOINTMENT, "The appointment"),
            not_found=True,
            bad_request=True,
        ),
    },
    "/appointments/{appointment_id}/kiosk": {
        "parameters": [_id_param("appointment_id")],
        "post": {
            **_op(
                "handToKiosk",
                "Put the survey on the kiosk for a checked-in client",
                _json(
                    {"type": "object", "required": ["invitation"], "properties": {"invitation": INVITATION}},
                    "The invitation now waiting on the kiosk",
                ),
                status="201",
                not_found=True,
                bad_request=True,
            ),
            "requestBody": {"required": False, "content": {"application/json": {"schema": PHASE_BODY}}},
        },
    },
    "/appointments/{appointment_id}/link": {
        "parameters": [_id_param("appointment_id")],
        "post": {
            **_op(
                "createSurveyLink",
                "Make a survey link to pass on (returned once, never stored)",
                _json(
                    {
                        "type": "object",
                        "required": ["invitation", "link"],
                        "properties": {"invitation": INVITATION, "link": {"type": "string", "format": "uri"}},
                    },
                    "The invitation and its link",
                ),
                status="201",
                not_found=True,
                bad_request=True,
            ),
            "requestBody": {"required": False, "content": {"application/json": {"schema": PHASE_BODY}}},
        },
    },
    "/appointments/import": {
        "post": {
            **_op(
                "importAppointments",
                "Import appointments from a CSV or iCalendar file, or an iCalendar URL",
                _json(_ref("ImportReport"), "What was imported, updated and skipped, and why"),
                bad_request=True,
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "format": {"type": "string", "enum": ["auto", "csv", "ical"]},
                                "source": {"type": "string", "maxLength": 20},
                            },
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["url"],
                            "properties": {
                                "url": {"type": "string", "format": "uri", "maxLength": 2000},
                                "format": {"type": "string", "enum": ["auto", "csv", "ical"]},
                                "source": {"type": "string", "maxLength": 20},
                            },
                        }
                    },
                },
            },
        }
    },
    "/invitations": {
        "get": _op(
            "listInvitations",
            "Invitations, newest first (states and times, never answers)",
            _json(_page_of("Invitation"), "A page of invitations"),
            params=[
                _query("client_id", {"type": "integer", "minimum": 1}, "One client"),
                _query("episode_id", {"type": "integer", "minimum": 1}, "One episode"),
                _query("appointment_id", {"type": "integer", "minimum": 1}, "One appointment"),
                _query("status", {"type": "string", "enum": INVITATION_STATUSES}, "Status"),
                *PAGING,
            ],
        )
    },
    "/invitations/{invitation_id}": {
        "parameters": [_id_param("invitation_id")],
        "get": _op("getInvitation", "One invitation", _json(INVITATION, "The invitation"), not_found=True),
    },
    "/invitations/{invitation_id}/cancel": {
        "parameters": [_id_param("invitation_id")],
        "post": {
            **_op(
                "cancelInvitation",
                "Cancel an invitation not yet answered",
                _json(INVITATION, "The invitation"),
                not_found=True,
            ),
        },
    },
    "/funnel": {
        "get": _op(
            "getFunnel",
            "Invitations sent in a period and how far they got, by channel, clinician and week",
            _json(_ref("Funnel"), "The funnel"),
            params=[
                _query("from", {"type": "string", "format": "date"}, "First day (practice time)"),
                _query("to", {"type": "string", "format": "date"}, "Last day (practice time)"),
            ],
        )
    },
}
PATHS["/invitations/{invitation_id}/cancel"]["post"]["responses"]["409"] = _error("Already answered or closed")
