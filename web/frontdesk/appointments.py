"""Front desk: the day's appointments; add, move, cancel, check in; hand a survey to the kiosk or as a link."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role, User
from services.clients.models import Appointment, Episode
from services.clients.operations import (
    ClientError,
    add_appointment,
    cancel_appointment,
    check_in_appointment,
    reschedule_appointment,
)
from services.clients.queries import get_appointment_for, get_client_for, get_episode_for, list_appointments
from services.inputs import parse_plausible_date
from services.surveys.invitations import (
    MESSAGE_CHANNELS,
    InvitationError,
    address_for,
    create_kiosk_invitation,
    create_link_invitation,
    send_invitation_now,
    survey_link,
)
from services.surveys.models import Invitation
from web.access import allow, safe_next
from web.app import current_settings
from web.frontdesk.common import (
    LocalTimeError,
    audit,
    back_to,
    check_in_window,
    current_policy,
    day_bounds,
    local_to_utc,
    local_today,
    page_arg,
    utc_to_local,
)
from web.frontdesk.forms import ActionForm, AppointmentForm
from web.frontdesk.views import bp
from web.i18n import local_datetime, translate
from web.login import current_account
from web.qr import qr_svg
from web.request_db import commit, db_session
from workers.enqueue import send_notification_after_commit

PHASES = ("pre", "post")


def _appointment(appointment_id: int) -> Appointment:
    appointment = get_appointment_for(db_session(), current_account(), appointment_id)
    if appointment is None:
        abort(404)
    return appointment


def _episode(episode_id: int) -> Episode:
    episode = get_episode_for(db_session(), current_account(), episode_id)
    if episode is None:
        abort(404)
    return episode


def _clinician_name(episode: Episode) -> str:
    clinician = db_session().get(User, episode.clinician_id)
    return clinician.name if clinician is not None else "-"


def _client_page(appointment: Appointment) -> str:
    return url_for("frontdesk.client", client_id=appointment.episode.client_id)


@bp.get("/appointments")
@allow(Role.FRONT_DESK)
def appointments() -> str:
    """One day's appointments (today by default) with check-in, kiosk and link actions."""
    raw = request.args.get("day", "")
    day = parse_plausible_date(raw) if raw else local_today()
    start, end = day_bounds(day)
    results = list_appointments(db_session(), current_account(), start=start, end=end, page=page_arg(), per_page=50)
    here = url_for("frontdesk.appointments", day=day.isoformat(), page=results.page)
    return render_template(
        "frontdesk/appointments.html",
        results=results,
        day=day,
        today=local_today(),
        prev_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        here=here,
        check_in_window=check_in_window(),
    )


def _times(form: AppointmentForm) -> tuple[datetime, datetime] | None:
    """The form's start and end in UTC, or None with the error put on the form."""
    if form.day.data is None or form.at.data is None:
        return None
    try:
        starts_at = local_to_utc(form.day.data, form.at.data)
    except LocalTimeError as exc:
        form.at.errors = [*form.at.errors, translate(exc)]
        return None
    return starts_at, starts_at + timedelta(minutes=int(form.duration_minutes.data or 50))


@bp.route("/episodes/<int:episode_id>/appointments/new", methods=["GET", "POST"])
@allow(Role.FRONT_DESK)
def new_appointment(episode_id: int) -> Response | tuple[str, int]:
    """Add an appointment to an episode (practice-local date and time)."""
    episode = _episode(episode_id)
    form = AppointmentForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        times = _times(form)
        if times is not None:
            starts_at, ends_at = times
            try:
                created = add_appointment(
                    db_session(),
                    episode_id=episode.id,
                    starts_at=starts_at,
                    ends_at=ends_at,
                )
            except ClientError as exc:
                form.day.errors = [*form.day.errors, translate(exc)]
            else:
                audit(
                    "appointment_added",
                    client_id=episode.client_id,
                    subject_type="appointment",
                    subject_id=created.id,
                    starts_at=created.starts_at.isoformat(),
                )
                commit()
                flash(_("Appointment added for %(when)s.", when=local_datetime(created.starts_at)), "success")
                return back_to(url_for("frontdesk.client", client_id=episode.client_id))
    status = 400 if form.errors else 200
    return (
        render_template(
            "frontdesk/appointment_form.html",
            form=form,
            episode=episode,
            appointment=None,
            episode_clinician=_clinician_name(episode),
        ),
        status,
    )


@bp.route("/appointments/<int:appointment_id>/reschedule", methods=["GET", "POST"])
@allow(Role.FRONT_DESK)
def reschedule(appointment_id: int) -> Response | tuple[str, int]:
    """Move an appointment; invitations not yet sent move with it."""
    appointment = _appointment(appointment_id)
    form = AppointmentForm()
    if request.method == "GET":
        local = utc_to_local(appointment.starts_at)
        form.day.data, form.at.data = local.date(), local.time()
        form.duration_minutes.data = int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        times = _times(form)
        if times is not None:
            starts_at, ends_at = times
            before = appointment.starts_at
            try:
                reschedule_appointment(
                    db_session(),
                    appointment_id=appointment.id,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    policy=current_policy(),
                )
            except ClientError as exc:
                form.day.errors = [*form.day.errors, translate(exc)]
            else:
                audit(
                    "appointment_rescheduled",
                    client_id=appointment.episode.client_id,
                    subject_type="appointment",
                    subject_id=appointment.id,
                    before=before.isoformat(),
                    after=appointment.starts_at.isoformat(),
                )
                commit()
                flash(_("The appointment is moved."), "success")
                return back_to(_client_page(appointment))
    status = 400 if form.errors else 200
    return (
        render_template(
            "frontdesk/appointment_form.html",
            form=form,
            episode=appointment.episode,
            appointment=appointment,
            episode_clinician=_clinician_name(appointment.episode),
        ),
        status,
    )


def _action_form() -> ActionForm:
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    return form


@bp.post("/appointments/<int:appointment_id>/cancel")
@allow(Role.FRONT_DESK)
def cancel(appointment_id: int) -> Response:
    """Cancel an appointment and its unanswered invitations (nothing more is sent for it)."""
    appointment = _appointment(appointment_id)
    form = _action_form()
    reason = (form.reason.data or "").strip() or "cancelled by the front desk"
    try:
        cancel_appointment(db_session(), appointment_id=appointment.id, reason=reason)
    except ClientError as exc:
        flash(translate(exc), "error")
        return back_to(_client_page(appointment))
    audit(
        "appointment_cancelled",
        client_id=appointment.episode.client_id,
        subject_type="appointment",
        subject_id=appointment.id,
    )
    commit()
    flash(_("The appointment is cancelled, and so are its survey invitations."), "success")
    return back_to(_client_page(appointment))


@bp.post("/appointments/<int:appointment_id>/check-in")
@allow(Role.FRONT_DESK)
def check_in(appointment_id: int) -> Response:
    """Record that the client has arrived."""
    appointment = _appointment(appointment_id)
    _action_form()
    try:
        check_in_appointment(db_session(), appointment_id=appointment.id)
    except ClientError as exc:
        flash(translate(exc), "error")
        return back_to(_client_page(appointment))
    audit(
        "client_checked_in",
        client_id=appointment.episode.client_id,
        subject_type="appointment",
        subject_id=appointment.id,
    )
    commit()
    flash(_("%(name)s is checked in.", name=appointment.episode.client.first_name), "success")
    return back_to(_client_page(appointment))


def _phase(form: ActionForm) -> str | None:
    phase = (form.phase.data or "").strip() or None
    if phase is not None and phase not in PHASES:
        abort(400)
    return phase


def _hand_out(
    appointment: Appointment, form: ActionForm, create: Callable[..., tuple[Invitation, str]], action: str
) -> tuple[Invitation, str] | None:
    """Create a kiosk or link invitation, audit it and commit; None (with a message flashed) when refused."""
    try:
        invitation, raw = create(
            db_session(),
            appointment_id=appointment.id,
            created_by_id=current_account().id,
            phase=_phase(form),
            policy=current_policy(),
        )
    except InvitationError as exc:
        flash(translate(exc), "error")
        return None
    audit(
        action,
        client_id=appointment.episode.client_id,
        subject_type="invitation",
        subject_id=invitation.id,
        phase=invitation.phase,
    )
    commit()
    return invitation, raw


@bp.post("/appointments/<int:appointment_id>/kiosk")
@allow(Role.FRONT_DESK)
def kiosk(appointment_id: int) -> Response:
    """Put the survey on the practice tablet for a checked-in client."""
    appointment = _appointment(appointment_id)
    if _hand_out(appointment, _action_form(), create_kiosk_invitation, "survey_kiosk_handout") is not None:
        flash(
            _(
                "The questionnaire is waiting on the kiosk. Hand the tablet to %(name)s and ask them to tap Start.",
                name=appointment.episode.client.first_name,
            ),
            "success",
        )
    return back_to(_client_page(appointment))


@bp.post("/appointments/<int:appointment_id>/link")
@allow(Role.FRONT_DESK)
def link(appointment_id: int) -> Response | str:
    """Make a survey link to copy and pass on; it is shown on this page once and never stored."""
    appointment = _appointment(appointment_id)
    form = _action_form()
    handed_out = _hand_out(appointment, form, create_link_invitation, "survey_link_created")
    if handed_out is None:
        return back_to(_client_page(appointment))
    invitation, raw = handed_out
    link = survey_link(current_settings().base_url, raw)
    client = appointment.episode.client
    return render_template(
        "frontdesk/link.html",
        link=link,
        qr_svg=qr_svg(link, title=_("QR code of the survey link")),
        invitation=invitation,
        appointment=appointment,
        client=client,
        channels=[c for c in MESSAGE_CHANNELS if address_for(client, c)],
        back=safe_next(form.next.data) or _client_page(appointment),
    )


@bp.post("/invitations/<int:invitation_id>/send")
@allow(Role.FRONT_DESK)
def send_now(invitation_id: int) -> Response:
    """Send a handed-out invitation's link now by email or text message (only on a channel the client agreed to)."""
    session = db_session()
    invitation = session.get(Invitation, invitation_id)
    client = get_client_for(session, current_account(), invitation.episode.client_id) if invitation else None
    if invitation is None or client is None:
        abort(404)
    _action_form()
    channel = request.form.get("channel", "")
    if channel not in MESSAGE_CHANNELS:
        abort(400)
    back = url_for("frontdesk.client", client_id=client.id)
    try:
        notification = send_invitation_now(session, invitation_id=invitation.id, channel=channel)
    except InvitationError as exc:
        flash(translate(exc), "error")
        return back_to(back)
    audit("survey_link_sent", client_id=client.id, subject_type="invitation", subject_id=invitation.id, channel=channel)
    send_notification_after_commit(session, notification.id)
    commit()
    flash(
        _("The survey link is on its way to %(name)s by email.", name=client.first_name)
        if channel == "email"
        else _("The survey link is on its way to %(name)s by text message.", name=client.first_name),
        "success",
    )
    return back_to(back)
