"""The client's chart, and the clinician's own Partnership Check for a session (a few taps after it).

The chart reads a fixed number of queries (`services.clients.chart`) and draws with `reports.charts`. Viewing it
writes a client view. The rating is stored with `record_administration` (respondent "therapist") and evaluated by
`alerts.evaluate` after the commit, so the perspective-gap rule sees it.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.audit.operations import record_client_view, record_event
from services.briefs.queries import phase_of
from services.calibration.operations import current_models
from services.clients.chart import (
    THERAPIST_CHECK,
    ClientChart,
    SessionToRate,
    can_be_rated,
    get_client_chart,
    get_session_to_rate,
)
from services.measures import AnswerError, load_instrument
from services.signals import DEFAULT_SETTINGS
from services.surveys.administrations import record_administration
from web.access import allow
from web.clinician.alerts import language
from web.clinician.charts import chart_blocks
from web.clinician.presenting import precise
from web.clinician.views import CLINICAL, bp
from web.i18n import local_date
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback
from workers.enqueue import enqueue_after_commit

MAX_NOTE = 2000


@bp.get("/clients/<int:client_id>/chart")
@allow(*CLINICAL)
def chart(client_id: int) -> str:
    """The client's scores by session with cutoffs, bands, signals and tension; a table under each chart."""
    account = current_account()
    session = db_session()
    episode_id = request.args.get("episode", type=int)
    data = get_client_chart(session, account, client_id, episode_id=episode_id)
    if data is None:
        abort(404)
    record_client_view(session, actor_id=account.id, client_id=client_id, what="chart", ip=client_ip())
    blocks = chart_blocks(data, language=language(), date_label=local_date, models=current_models(session))
    html = render_template(
        "clinician/chart.html",
        chart=data,
        blocks=blocks,
        item_tables=item_tables(data),
        own_episode=data.episode.clinician_id == account.id,
        home=url_for("supervisor.home" if account.role == Role.SUPERVISOR else "clinician.home"),
        record=url_for(
            "supervisor.client" if account.role == Role.SUPERVISOR else "clinician.client", client_id=client_id
        ),
    )
    commit()  # nothing is shown unless the audit event is stored
    return html


def item_tables(data: ClientChart) -> list[dict[str, Any]]:
    """Each outcome instrument's answers by question beside its total, with the phase of each administration
    (intake, review at the checkpoint, discharge) and the risk item's column always shown and marked."""
    from web.clinician.room import PHASE_NAMES

    lang = language()
    ended = data.episode.ended_on is not None
    checkpoint = DEFAULT_SETTINGS.not_on_track_checkpoint
    tables = []
    for series in data.outcome:
        instrument = series.instrument
        items = [item for item in instrument.items if item.type != "text" and (item.scored or item.risk)]
        headers = [
            {
                "label": _("Q%(n)d (risk item)", n=n + 1) if item.risk else _("Q%(n)d", n=n + 1),
                "risk": item.risk,
            }
            for n, item in enumerate(items)
        ]
        count = len(series.points)
        rows = [
            {
                "session": point.session,
                "date": local_date(point.completed_at),
                "phase": str(PHASE_NAMES[phase_of(index, count, episode_ended=ended, checkpoint=checkpoint)]),
                "total": precise(point.total) if point.total is not None else _("incomplete"),
                "answers": [
                    (precise(value) if (value := point.items.get(item.id)) is not None else _("unanswered"), item.risk)
                    for item in items
                ],
            }
            for index, point in enumerate(series.points)
        ]
        tables.append(
            {
                "title": instrument.title.get(lang, instrument.title.get("en", instrument.code)),
                "headers": headers,
                "rows": rows,
            }
        )
    return tables


def _session_to_rate(appointment_id: int) -> SessionToRate:
    found = get_session_to_rate(db_session(), current_account(), appointment_id)
    if found is None:
        abort(404)  # not this clinician's session
    return found


def _form(found: SessionToRate, *, values: dict[str, Any], error: str | None, status: int = 200) -> tuple[str, int]:
    instrument = load_instrument(THERAPIST_CHECK)
    lang = language()
    items = [
        {
            "id": item.id,
            "text": item.text.get(lang, item.text["en"]),
            "min_label": item.range.min_label.get(lang, "") if item.range is not None else "",
            "max_label": item.range.max_label.get(lang, "") if item.range is not None else "",
        }
        for item in instrument.items
        if item.type == "range"
    ]
    note_item = next((item for item in instrument.items if item.type == "text"), None)
    html = render_template(
        "clinician/rate.html",
        found=found,
        instrument=instrument,
        title=instrument.title.get(lang, instrument.title["en"]),
        instructions=instrument.instructions.get(lang, instrument.instructions.get("en", "")),
        attribution=instrument.licence.attribution.get(lang, instrument.licence.attribution.get("en", "")),
        items=items,
        note_item=note_item,
        note_text=note_item.text.get(lang, note_item.text["en"]) if note_item is not None else "",
        values=values,
        error=error,
        open_for_rating=can_be_rated(found.appointment),
    )
    return html, status


@bp.get("/sessions/<int:appointment_id>/partnership")
@allow(*CLINICAL)
def rate(appointment_id: int) -> str | tuple[str, int]:
    """The Therapist Partnership Check for one of my sessions: four 0-10 taps and an optional note."""
    found = _session_to_rate(appointment_id)
    return _form(found, values={}, error=None)


@bp.post("/sessions/<int:appointment_id>/partnership")
@allow(*CLINICAL)
def rate_submit(appointment_id: int) -> Response | tuple[str, int]:
    """Store my rating of the session and evaluate it after the commit (a second submit changes nothing)."""
    account = current_account()
    session = db_session()
    found = _session_to_rate(appointment_id)
    chart_url = url_for("clinician.chart", client_id=found.client.id, episode=found.episode.id)
    if found.rated:
        flash(_("You have already rated this session."), "info")
        return redirect(chart_url, code=303)
    if not can_be_rated(found.appointment):
        return _form(found, values={}, error=_("This session has not taken place yet, or was cancelled."), status=409)
    instrument = load_instrument(THERAPIST_CHECK)
    answers: dict[str, object] = {}
    values: dict[str, Any] = {}
    missing = []
    for item in instrument.items:
        raw = request.form.get(item.id, "").strip()
        values[item.id] = raw
        if item.type == "text":
            if len(raw) > MAX_NOTE:
                return _form(found, values=values, error=_("Please keep the note under 2000 characters."), status=400)
            if raw:
                answers[item.id] = raw
            continue
        if not raw.isdigit() or not item.allows(float(raw)):
            missing.append(item)
            continue
        answers[item.id] = int(raw)
    if missing:
        return _form(found, values=values, error=_("Please rate all four parts (0 to 10)."), status=400)
    try:
        row = record_administration(
            session,
            episode_id=found.episode.id,
            instrument_code=THERAPIST_CHECK,
            answers=answers,
            appointment_id=found.appointment.id,
            respondent="therapist",
            language=account.language,
        )
    except AnswerError as exc:
        rollback()
        return _form(found, values=values, error=str(exc), status=400)
    record_event(
        session,
        action="partnership_rated",
        actor_id=account.id,
        subject_type="administration",
        subject_id=row.id,
        client_id=found.client.id,
        ip=client_ip(),
        detail={"appointment_id": found.appointment.id, "total": row.total},
    )
    enqueue_after_commit(session, "alerts.evaluate", row.id)
    commit()
    flash(_("Thank you: your rating of the session is saved."), "success")
    return redirect(chart_url, code=303)
