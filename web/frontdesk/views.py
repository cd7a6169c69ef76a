"""Front desk: the roster, enrolling clients, episodes, client records with their invitation history, the funnel.

Front desk sees every client's contacts, episodes, appointments and invitation states, never an answer or a
score. Appointment pages are in appointments.py, imports in calendar_import.py (same blueprint).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.audit.operations import record_client_view
from services.clients.models import Client
from services.clients.operations import ClientError, create_client, end_episode, open_episode, update_client
from services.clients.phones import display_phone, example_number
from services.clients.queries import (
    get_client_for,
    get_client_record,
    get_episode_for,
    list_clinicians,
    list_roster,
)
from services.db import utcnow
from services.inputs import InputError, parse_plausible_date
from services.practice.settings import get_number
from services.surveys.protocols import get_default_protocol, list_protocols
from services.surveys.queries import invitation_funnel, list_invitations, list_overdue
from web.access import allow
from web.app import current_settings
from web.frontdesk.common import audit, check_in_window, local_today, page_arg
from web.frontdesk.forms import ActionForm, ClientForm, EpisodeForm
from web.htmx import wants_fragment
from web.i18n import translate
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session

bp = Blueprint("frontdesk", __name__, url_prefix="/frontdesk")

ROSTER_TARGET = "roster-results"
HISTORY_ON_RECORD = 10
FUNNEL_WEEKS = (4, 8, 13, 26)
OVERDUE_PER_PAGE = 25


@bp.get("/")
@allow(Role.FRONT_DESK)
def home() -> Response:
    """The roster: search by name or code, 25 to a page, with clinician, next appointment and last invitation."""
    query = request.args.get("q", "").strip()[:100]
    results = list_roster(db_session(), current_account(), search=query, page=page_arg())
    template = "frontdesk/_roster.html" if wants_fragment(ROSTER_TARGET) else "frontdesk/home.html"
    response = make_response(render_template(template, results=results, q=query, target=ROSTER_TARGET))
    response.vary.add("HX-Request")
    return response


class ClientFields(TypedDict):
    """What the client form gives the client operations."""

    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    language: str
    consent_email: bool
    consent_sms: bool
    phone_region: str


def _client_details(form: ClientForm) -> ClientFields:
    return {
        "first_name": form.first_name.data or "",
        "last_name": form.last_name.data or "",
        "email": form.email.data or None,
        "phone": form.phone.data or None,
        "language": form.language.data or "en",
        "consent_email": bool(form.consent_email.data),
        "consent_sms": bool(form.consent_sms.data),
        "phone_region": current_settings().phone_region,
    }


def _service_error(form: ClientForm, message: str) -> None:
    """Put a service's message on the field it is about (the form-level summary lists it)."""
    lowered = message.lower()
    target = form.first_name
    if "email" in lowered:
        target = form.email
    elif "phone" in lowered or "text message" in lowered:
        target = form.phone
    elif "last name" in lowered:
        target = form.last_name
    elif "language" in lowered:
        target = form.language
    target.errors = [*target.errors, message]


@bp.route("/clients/new", methods=["GET", "POST"])
@allow(Role.FRONT_DESK)
def new_client() -> Response | tuple[str, int]:
    """Enrol a client: name, contacts, language and consent per channel."""
    form = ClientForm()
    if form.validate_on_submit():
        try:
            created = create_client(db_session(), **_client_details(form))
        except ClientError as exc:
            _service_error(form, translate(exc))
        else:
            audit(
                "client_created",
                client_id=created.id,
                subject_type="client",
                subject_id=created.id,
                consent_email=created.consent_email,
                consent_sms=created.consent_sms,
            )
            commit()
            flash(
                _(
                    "%(name)s is enrolled as %(code)s. Next, open an episode of care.",
                    name=created.first_name,
                    code=created.code,
                ),
                "success",
            )
            return redirect(url_for("frontdesk.new_episode", client_id=created.id), code=303)
    status = 400 if form.errors else 200
    return render_template("frontdesk/client_form.html", form=form, client=None, phone_hint=_phone_hint()), status


def _phone_hint() -> str:
    """How to write a phone number here: the region's example, and where a number without a country code is."""
    region = current_settings().phone_region
    locale = get_locale()
    country = str(locale.territories.get(region, region)) if locale is not None else region
    hint: str = _(
        "A mobile number, for example %(example)s. Without a country code it is read as a number in %(country)s.",
        example=example_number(region),
        country=country,
    )
    return hint


def _visible_client(client_id: int) -> Client:
    client = get_client_for(db_session(), current_account(), client_id)
    if client is None:
        abort(404)
    return client


@bp.route("/clients/<int:client_id>/edit", methods=["GET", "POST"])
@allow(Role.FRONT_DESK)
def edit_client(client_id: int) -> Response | tuple[str, int]:
    """Correct a client's name, contacts, language or consent."""
    client = _visible_client(client_id)
    form = ClientForm(obj=client) if request.method == "GET" else ClientForm()
    if form.validate_on_submit():
        before = (client.consent_email, client.consent_sms)
        try:
            update_client(db_session(), client_id=client.id, **_client_details(form))
        except ClientError as exc:
            _service_error(form, translate(exc))
        else:
            audit(
                "client_updated",
                client_id=client.id,
                subject_type="client",
                subject_id=client.id,
                consent_before=list(before),
                consent_after=[client.consent_email, client.consent_sms],
            )
            commit()
            flash(_("The details are saved."), "success")
            return redirect(url_for("frontdesk.client", client_id=client.id), code=303)
    status = 400 if form.errors else 200
    return render_template("frontdesk/client_form.html", form=form, client=client, phone_hint=_phone_hint()), status


def _episode_form() -> EpisodeForm:
    session = db_session()
    form = EpisodeForm()
    form.clinician_id.choices = [(u.id, u.name) for u in list_clinicians(session)]
    protocols = list_protocols(session)
    form.protocol_code.choices = [(p.code, translate(p.name)) for p in protocols]  # shipped names translate
    if request.method == "GET":
        default = get_default_protocol(session)
        form.protocol_code.data = default.code if default else (protocols[0].code if protocols else None)
        form.started_on.data = local_today()
    return form


@bp.route("/clients/<int:client_id>/episodes/new", methods=["GET", "POST"])
@allow(Role.FRONT_DESK)
def new_episode(client_id: int) -> Response | tuple[str, int]:
    """Open an episode: clinician, measurement protocol, up to three goals in the client's own words."""
    client = _visible_client(client_id)
    form = _episode_form()
    if form.validate_on_submit():
        goals = [form.goal_1.data or "", form.goal_2.data or "", form.goal_3.data or ""]
        try:
            episode = open_episode(
                db_session(),
                client_id=client.id,
                clinician_id=int(form.clinician_id.data or 0),
                started_on=form.started_on.data or local_today(),
                protocol_code=form.protocol_code.data or "",
                goals=goals,
            )
        except ClientError as exc:
            form.clinician_id.errors = [*form.clinician_id.errors, translate(exc)]
        else:
            audit(
                "episode_opened",
                client_id=client.id,
                subject_type="episode",
                subject_id=episode.id,
                clinician_id=episode.clinician_id,
                protocol=episode.protocol_code,
            )
            commit()
            flash(_("The episode is open. Add the first appointment."), "success")
            return redirect(url_for("frontdesk.new_appointment", episode_id=episode.id), code=303)
    status = 400 if form.errors else 200
    return render_template("frontdesk/episode_form.html", form=form, client=client), status


@bp.post("/episodes/<int:episode_id>/end")
@allow(Role.FRONT_DESK)
def finish_episode(episode_id: int) -> Response:
    """End an episode of care on a date (today unless given); its open alerts close as "episode ended"."""
    episode = get_episode_for(db_session(), current_account(), episode_id)
    if episode is None:
        abort(404)
    back = url_for("frontdesk.client", client_id=episode.client_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    raw = request.form.get("ended_on", "").strip()
    try:
        ended_on = parse_plausible_date(raw) if raw else local_today()
    except InputError as exc:
        flash(translate(exc), "error")
        return redirect(back, code=303)
    if ended_on > local_today():
        flash(_("An episode can only be ended today or on a past day."), "error")
        return redirect(back, code=303)
    try:
        end_episode(db_session(), episode_id=episode.id, ended_on=ended_on, actor_id=current_account().id)
    except ClientError as exc:
        flash(str(exc), "error")
        return redirect(back, code=303)
    commit()
    flash(_("The episode has ended. Its open alerts were closed and no more surveys will be sent for it."), "success")
    return redirect(back, code=303)


@bp.get("/clients/<int:client_id>")
@allow(Role.FRONT_DESK)
def client(client_id: int) -> str:
    """One client's record for the front desk: contacts, episodes, appointments with actions, invitations (audited)."""
    account = current_account()
    session = db_session()
    record = get_client_record(session, account, client_id)
    if record is None:
        abort(404)  # not in this viewer's scope: do not confirm the record exists
    invitations = list_invitations(session, account, client_id=client_id, per_page=HISTORY_ON_RECORD)
    record_client_view(session, actor_id=account.id, client_id=client_id, what="frontdesk_record", ip=client_ip())
    html = render_template(
        "frontdesk/client.html",
        record=record,
        invitations=invitations,
        phone=display_phone(record.client.phone) if record.client.phone else None,
        check_in_window=check_in_window(),
        here=url_for("frontdesk.client", client_id=client_id),
        today=local_today(),
    )
    commit()  # nothing is shown unless the audit event is stored
    return html


@bp.get("/clients/<int:client_id>/invitations")
@allow(Role.FRONT_DESK)
def invitation_history(client_id: int) -> str:
    """Every invitation a client was sent or handed, newest first (states and times, never answers)."""
    account = current_account()
    session = db_session()
    client = _visible_client(client_id)
    invitations = list_invitations(session, account, client_id=client_id, page=page_arg())
    record_client_view(session, actor_id=account.id, client_id=client_id, what="frontdesk_invitations", ip=client_ip())
    html = render_template("frontdesk/invitations.html", client=client, invitations=invitations)
    commit()
    return html


@bp.get("/funnel")
@allow(Role.FRONT_DESK)
def funnel() -> str:
    """How many invitations were opened, started and completed, by channel, clinician and week."""
    weeks = request.args.get("weeks", 8, type=int) or 8
    if weeks not in FUNNEL_WEEKS:
        weeks = 8
    today = local_today()
    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=weeks - 1)
    tz = current_settings().tz
    start = datetime.combine(first_monday, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(this_monday + timedelta(days=7), datetime.min.time(), tzinfo=tz).astimezone(UTC)
    data = invitation_funnel(db_session(), start=start, end=end, tz=tz)
    goal = get_number(db_session(), "completion_goal_percent") / 100
    return render_template("frontdesk/funnel.html", funnel=data, weeks=weeks, week_choices=FUNNEL_WEEKS, goal=goal)


@bp.get("/overdue")
@allow(Role.FRONT_DESK)
def overdue() -> str:
    """Who has not answered: clients in care with no completed questionnaire in their last N sessions."""
    session = db_session()
    sessions = get_number(session, "measures_overdue_sessions")
    page = page_arg()
    items, total = list_overdue(session, sessions=sessions, now=utcnow(), page=page, per_page=OVERDUE_PER_PAGE)
    return render_template(
        "frontdesk/overdue.html",
        items=items,
        total=total,
        sessions=sessions,
        page=page,
        pages=max(1, -(-total // OVERDUE_PER_PAGE)),
    )


@bp.get("/kiosk")
@allow(Role.FRONT_DESK)
def kiosk_setup() -> str:
    """How to turn a tablet into the waiting-room kiosk, with the way to the pairing page."""
    return render_template("frontdesk/kiosk.html")


# The other front-desk pages register their routes on bp.
from web.frontdesk import appointments as _appointments  # noqa: E402,F401
from web.frontdesk import calendar_import as _calendar_import  # noqa: E402,F401
