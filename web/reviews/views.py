"""Case reviews: the agenda (open reviews by due date, each with its case's chart) and the review form.

Supervisors see their team's reviews and any assigned to them; a manager (the fallback reviewer of a practice
without supervisors) sees those assigned to them or to nobody, and every other open review of the practice as a
count per reviewer, so the page never says "nothing to review" while reviews are open. Anything else is 404.
Opening a review is audited as a view of the client's record; completing one writes the review, closes the loop on
its alert (resolved, or a note with the plan) and opens the follow-up check, all in one commit with their audit
events. The form's questions and outcomes follow the kind of alert the review is about (partnership, outcome, risk).
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
from services.inputs import InputError, check_plausible_date
from services.reviews.operations import (
    CHOICE_FIELD,
    CHOICES_BY_KIND,
    OUTCOMES_BY_KIND,
    ReviewAnswers,
    ReviewError,
    complete_review,
)
from services.reviews.policy import review_policy
from services.reviews.queries import (
    COMPLETED,
    OPEN,
    ReviewDetail,
    can_see_charts,
    get_review_for,
    list_agenda,
    practice_review_counts,
)
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
    "plan_reviewed": _l("Treatment plan reviewed: close the alert"),
    "referred_stepped_up": _l("Referred or stepped up: close the alert"),
    "client_improving": _l("The client is improving: close the alert"),
    "contacted_client": _l("The client was contacted: close the alert"),
    "safety_plan_reviewed": _l("Safety plan reviewed: close the alert"),
    "emergency_services": _l("Emergency services involved: close the alert"),
    "not_a_risk": _l("Not a risk: close the alert"),
}
FACTOR_NAMES = {
    "life_events": _l("Events in the client's life outside therapy"),
    "treatment_fit": _l("The treatment approach or its intensity"),
    "partnership": _l("The working partnership"),
    "engagement": _l("Attendance or engagement"),
    "recent_crisis": _l("A recent crisis or stressor"),
    "long_standing": _l("Long-standing thoughts the clinician knows about"),
    "misunderstood": _l("The question was misunderstood"),
    "unclear": _l("Not clear yet"),
}
# The review form's questions, by the kind of alert it is about.
QUESTIONS = {
    "alliance": {
        "what_happened": _l("1. What happened in the partnership?"),
        "choice": _l("2. Which component of the partnership?"),
        "clinician_tried": _l("3. What has the clinician tried?"),
        "plan": _l("4. The plan"),
        "choice_short": _l("Component"),
    },
    "outcome": {
        "what_happened": _l("1. What has changed for the client?"),
        "choice": _l("2. What may explain it?"),
        "clinician_tried": _l("3. What has the clinician tried?"),
        "plan": _l("4. The plan: treatment, referral or stepping up care"),
        "choice_short": _l("What may explain it"),
    },
    "risk": {
        "what_happened": _l("1. What did the client say, and how are they now?"),
        "choice": _l("2. What lies behind the answer?"),
        "clinician_tried": _l("3. What has the clinician done?"),
        "plan": _l("4. The safety plan"),
        "choice_short": _l("What lies behind the answer"),
    },
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
        "choice_names": {**COMPONENT_NAMES, **FACTOR_NAMES},
        "choices_by_kind": CHOICES_BY_KIND,
        "choice_field": CHOICE_FIELD,
        "outcomes_by_kind": {kind: tuple(outcomes) for kind, outcomes in OUTCOMES_BY_KIND.items()},
        "questions": QUESTIONS,
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
        practice_counts=practice_review_counts(session, account),
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
        for key in ("what_happened", "component", "factor", "clinician_tried", "plan", "outcome", "follow_up_on")
    }
    raw_date = form["follow_up_on"].strip()
    follow_up: date | None = None
    if raw_date:
        try:
            follow_up = date.fromisoformat(raw_date)
        except ValueError:
            raise ReviewError(N_("A follow-up date must be a date (YYYY-MM-DD).")) from None
        try:
            check_plausible_date(follow_up)
        except InputError as exc:
            raise ReviewError(exc.message) from None
    answers = ReviewAnswers(
        what_happened=form["what_happened"],
        component=form["component"] or form["factor"],
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
