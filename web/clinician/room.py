"""Feedback in the room: the brief before a session, "discussed with the client", and the view shared with the client.

The brief is a staff page (clinician and supervisor, scoped like the chart); opening it is an audited view of the
client's data, which is also what the fidelity figures count (services.reporting.fidelity). The shared view at
`/clinician/clients/<client_id>/together` is rendered in the client's language from `get_together_view`, which
reads only the client's own answers and goals: no alert, no note, no risk answer, nobody else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.alerts.repair import get_suggestion
from services.alerts.summary import component_label, number
from services.audit.operations import record_client_view
from services.briefs.operations import BriefError, mark_discussed, revise_goals
from services.briefs.queries import (
    ComponentReading,
    ScoreChange,
    SessionBrief,
    brief_view_label,
    get_brief,
    get_episode_brief,
    get_together_view,
)
from services.clients.models import Episode
from services.clients.operations import MAX_GOALS
from web.access import allow
from web.clinician.alerts import language
from web.clinician.views import CLINICAL, bp
from web.frontdesk.common import day_bounds, local_today
from web.i18n import DASH, translate
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback
from web.survey.flow import force_locale

PHASE_NAMES: dict[str, LazyString] = {
    "intake": _l("intake"),
    "review": _l("review (checkpoint)"),
    "discharge": _l("discharge"),
    "session": _l("session"),
}

# How a score moved, for the clinician (plain words first; the numbers follow on the page).
SCORE_READINGS: dict[str, LazyString] = {
    "better": _l("Better, by more than the usual ups and downs (a reliable change)."),
    "worse": _l("Worse, by more than the usual ups and downs (a reliable change)."),
    "same": _l("About the same: the change is within the usual ups and downs."),
    "none": _l("Nothing earlier to compare with."),
}
PART_READINGS: dict[str, LazyString] = {
    "below": _l("below the client's usual level"),
    "above": _l("above the client's usual level"),
    "usual": _l("at the client's usual level"),
    "none": _l("no usual level yet"),
}
TENSION_NAMES: dict[int, LazyString] = {
    0: _l("No tension"),
    1: _l("A little tension"),
    2: _l("Some tension"),
    3: _l("A lot of tension"),
}

# The shared view: what each part of the partnership means, in words a client reads.
PART_NAMES: dict[str, LazyString] = {
    "rapport": _l("Feeling listened to and respected"),
    "mutual_goals": _l("Working on what you want to work on"),
    "realistic_goals": _l("Aims that feel within reach"),
    "shared_responsibility": _l("Working as partners"),
}
# How the client's own scores moved, in plain words (no statistics).
CLIENT_READINGS: dict[str, LazyString] = {
    "better": _l("Things have clearly improved since you started."),
    "worse": _l("Things have been harder than when you started. This is worth talking about together."),
    "same": _l("Things are about the same as when you started."),
    "none": _l("This is your first answer: it is where we start from."),
}
LOWER_BETTER = _l("On this questionnaire, a lower score means fewer difficulties.")
HIGHER_BETTER = _l("On this questionnaire, a higher score means things are going better.")
MAX_NOTE = 2000


@dataclass(frozen=True)
class ScoreLine:
    """One outcome score as the brief shows it: plain words, then the numbers, then the item answers."""

    title: str
    words: str
    latest: str
    previous: str
    first: str
    rc: str
    phase: str
    items: list[tuple[str, str, bool]]
    new: bool


def _title(instrument: Any, lang: str) -> str:
    return str(instrument.title.get(lang, instrument.title.get("en", instrument.code)))


def _score_line(change: ScoreChange, lang: str) -> ScoreLine:
    latest, previous, first = change.latest, change.previous, change.first
    words = str(SCORE_READINGS[change.since_last])
    if change.since_start in ("better", "worse") and first is not None and previous is not first:
        better = change.since_start == "better"
        words += " " + (_("Since the start: reliably better.") if better else _("Since the start: reliably worse."))
    point = change.points[-1]
    return ScoreLine(
        title=_title(change.instrument, lang),
        words=words,
        latest=number(latest.total) if latest is not None else DASH,
        previous=number(previous.total) if previous is not None else DASH,
        first=number(first.total) if first is not None else DASH,
        rc=number(change.rc) if change.rc is not None else DASH,
        phase=str(PHASE_NAMES.get(point.phase, point.phase)),
        items=[
            (str(item.number), number(item.value) if item.value is not None else _("unanswered"), item.risk)
            for item in point.items
        ],
        new=change.new,
    )


def _part_line(part: ComponentReading, lang: str) -> dict[str, Any]:
    return {
        "name": component_label(part.component, lang),
        "reading": str(PART_READINGS[part.reading]),
        "below": part.reading == "below",
        "latest": number(part.latest) if part.latest is not None else DASH,
        "usual": number(part.usual) if part.usual is not None else DASH,
    }


def _brief_context(brief: SessionBrief) -> dict[str, Any]:
    lang = language()
    partnership = brief.partnership
    repair = brief.repair
    suggestion = get_suggestion(repair.suggestion) if repair is not None and repair.suggestion else None
    return {
        "brief": brief,
        "scores": [_score_line(change, lang) for change in brief.scores],
        "parts": [_part_line(part, lang) for part in partnership.components] if partnership else [],
        "tension": str(TENSION_NAMES[partnership.tension]) if partnership and partnership.tension is not None else None,
        "partnership_total": number(partnership.total) if partnership and partnership.total is not None else DASH,
        "partnership_usual": number(partnership.usual_total)
        if partnership and partnership.usual_total is not None
        else DASH,
        "repair_words": suggestion.in_language(lang) if suggestion is not None else None,
        "number": number,
        "is_supervisor": current_account().role == Role.SUPERVISOR,
    }


def _audit_brief(brief: SessionBrief) -> None:
    account = current_account()
    appointment_id = brief.appointment.id if brief.appointment is not None else None
    record_client_view(
        db_session(),
        actor_id=account.id,
        client_id=brief.client.id,
        what=brief_view_label(appointment_id),
        ip=client_ip(),
    )


def _show_brief(brief: SessionBrief | None, *, status: int = 200, error: str | None = None) -> tuple[str, int]:
    if brief is None:
        abort(404)  # not in this viewer's scope: do not confirm the session exists
    _audit_brief(brief)
    html = render_template("clinician/brief.html", error=error, **_brief_context(brief))
    commit()  # nothing is shown unless the audit event is stored
    return html, status


@bp.get("/sessions/<int:appointment_id>/brief")
@allow(*CLINICAL)
def brief(appointment_id: int) -> tuple[str, int]:
    """One session's brief: what changed since the last session, in plain words first and numbers after (audited)."""
    return _show_brief(get_brief(db_session(), current_account(), appointment_id))


@bp.get("/episodes/<int:episode_id>/brief")
@allow(*CLINICAL)
def episode_brief(episode_id: int) -> tuple[str, int]:
    """The brief of an episode's next session (from the chart and the alert page)."""
    start, _end = day_bounds(local_today())
    return _show_brief(get_episode_brief(db_session(), current_account(), episode_id, today_start=start))


@bp.post("/sessions/<int:appointment_id>/brief/discussed")
@allow(*CLINICAL)
def brief_discussed(appointment_id: int) -> Response | tuple[str, int]:
    """Record that this session's feedback was discussed with the client (optional note; a repeat changes nothing)."""
    session = db_session()
    account = current_account()
    found = get_brief(session, account, appointment_id)
    if found is None or found.appointment is None or not found.own:
        abort(404)  # only the episode's own clinician marks it (a supervisor reads the brief)
    note = request.form.get("note", "")
    if len(note) > MAX_NOTE:
        return _show_brief(found, status=400, error=_("Please keep the note under 2000 characters."))
    try:
        done = mark_discussed(
            session, appointment=found.appointment, episode=found.episode, actor=account, note=note, ip=client_ip()
        )
    except BriefError as exc:
        rollback()
        return _show_brief(get_brief(session, account, appointment_id), status=400, error=translate(exc))
    commit()
    message = _("Marked as discussed with the client.") if done else _("This brief was already marked as discussed.")
    flash(message, "success")
    return redirect(url_for("clinician.brief", appointment_id=appointment_id), code=303)


# ---------------------------------------------------------------------------------------------------------------
# The view shared with the client


def _together_context(client_id: int) -> dict[str, Any]:
    view = get_together_view(db_session(), current_account(), client_id)
    if view is None:
        abort(404)
    return {"view": view}


def _render_together(view: Any, *, error: str | None = None, values: list[str] | None = None) -> str:
    with force_locale(view.language):
        scores = []
        for change in view.scores:
            latest = change.latest
            scores.append(
                {
                    "title": _title(change.instrument, view.language),
                    "words": str(CLIENT_READINGS[change.since_start]),
                    "direction": str(LOWER_BETTER if change.instrument.direction == "higher_worse" else HIGHER_BETTER),
                    "points": [(p.completed_at, number(p.total)) for p in change.points if p.total is not None],
                    "latest": number(latest.total) if latest is not None else None,
                    "top": number(change.instrument.range_max),
                }
            )
        parts = [
            {
                "name": str(PART_NAMES.get(part.component, component_label(part.component, view.language))),
                "ratings": [(at, number(value)) for at, value in part.ratings],
            }
            for part in view.parts
        ]
        goal_values = values if values is not None else [g.words for g in view.goals]
        goal_values = (goal_values + [""] * MAX_GOALS)[:MAX_GOALS]
        return render_template(
            "clinician/together.html",
            view=view,
            scores=scores,
            parts=parts,
            goal_values=goal_values,
            error=error,
            number=number,
            lang=view.language,
        )


@bp.get("/clients/<int:client_id>/together")
@allow(*CLINICAL)
def together(client_id: int) -> str:
    """A calm page to turn towards the client: their own scores, goals and partnership ratings (audited)."""
    context = _together_context(client_id)
    account = current_account()
    record_client_view(db_session(), actor_id=account.id, client_id=client_id, what="together", ip=client_ip())
    html = _render_together(context["view"])
    commit()
    return html


@bp.post("/clients/<int:client_id>/together/goals")
@allow(*CLINICAL)
def together_goals(client_id: int) -> Response | tuple[str, int]:
    """Revise the goals with the client: the earlier wording is kept as a revision (audited)."""
    session = db_session()
    account = current_account()
    view = _together_context(client_id)["view"]
    values = [request.form.get(f"goal_{n}", "") for n in range(1, MAX_GOALS + 1)]
    if not view.own:
        abort(404)  # the client's own clinician revises the goals with them
    episode = session.get(Episode, view.episode_id)
    if episode is None:  # pragma: no cover - the view was just read
        abort(404)
    try:
        done = revise_goals(session, episode=episode, goals=values, actor=account, ip=client_ip())
    except BriefError as exc:
        rollback()
        view = _together_context(client_id)["view"]
        with force_locale(view.language):
            error = translate(exc)
        return _render_together(view, error=error, values=values), 400
    commit()
    with force_locale(view.language):
        flash(_("Your goals are saved.") if done else _("Your goals are unchanged."), "success")
    return redirect(url_for("clinician.together", client_id=client_id, _anchor="goals"), code=303)
