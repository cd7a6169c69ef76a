"""Case reviews: the agenda (open reviews by due date, each with its case's chart) and the review form.

Supervisors see their team's reviews and any assigned to them; a manager (the fallback reviewer of a practice
without supervisors) sees only those assigned to them. Anything else is 404. Opening a review is audited as a view
of the client's record; completing one writes the review, closes the loop on its alert (resolved, or a note with
the plan) and opens the follow-up check, all in one commit with their audit events.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.audit.operations import record_client_view
from services.db import utcnow
from services.i18n import N_
from services.reviews.operations import COMPONENTS, OUTCOMES, ReviewAnswers, ReviewError, complete_review
from services.reviews.policy import review_policy
from services.reviews.queries import COMPLETED, OPEN, ReviewDetail, can_see_charts, get_review_for, list_agenda
from web.access import allow
from web.app import current_settings
from web.clinician.presenting import STATUS_NAMES
from web.i18n import local_date, translate
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback

bp = Blueprint("reviews", __name__, url_prefix="/reviews")

REVIEWERS = (Role.SUPERVISOR, Role.MANAGER)

REASON_NAMES = {
    "UNREPAIRED": _l("Rupture not repaired"),
    "SILENT_AFTER_RUPTURE": _l("Silence after a rupture"),
    "REPEATED_RUPTURE": _l("Two ruptures within four sessions"),
    "RELIABLE_DETERIORATION": _l("Reliable deterioration"),
    "FOLLOW_UP": _l("Follow-up check"),
}
OUTCOME_NAMES = {
    "repaired": _l("Repaired or resolved: close the alert"),
    "plan_agreed": _l("Plan agreed: keep the alert open"),
    "not_a_concern": _l("Not a rupture or not a concern: close the alert"),
    "client_ended": _l("The client ended therapy: close the alert"),
}
COMPONENT_NAMES = {
    "rapport": _l("Rapport: feeling heard and respected"),
    "mutual_goals": _l("Mutual goals: working on what the client wants"),
    "realistic_goals": _l("Realistic goals: the approach fits"),
    "shared_responsibility": _l("Shared responsibility: working together"),
    "tension": _l("Tension in the session"),
    "general": _l("General, or not clear yet"),
}


def error_message(exc: ReviewError) -> str:
    """The error's message in the reader's language."""
    return translate(exc)


def number(value: object) -> str:
    """A figure as people write it: 8, 37.5 (no trailing .0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    return "?" if value is None else str(value)


def _names() -> dict[str, object]:
    return {
        "number": number,
        "alert_status_names": STATUS_NAMES,
        "reason_names": REASON_NAMES,
        "outcome_names": OUTCOME_NAMES,
        "component_names": COMPONENT_NAMES,
        "components": COMPONENTS,
        "outcomes": tuple(OUTCOMES),
    }


@bp.get("/")
@allow(*REVIEWERS)
def agenda() -> str:
    """Open reviews by due date (overdue first by nature), then the recently completed ones."""
    account = current_account()
    session = db_session()
    return render_template(
        "reviews/agenda.html",
        open_items=list_agenda(session, account, status=OPEN),
        completed_items=list_agenda(session, account, status=COMPLETED, limit=20),
        now=utcnow(),
        show_charts=can_see_charts(account),
        **_names(),
    )


def _load(review_id: int, *, for_update: bool = False) -> ReviewDetail:
    detail = get_review_for(db_session(), current_account(), review_id, for_update=for_update)
    if detail is None:
        abort(404)  # not in this viewer's scope: do not confirm it exists
    return detail


def _page(detail: ReviewDetail, *, error: str | None = None, form: dict[str, str] | None = None) -> str:
    account = current_account()
    return render_template(
        "reviews/review.html",
        detail=detail,
        error=error,
        form=form or {},
        now=utcnow(),
        show_charts=can_see_charts(account),
        today=utcnow().astimezone(current_settings().tz).date(),
        **_names(),
    )


@bp.get("/<int:review_id>")
@allow(*REVIEWERS)
def review(review_id: int) -> str:
    """One review: the case, why it was opened, and the form (or what was recorded)."""
    detail = _load(review_id)
    account = current_account()
    record_client_view(
        db_session(), actor_id=account.id, client_id=detail.client.id, what=f"review:{review_id}", ip=client_ip()
    )
    html = _page(detail)
    commit()  # nothing is shown unless the audit event is stored
    return html


def _answers() -> tuple[ReviewAnswers, dict[str, str]]:
    form = {
        key: request.form.get(key, "")
        for key in ("what_happened", "component", "clinician_tried", "plan", "outcome", "follow_up_on")
    }
    raw_date = form["follow_up_on"].strip()
    follow_up: date | None = None
    if raw_date:
        try:
            follow_up = date.fromisoformat(raw_date)
        except ValueError:
            raise ReviewError(N_("A follow-up date must be a date (YYYY-MM-DD).")) from None
    answers = ReviewAnswers(
        what_happened=form["what_happened"],
        component=form["component"],
        clinician_tried=form["clinician_tried"],
        plan=form["plan"],
        outcome=form["outcome"],
        follow_up_on=follow_up,
    )
    return answers, form


@bp.post("/<int:review_id>")
@allow(*REVIEWERS)
def complete(review_id: int) -> Response | tuple[str, int]:
    """Record the review, close the loop on its alert, and set the follow-up check; one commit."""
    settings = current_settings()
    account = current_account()
    session = db_session()
    detail = _load(review_id, for_update=True)
    form: dict[str, str] = {}
    try:
        answers, form = _answers()
        done = complete_review(
            session,
            detail,
            actor=account,
            answers=answers,
            policy=review_policy(settings),
            tz=settings.tz,
            ip=client_ip(),
        )
    except ReviewError as exc:
        rollback()
        message = error_message(exc)
        return _page(_load(review_id), error=message, form=form or dict(request.form)), 400
    commit()
    if done.follow_up is not None:
        day = local_date(done.follow_up.due_at)
        flash(_("Review recorded. A follow-up check is on the agenda for %(day)s.", day=day), "success")
    else:
        flash(_("Review recorded."), "success")
    return redirect(url_for("reviews.agenda"), code=303)
