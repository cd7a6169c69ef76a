"""The front desk's JSON API: clients, episodes, appointments (with CSV and iCalendar import) and invitations.

Bearer tokens only (the api blueprint); the token's account must be front desk, and the same scoped queries as
the pages decide what it sees: contacts, appointments and invitation states, never answers or scores. Bad input
is a 400 (or 404, 409, 413) with a JSON error naming the problem; nothing is half-written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from flask import jsonify, request
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.audit.operations import record_event
from services.clients.imports import (
    ImportFileError,
    ImportReport,
    detect_format,
    fetch_calendar,
    import_appointments,
    parse_calendar,
)
from services.clients.models import Appointment, Client, Episode
from services.clients.operations import (
    ClientError,
    add_appointment,
    cancel_appointment,
    check_in_appointment,
    create_client,
    open_episode,
    reschedule_appointment,
    update_client,
)
from services.clients.queries import (
    AppointmentRow,
    Page,
    get_appointment_for,
    get_client_for,
    get_episode_for,
    list_appointments,
    list_clinicians,
    list_visible_clients,
)
from services.inputs import InputError, check_plausible_date, parse_plausible_date
from services.surveys.invitations import (
    InvitationError,
    cancel_invitation,
    create_kiosk_invitation,
    create_link_invitation,
    survey_link,
)
from services.surveys.policy import invitation_policy
from services.surveys.protocols import list_protocols
from services.surveys.queries import InvitationRow, get_invitation_row, invitation_funnel, list_invitations
from web.access import allow
from web.api.views import bp
from web.app import current_settings
from web.errors import error_response
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback

P = ParamSpec("P")
R = TypeVar("R")

INVITATION_STATUSES = ("scheduled", "sent", "opened", "started", "completed", "cancelled", "expired", "failed")
APPOINTMENT_STATUSES = ("scheduled", "completed", "cancelled", "no_show")


class ApiProblem(Exception):
    """A request the API refuses, with the status and a message naming what is wrong."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def json_errors(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Turn ApiProblem and the services' validation errors into JSON 4xx answers (rolled back)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        try:
            return view(*args, **kwargs)
        except ApiProblem as exc:
            rollback()
            return error_response(exc.status, message=exc.detail)
        except ImportFileError as exc:
            rollback()
            return error_response(400, message=str(exc))
        except (ClientError, InvitationError) as exc:
            rollback()
            return error_response(400, message=str(exc))

    return wrapper


def front_desk(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Front desk only, with JSON errors."""
    return allow(Role.FRONT_DESK)(json_errors(view))


# --- reading input -------------------------------------------------------------------------------------------


def body(allowed: Collection[str], required: Collection[str] = ()) -> dict[str, Any]:
    """The JSON object of the request, refusing unknown and missing members."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiProblem("Send a JSON object with Content-Type: application/json.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiProblem(f"Unknown field(s): {', '.join(unknown)}.")
    missing = sorted(name for name in required if data.get(name) in (None, ""))
    if missing:
        raise ApiProblem(f"Missing field(s): {', '.join(missing)}.")
    return data


def text(data: dict[str, Any], name: str, *, default: str | None = None, max_length: int = 300) -> str | None:
    """An optional string member."""
    value = data.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiProblem(f"{name} must be a string.")
    if len(value) > max_length:
        raise ApiProblem(f"{name} is longer than {max_length} characters.")
    return value


def flag(data: dict[str, Any], name: str, default: bool = False) -> bool:
    """An optional boolean member."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ApiProblem(f"{name} must be true or false.")
    return value


def integer(data: dict[str, Any], name: str) -> int:
    """A required whole-number member."""
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiProblem(f"{name} must be a whole number.")
    return value


def timestamp(value: object, name: str) -> datetime:
    """An ISO 8601 date-time with an offset (naive times are ambiguous and refused)."""
    if not isinstance(value, str):
        raise ApiProblem(f"{name} must be an ISO 8601 date-time string.")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiProblem(f"{name} is not an ISO 8601 date-time, e.g. 2026-03-02T14:00:00+00:00.") from None
    if parsed.tzinfo is None:
        raise ApiProblem(f"{name} needs a UTC offset, e.g. 2026-03-02T14:00:00+00:00 or ...Z.")
    try:
        check_plausible_date(parsed)
    except InputError as exc:
        raise ApiProblem(f"{name}: {exc}") from None
    return parsed


def a_date(value: object, name: str) -> date:
    """An ISO 8601 date."""
    if not isinstance(value, str):
        raise ApiProblem(f"{name} must be a date string such as 2026-03-02.")
    try:
        return parse_plausible_date(value)
    except InputError as exc:
        raise ApiProblem(f"{name}: {exc}") from None


def appointment_times(data: dict[str, Any]) -> tuple[datetime, datetime]:
    """starts_at and ends_at, or starts_at and duration_minutes."""
    starts_at = timestamp(data.get("starts_at"), "starts_at")
    if data.get("ends_at") is not None:
        return starts_at, timestamp(data["ends_at"], "ends_at")
    minutes = data.get("duration_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 480:
        raise ApiProblem("Give ends_at, or duration_minutes between 1 and 480.")
    return starts_at, starts_at + timedelta(minutes=minutes)


def query_int(name: str, default: int | None = None, *, minimum: int = 1, maximum: int = 10**9) -> int | None:
    """A whole-number query parameter."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiProblem(f"{name} must be a whole number.") from None
    if not minimum <= value <= maximum:
        raise ApiProblem(f"{name} must be between {minimum} and {maximum}.")
    return value


def query_choice(name: str, choices: tuple[str, ...]) -> str | None:
    """A query parameter from a fixed list."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise ApiProblem(f"{name} must be one of: {', '.join(choices)}.")
    return raw


def paging() -> tuple[int, int]:
    """page and per_page (at most 100)."""
    return query_int("page", 1) or 1, query_int("per_page", 25, maximum=100) or 25


# --- writing output ------------------------------------------------------------------------------------------


def iso(value: datetime | date | None) -> str | None:
    """ISO 8601, or None."""
    return value.isoformat() if value is not None else None


def client_json(client: Client) -> dict[str, Any]:
    """A client as the API shows it."""
    return {
        "id": client.id,
        "code": client.code,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "email": client.email,
        "phone": client.phone,
        "language": client.language,
        "consent_email": client.consent_email,
        "consent_sms": client.consent_sms,
        "opted_out_at": iso(client.opted_out_at),
        "archived_at": iso(client.archived_at),
        "created_at": iso(client.created_at),
    }


def episode_json(episode: Episode) -> dict[str, Any]:
    """An episode as the API shows it (goals are the client's own words; no measures)."""
    return {
        "id": episode.id,
        "client_id": episode.client_id,
        "clinician_id": episode.clinician_id,
        "protocol_code": episode.protocol_code,
        "started_on": iso(episode.started_on),
        "ended_on": iso(episode.ended_on),
        "goals": list(episode.goals or []),
    }


def appointment_json(appointment: Appointment, invitations: dict[str, str] | None = None) -> dict[str, Any]:
    """An appointment with the status of its invitations per phase."""
    return {
        "id": appointment.id,
        "episode_id": appointment.episode_id,
        "client_id": appointment.episode.client_id,
        "starts_at": iso(appointment.starts_at),
        "ends_at": iso(appointment.ends_at),
        "status": appointment.status,
        "source": appointment.source,
        "external_id": appointment.external_id,
        "checked_in_at": iso(appointment.checked_in_at),
        "invitations": invitations if invitations is not None else {},
    }


def appointment_row_json(row: AppointmentRow) -> dict[str, Any]:
    """An appointment from a list."""
    data = appointment_json(row.appointment, row.invitations)
    data["client_id"] = row.client_id
    return data


def invitation_json(row: InvitationRow) -> dict[str, Any]:
    """An invitation: channel, states and times; never its answers."""
    return {
        "id": row.id,
        "client_id": row.client_id,
        "episode_id": row.episode_id,
        "appointment_id": row.appointment_id,
        "phase": row.phase,
        "channel": row.channel,
        "status": row.status,
        "questionnaires": row.questionnaires,
        "due_at": iso(row.due_at),
        "sent_at": iso(row.sent_at),
        "opened_at": iso(row.opened_at),
        "started_at": iso(row.started_at),
        "completed_at": iso(row.completed_at),
        "cancelled_at": iso(row.cancelled_at),
        "expires_at": iso(row.expires_at),
        "reminder_sent_at": iso(row.reminder_sent_at),
        "created_at": iso(row.created_at),
    }


def page_json(page: Page[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """A page of items with what a client needs to fetch the next."""
    return {"items": items, "page": page.page, "per_page": page.per_page, "total": page.total, "pages": page.pages}


def created(payload: dict[str, Any]) -> tuple[Response, int]:
    """201 with the created object."""
    return jsonify(payload), 201


def audit(action: str, *, client_id: int | None, subject_type: str, subject_id: int | None, **detail: Any) -> None:
    """Audit a change made through the API."""
    record_event(
        db_session(),
        action=action,
        actor_id=current_account().id,
        subject_type=subject_type,
        subject_id=subject_id,
        client_id=client_id,
        ip=client_ip(),
        detail={"via": "api", **detail},
    )


def _client(client_id: int) -> Client:
    client = get_client_for(db_session(), current_account(), client_id)
    if client is None:
        raise ApiProblem("No such client.", 404)
    return client


def _episode(episode_id: int) -> Episode:
    episode = get_episode_for(db_session(), current_account(), episode_id)
    if episode is None:
        raise ApiProblem("No such episode.", 404)
    return episode


def _appointment(appointment_id: int) -> Appointment:
    appointment = get_appointment_for(db_session(), current_account(), appointment_id)
    if appointment is None:
        raise ApiProblem("No such appointment.", 404)
    return appointment


def _appointment_out(appointment: Appointment) -> dict[str, Any]:
    rows = list_invitations(db_session(), current_account(), appointment_id=appointment.id).items
    return appointment_json(appointment, {r.phase: r.status for r in rows})


# --- clients -------------------------------------------------------------------------------------------------

CLIENT_FIELDS = {"first_name", "last_name", "email", "phone", "language", "consent_email", "consent_sms"}


def _client_values(data: dict[str, Any], current: Client | None = None) -> dict[str, Any]:
    def keep(name: str) -> Any:
        return getattr(current, name) if current is not None else None

    return {
        "first_name": text(data, "first_name", default=keep("first_name"), max_length=100) or "",
        "last_name": text(data, "last_name", default=keep("last_name"), max_length=100) or "",
        "email": text(data, "email", default=keep("email"), max_length=254),
        "phone": text(data, "phone", default=keep("phone"), max_length=40),
        "language": text(data, "language", default=keep("language") or "en", max_length=8) or "en",
        "consent_email": flag(data, "consent_email", bool(keep("consent_email"))),
        "consent_sms": flag(data, "consent_sms", bool(keep("consent_sms"))),
        "phone_region": current_settings().phone_region,
    }


@bp.get("/clients")
@front_desk
def clients_list() -> Response:
    """Clients, by last name, optionally searched by name or code."""
    page, per_page = paging()
    query = (request.args.get("q") or "").strip()[:100]
    results = list_visible_clients(db_session(), current_account(), search=query, page=page, per_page=per_page)
    return jsonify(page_json(results, [client_json(c) for c in results.items]))


@bp.post("/clients")
@front_desk
def clients_create() -> tuple[Response, int]:
    """Enrol a client."""
    data = body(CLIENT_FIELDS, {"first_name", "last_name"})
    client = create_client(db_session(), **_client_values(data))
    audit("client_created", client_id=client.id, subject_type="client", subject_id=client.id)
    commit()
    return created(client_json(client))


@bp.get("/clients/<int:client_id>")
@front_desk
def clients_get(client_id: int) -> Response:
    """One client (the view is audited)."""
    client = _client(client_id)
    session = db_session()
    record_event(
        session,
        action="client_viewed",
        actor_id=current_account().id,
        subject_type="client",
        subject_id=client.id,
        client_id=client.id,
        ip=client_ip(),
        detail={"what": "api_client"},
    )
    payload = client_json(client)
    commit()
    return jsonify(payload)


@bp.patch("/clients/<int:client_id>")
@front_desk
def clients_update(client_id: int) -> Response:
    """Correct a client's details or consent (members left out keep their value)."""
    client = _client(client_id)
    data = body(CLIENT_FIELDS)
    update_client(db_session(), client_id=client.id, **_client_values(data, client))
    audit("client_updated", client_id=client.id, subject_type="client", subject_id=client.id, fields=sorted(data))
    commit()
    return jsonify(client_json(client))


@bp.get("/clients/<int:client_id>/episodes")
@front_desk
def client_episodes(client_id: int) -> Response:
    """A client's episodes, newest first."""
    client = _client(client_id)
    episodes = sorted(client.episodes, key=lambda e: (e.started_on, e.id), reverse=True)
    return jsonify({"items": [episode_json(e) for e in episodes]})


# --- episodes ------------------------------------------------------------------------------------------------


@bp.post("/episodes")
@front_desk
def episodes_create() -> tuple[Response, int]:
    """Open an episode (clinician, protocol, up to three goals in the client's words)."""
    data = body({"client_id", "clinician_id", "protocol_code", "started_on", "goals"}, {"client_id", "clinician_id"})
    client = _client(integer(data, "client_id"))
    goals = data.get("goals", [])
    if not isinstance(goals, list) or not all(isinstance(g, str) for g in goals):
        raise ApiProblem("goals must be a list of strings.")
    today = datetime.now(current_settings().tz).date()
    started_on = a_date(data["started_on"], "started_on") if data.get("started_on") else today
    episode = open_episode(
        db_session(),
        client_id=client.id,
        clinician_id=integer(data, "clinician_id"),
        started_on=started_on,
        protocol_code=text(data, "protocol_code", default="standard", max_length=40) or "standard",
        goals=goals,
    )
    audit("episode_opened", client_id=client.id, subject_type="episode", subject_id=episode.id)
    commit()
    return created(episode_json(episode))


@bp.get("/episodes/<int:episode_id>")
@front_desk
def episodes_get(episode_id: int) -> Response:
    """One episode."""
    return jsonify(episode_json(_episode(episode_id)))


@bp.get("/clinicians")
@front_desk
def clinicians_list() -> Response:
    """Staff who can hold an episode."""
    return jsonify({"items": [{"id": u.id, "name": u.name, "email": u.email} for u in list_clinicians(db_session())]})


@bp.get("/protocols")
@front_desk
def protocols_list() -> Response:
    """Measurement protocols (which instruments before and after a session)."""
    return jsonify(
        {
            "items": [
                {
                    "code": p.code,
                    "name": p.name,
                    "pre_session": list(p.pre_session),
                    "post_session": list(p.post_session),
                    "is_default": p.is_default,
                }
                for p in list_protocols(db_session())
            ]
        }
    )


# --- appointments --------------------------------------------------------------------------------------------


@bp.get("/appointments")
@front_desk
def appointments_list() -> Response:
    """Appointments by start time; filter by from/to (date-times), episode_id, client_id, status."""
    page, per_page = paging()
    start = timestamp(request.args["from"], "from") if request.args.get("from") else None
    end = timestamp(request.args["to"], "to") if request.args.get("to") else None
    results = list_appointments(
        db_session(),
        current_account(),
        start=start,
        end=end,
        episode_id=query_int("episode_id"),
        client_id=query_int("client_id"),
        status=query_choice("status", APPOINTMENT_STATUSES),
        page=page,
        per_page=per_page,
    )
    return jsonify(page_json(results, [appointment_row_json(r) for r in results.items]))


@bp.post("/appointments")
@front_desk
def appointments_create() -> tuple[Response, int]:
    """Add an appointment to an open episode; with source and external_id it can be updated by later imports."""
    data = body(
        {"episode_id", "starts_at", "ends_at", "duration_minutes", "source", "external_id"},
        {"episode_id", "starts_at"},
    )
    episode = _episode(integer(data, "episode_id"))
    starts_at, ends_at = appointment_times(data)
    appointment = add_appointment(
        db_session(),
        episode_id=episode.id,
        starts_at=starts_at,
        ends_at=ends_at,
        source=text(data, "source", default="api", max_length=20) or "api",
        external_id=text(data, "external_id", max_length=200),
    )
    audit("appointment_added", client_id=episode.client_id, subject_type="appointment", subject_id=appointment.id)
    commit()
    return created(appointment_json(appointment))


@bp.get("/appointments/<int:appointment_id>")
@front_desk
def appointments_get(appointment_id: int) -> Response:
    """One appointment with its invitation states."""
    return jsonify(_appointment_out(_appointment(appointment_id)))


@bp.patch("/appointments/<int:appointment_id>")
@front_desk
def appointments_update(appointment_id: int) -> Response:
    """Move an appointment (starts_at with ends_at or duration_minutes); its unsent invitations move with it."""
    appointment = _appointment(appointment_id)
    data = body({"starts_at", "ends_at", "duration_minutes"}, {"starts_at"})
    starts_at, ends_at = appointment_times(data)
    before = appointment.starts_at
    reschedule_appointment(
        db_session(),
        appointment_id=appointment.id,
        starts_at=starts_at,
        ends_at=ends_at,
        policy=invitation_policy(current_settings()),
    )
    audit(
        "appointment_rescheduled",
        client_id=appointment.episode.client_id,
        subject_type="appointment",
        subject_id=appointment.id,
        before=before.isoformat(),
    )
    commit()
    return jsonify(_appointment_out(appointment))


def _optional_body(allowed: set[str]) -> dict[str, Any]:
    if not request.get_data(cache=True):
        return {}
    return body(allowed)


@bp.post("/appointments/<int:appointment_id>/cancel")
@front_desk
def appointments_cancel(appointment_id: int) -> Response:
    """Cancel an appointment and its unanswered invitations (repeating it is harmless)."""
    appointment = _appointment(appointment_id)
    data = _optional_body({"reason"})
    reason = text(data, "reason", max_length=200) or "cancelled through the API"
    cancel_appointment(db_session(), appointment_id=appointment.id, reason=reason)
    audit(
        "appointment_cancelled",
        client_id=appointment.episode.client_id,
        subject_type="appointment",
        subject_id=appointment.id,
    )
    commit()
    return jsonify(_appointment_out(appointment))


@bp.post("/appointments/<int:appointment_id>/check-in")
@front_desk
def appointments_check_in(appointment_id: int) -> Response:
    """Record that the client has arrived (needed before the kiosk)."""
    appointment = _appointment(appointment_id)
    check_in_appointment(db_session(), appointment_id=appointment.id)
    audit(
        "client_checked_in",
        client_id=appointment.episode.client_id,
        subject_type="appointment",
        subject_id=appointment.id,
    )
    commit()
    return jsonify(_appointment_out(appointment))


def _phase(data: dict[str, Any]) -> str | None:
    phase = text(data, "phase", max_length=8)
    if phase is not None and phase not in ("pre", "post"):
        raise ApiProblem("phase must be pre or post.")
    return phase


def _hand_out(appointment_id: int, create: Callable[..., tuple[Any, str]], action: str) -> tuple[Any, str]:
    """Create a kiosk or link invitation for an appointment, audit it, commit; the row to show and the raw token."""
    appointment = _appointment(appointment_id)
    data = _optional_body({"phase"})
    invitation, raw = create(
        db_session(),
        appointment_id=appointment.id,
        created_by_id=current_account().id,
        phase=_phase(data),
        policy=invitation_policy(current_settings()),
    )
    audit(action, client_id=appointment.episode.client_id, subject_type="invitation", subject_id=invitation.id)
    commit()
    row = get_invitation_row(db_session(), current_account(), invitation.id)
    assert row is not None
    return row, raw


@bp.post("/appointments/<int:appointment_id>/kiosk")
@front_desk
def appointments_kiosk(appointment_id: int) -> tuple[Response, int]:
    """Hand the survey to the practice's kiosk tablet for a checked-in client."""
    row, _raw = _hand_out(appointment_id, create_kiosk_invitation, "survey_kiosk_handout")
    return created({"invitation": invitation_json(row)})


@bp.post("/appointments/<int:appointment_id>/link")
@front_desk
def appointments_link(appointment_id: int) -> tuple[Response, int]:
    """Make a survey link to pass on; the link is in this answer only and never stored."""
    row, raw = _hand_out(appointment_id, create_link_invitation, "survey_link_created")
    return created({"invitation": invitation_json(row), "link": survey_link(current_settings().base_url, raw)})


def report_json(report: ImportReport) -> dict[str, Any]:
    """An import report."""
    return {
        "source": report.source,
        "imported": report.imported,
        "updated": report.updated,
        "skipped": report.skipped,
        "rows": [
            {
                "line": r.line,
                "external_id": r.external_id,
                "outcome": r.outcome,
                "reason": r.reason,
                "appointment_id": r.appointment_id,
                "client_id": r.client_id,
            }
            for r in report.rows
        ],
    }


@bp.post("/appointments/import")
@front_desk
def appointments_import() -> Response:
    """Import from an uploaded file (multipart: file, format, source) or a URL (JSON: url, format, source)."""
    settings = current_settings()
    policy = invitation_policy(settings)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if not isinstance(upload, FileStorage) or not upload.filename:
            raise ApiProblem("Attach the calendar as the multipart field 'file'.")
        data = upload.stream.read(policy.import_max_bytes + 1)
        if len(data) > policy.import_max_bytes:
            raise ApiProblem(f"The file is larger than {policy.import_max_bytes // 1024} KB.", 413)
        fmt, source, filename = request.form.get("format", "auto"), request.form.get("source"), upload.filename
    else:
        payload = body({"url", "format", "source"}, {"url"})
        url = text(payload, "url", max_length=2000) or ""
        fmt = text(payload, "format", default="auto", max_length=8) or "auto"
        source, filename = text(payload, "source", max_length=20), url.split("?")[0]
        data = fetch_calendar(url, policy=policy)
    if fmt not in ("auto", "csv", "ical"):
        raise ApiProblem("format must be auto, csv or ical.")
    if fmt == "auto":
        fmt = detect_format(filename, data[:200].decode("utf-8", "replace"))
    rows = parse_calendar(data, fmt=fmt, tz=settings.tz)
    report = import_appointments(db_session(), rows, source=(source or "").strip() or fmt, policy=policy)
    audit(
        "appointments_imported",
        client_id=None,
        subject_type="import",
        subject_id=None,
        source=report.source,
        imported=report.imported,
        updated=report.updated,
        skipped=report.skipped,
    )
    commit()
    return jsonify(report_json(report))


# --- invitations ---------------------------------------------------------------------------------------------


@bp.get("/invitations")
@front_desk
def invitations_list() -> Response:
    """Invitations, newest first; filter by client_id, episode_id, appointment_id, status."""
    page, per_page = paging()
    results = list_invitations(
        db_session(),
        current_account(),
        client_id=query_int("client_id"),
        episode_id=query_int("episode_id"),
        appointment_id=query_int("appointment_id"),
        status=query_choice("status", INVITATION_STATUSES),
        page=page,
        per_page=per_page,
    )
    return jsonify(page_json(results, [invitation_json(r) for r in results.items]))


@bp.get("/invitations/<int:invitation_id>")
@front_desk
def invitations_get(invitation_id: int) -> Response:
    """One invitation."""
    row = get_invitation_row(db_session(), current_account(), invitation_id)
    if row is None:
        raise ApiProblem("No such invitation.", 404)
    return jsonify(invitation_json(row))


@bp.post("/invitations/<int:invitation_id>/cancel")
@front_desk
def invitations_cancel(invitation_id: int) -> Response:
    """Cancel an invitation not yet answered (its link stops working; nothing more is sent)."""
    row = get_invitation_row(db_session(), current_account(), invitation_id)
    if row is None:
        raise ApiProblem("No such invitation.", 404)
    if not cancel_invitation(db_session(), invitation_id=row.id, reason="cancelled through the API"):
        raise ApiProblem(f"The invitation is already {row.status}.", 409)
    audit("invitation_cancelled", client_id=row.client_id, subject_type="invitation", subject_id=row.id)
    commit()
    updated = get_invitation_row(db_session(), current_account(), invitation_id)
    assert updated is not None
    return jsonify(invitation_json(updated))


@bp.get("/funnel")
@front_desk
def funnel() -> Response:
    """Invitations sent between from and to (dates, practice time) and how far they got, by channel/clinician/week."""
    settings = current_settings()
    today = datetime.now(settings.tz).date()
    first = a_date(request.args["from"], "from") if request.args.get("from") else today - timedelta(days=55)
    last = a_date(request.args["to"], "to") if request.args.get("to") else today
    if last < first or (last - first).days > 400:
        raise ApiProblem("to must be on or after from, at most 400 days later.")
    start = datetime.combine(first, datetime.min.time(), tzinfo=settings.tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=settings.tz)
    data = invitation_funnel(db_session(), start=start, end=end, tz=settings.tz)

    def counts(c: Any) -> dict[str, int]:
        return {"sent": c.sent, "opened": c.opened, "started": c.started, "completed": c.completed}

    def groups(items: list[Any]) -> list[dict[str, Any]]:
        return [{"key": g.key, "label": g.label, **counts(g.counts)} for g in items]

    return jsonify(
        {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "total": counts(data.total),
            "by_channel": groups(data.by_channel),
            "by_clinician": groups(data.by_clinician),
            "by_week": groups(data.by_week),
        }
    )
