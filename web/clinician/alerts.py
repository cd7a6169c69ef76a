"""Alert pages and what a clinician does about an alert: acknowledge, note, record a step, resolve.

Each kind has its own steps and reasons (services.alerts.kinds): repair steps and "repaired / not a rupture" for
partnership alerts; "contacted the client", "safety plan reviewed"... for risk; "treatment plan reviewed"... for
outcome. A step or reason from another kind is refused with a 400.

Every action is a POST form with its CSRF token. With htmx the alert's action panel is swapped in place; without
JavaScript the form posts, the page redirects back (303) and shows what happened. The alert is loaded with
for_update=True before acting, so an evaluation adding evidence at the same moment waits for the action's commit.
The service functions write the alert action and its audit event; viewing an alert writes a client view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from services.accounts.models import User
from services.alerts.kinds import has_repair_steps, resolution_reasons, steps_for
from services.alerts.operations import (
    AlertActionError,
    acknowledge_alert,
    add_alert_note,
    record_repair_step,
    record_step,
    resolve_alert,
)
from services.alerts.queries import (
    ALERT_STATUSES,
    AlertDetail,
    EvidenceLine,
    actor_names,
    get_alert_for,
    list_alerts_page,
)
from services.alerts.repair import RepairSuggestion, get_suggestion
from services.alerts.summary import summarize_alert
from services.audit.operations import record_client_view
from web.access import allow
from web.clinician.presenting import (
    ACTION_NAMES,
    AFTER_CLOSE,
    ESCALATED_TO,
    RESOLUTION_NAMES,
    RISK_NOT_WATCHED,
    STEP_NAMES,
    TOPIC_NAMES,
    WHAT_TO_DO,
    Certainty,
    Figure,
    certainty,
    figures,
    signal_name,
    unvalidated_instruments,
)
from web.clinician.views import CLINICAL, bp, page_number
from web.htmx import wants_fragment
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback

PANEL = "alert-panel"
LIST_TARGET = "alert-list"
ALERTS_PER_PAGE = 25
LIST_FILTERS = ("active", *ALERT_STATUSES, "all")
KINDS = ("risk", "alliance", "outcome")
# The services' messages, in the reader's language.
SERVICE_MESSAGES = {
    "Please write a few words.": _l("Please write a few words."),
    "This alert is already resolved.": _l("This alert is already resolved."),
}


def language() -> str:
    """The page's language code."""
    return str(get_locale() or "en")


@dataclass(frozen=True)
class EvidenceRow:
    """One line of evidence as the page shows it."""

    line: EvidenceLine
    name: str
    figures: list[Figure]
    late: bool
    at: datetime | None


@dataclass(frozen=True)
class HistoryRow:
    """One thing done about the alert, with who did it."""

    at: Any
    action: str
    actor: str
    text: str | None
    detail: str | None


@bp.get("/alerts")
@allow(*CLINICAL)
def alerts_list() -> str:
    """Alerts I may see, filtered by status and kind, one page at a time."""
    status = request.args.get("status", "active")
    if status not in LIST_FILTERS:
        status = "active"
    kind = request.args.get("kind") or None
    if kind not in KINDS:
        kind = None
    page = list_alerts_page(
        db_session(),
        current_account(),
        status=status if status in ALERT_STATUSES else None,
        active_only=status == "active",
        kind=kind,
        page=page_number(),
        per_page=ALERTS_PER_PAGE,
    )
    template = "clinician/_alert_list.html" if wants_fragment(LIST_TARGET) else "clinician/alerts.html"
    return render_template(
        template,
        page=page,
        status=status,
        kind=kind or "",
        filters=LIST_FILTERS,
        kinds=KINDS,
    )


def _load(alert_id: int, *, for_update: bool = False) -> AlertDetail:
    detail = get_alert_for(db_session(), current_account(), alert_id, language=language(), for_update=for_update)
    if detail is None:
        abort(404)  # not in this viewer's scope: do not confirm the alert exists
    return detail


def _when(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _suggestion_text(key: object) -> str | None:
    suggestion = get_suggestion(str(key)) if key else None
    return suggestion.in_language(language()) if suggestion is not None else None


def _history_detail(action: str, detail: dict[str, Any]) -> str | None:
    if action == "resolved":
        reason = str(detail.get("reason"))
        return str(RESOLUTION_NAMES.get(reason, reason))
    if action == "step":
        step = str(detail.get("step"))
        return str(STEP_NAMES.get(step, step))
    if action == "escalated":
        targets = detail.get("to") or []
        roles = [targets] if isinstance(targets, str) else list(targets)
        whom = ", ".join(str(ESCALATED_TO.get(str(role), role)) for role in roles)
        text = _("Not acknowledged in time: passed to %(whom)s.", whom=whom) if whom else None
        if text and detail.get("fallback"):
            text += " " + _("Nobody was on call.")
        return text
    return _suggestion_text(detail.get("suggestion"))


def panel_context(detail: AlertDetail) -> dict[str, Any]:
    """What the alert page and its action panel need."""
    session = db_session()
    lang = language()
    alert = detail.alert
    entries = list(alert.evidence)
    rows: list[EvidenceRow] = []
    drops_shown: set[object] = set()
    for line, entry in zip(detail.evidence, entries, strict=True):
        # The largest component drop belongs to the session, not to each rule: show it once per session.
        largest = entry.get("largest_drop") if line.session not in drops_shown else None
        if largest:
            drops_shown.add(line.session)
        rows.append(
            EvidenceRow(
                line=line,
                name=signal_name(line.kind),
                figures=figures(line, largest_drop=largest),
                late=bool((entry.get("evidence") or {}).get("late")),
                at=_when(line.at),
            )
        )
    names = actor_names(session, [action.actor_id for action in detail.actions])
    history = [
        HistoryRow(
            at=action.at,
            action=str(ACTION_NAMES.get(action.action, action.action)),
            actor=names.get(action.actor_id or 0, _("the system")),
            text=action.text,
            detail=_history_detail(action.action, dict(action.detail or {})),
        )
        for action in detail.actions
    ]
    grouped: dict[str, list[RepairSuggestion]] = {}
    for suggestion in detail.suggestions:
        grouped.setdefault(suggestion.topic, []).append(suggestion)
    kinds = [row.line.kind for row in rows]
    sureness: list[Certainty] = certainty(kinds)
    return {
        "detail": detail,
        "alert": alert,
        "summary": summarize_alert(alert.kind, alert.evidence, language=lang),
        "evidence_rows": rows,
        "history": history,
        "suggestions": [(topic, str(TOPIC_NAMES.get(topic, topic)), items) for topic, items in grouped.items()],
        "certainty": sureness,
        "unvalidated": unvalidated_instruments([str(entry.get("instrument", "")) for entry in entries]),
        "not_on_track": "NOT_ON_TRACK" in kinds,
        "reasons": resolution_reasons(alert.kind),
        "steps": steps_for(alert.kind),
        "repairs": has_repair_steps(alert.kind),
        "what_to_do": WHAT_TO_DO.get(alert.kind),
        "risk_not_watched": RISK_NOT_WATCHED,
        "after_close": AFTER_CLOSE.get(alert.kind),
        "signal_name": signal_name,
    }


@bp.get("/alerts/<int:alert_id>")
@allow(*CLINICAL)
def alert(alert_id: int) -> str:
    """One alert: what happened, the evidence in numbers, how sure we are, what to try, and the actions."""
    detail = _load(alert_id)
    account = current_account()
    record_client_view(
        db_session(), actor_id=account.id, client_id=detail.client.id, what=f"alert:{alert_id}", ip=client_ip()
    )
    html = render_template("clinician/alert.html", **panel_context(detail))
    commit()  # nothing is shown unless the audit event is stored
    return html


Action = Callable[[Session, AlertDetail, User], str]


def _act(alert_id: int, action: Action) -> Response | str | tuple[str, int]:
    """Load the alert locked, act, commit; answer with the panel (htmx) or a redirect (no JavaScript)."""
    session = db_session()
    account = current_account()
    detail = _load(alert_id, for_update=True)
    try:
        message = action(session, detail, account)
    except AlertActionError as exc:
        rollback()
        error = str(SERVICE_MESSAGES.get(str(exc), str(exc)))
        return _answer(alert_id, error=error)
    commit()
    return _answer(alert_id, message=message)


def _answer(alert_id: int, *, message: str | None = None, error: str | None = None) -> Response | str | tuple[str, int]:
    if wants_fragment(PANEL):
        session = db_session()
        session.expire_all()  # the actions just written, read back fresh
        detail = _load(alert_id)
        # htmx swaps 2xx answers only: an error is shown inside the panel it replaces.
        return render_template("clinician/_alert_panel.html", message=message, error=error, **panel_context(detail))
    if error is not None:
        detail = _load(alert_id)
        html = render_template("clinician/alert.html", error=error, **panel_context(detail))
        return html, 400
    flash(message or _("Done."), "success")
    return redirect(url_for("clinician.alert", alert_id=alert_id, _anchor=PANEL), code=303)


@bp.post("/alerts/<int:alert_id>/acknowledge")
@allow(*CLINICAL)
def acknowledge(alert_id: int) -> Response | str | tuple[str, int]:
    """Mark the alert as seen (a second click changes nothing)."""

    def run(session: Session, detail: AlertDetail, account: User) -> str:
        done = acknowledge_alert(session, detail.alert, actor=account, ip=client_ip())
        return str(_("Acknowledged.") if done is not None else _("This alert was already acknowledged."))

    return _act(alert_id, run)


@bp.post("/alerts/<int:alert_id>/notes")
@allow(*CLINICAL)
def note(alert_id: int) -> Response | str | tuple[str, int]:
    """Add a note to the alert."""

    def run(session: Session, detail: AlertDetail, account: User) -> str:
        add_alert_note(session, detail.alert, actor=account, text=request.form.get("text", ""), ip=client_ip())
        return str(_("Note added."))

    return _act(alert_id, run)


@bp.post("/alerts/<int:alert_id>/repair-steps")
@allow(*CLINICAL)
def repair_step(alert_id: int) -> Response | str | tuple[str, int]:
    """Record the repair step taken: one of the suggestions, or in my own words, or both."""

    def run(session: Session, detail: AlertDetail, account: User) -> str:
        if not has_repair_steps(detail.alert.kind):
            raise AlertActionError(_("Repair steps are for partnership alerts; record one of this alert's steps."))
        key = request.form.get("suggestion", "").strip()
        if key in ("", "other"):
            key = ""
        elif key not in {suggestion.key for suggestion in detail.suggestions}:
            raise AlertActionError(_("Choose one of the suggestions shown, or describe the step in your own words."))
        record_repair_step(
            session,
            detail.alert,
            actor=account,
            suggestion_key=key or None,
            text=request.form.get("text", ""),
            ip=client_ip(),
        )
        return str(_("Repair step recorded."))

    return _act(alert_id, run)


@bp.post("/alerts/<int:alert_id>/steps")
@allow(*CLINICAL)
def step(alert_id: int) -> Response | str | tuple[str, int]:
    """Record a step taken on a risk or outcome alert (contacted the client, reviewed the plan...), with words."""

    def run(session: Session, detail: AlertDetail, account: User) -> str:
        chosen = request.form.get("step", "").strip()
        if chosen not in steps_for(detail.alert.kind):
            raise AlertActionError(_("Choose one of the steps shown."))
        record_step(session, detail.alert, actor=account, step=chosen, text=request.form.get("text"), ip=client_ip())
        return str(_("Recorded: %(step)s.", step=STEP_NAMES[chosen]))

    return _act(alert_id, run)


@bp.post("/alerts/<int:alert_id>/resolve")
@allow(*CLINICAL)
def resolve(alert_id: int) -> Response | str | tuple[str, int]:
    """Close the alert with one of its kind's reasons (a few words with "other")."""

    def run(session: Session, detail: AlertDetail, account: User) -> str:
        reason = request.form.get("reason", "")
        if reason not in resolution_reasons(detail.alert.kind):
            raise AlertActionError(_("Choose one of the reasons shown for resolving the alert."))
        resolve_alert(
            session, detail.alert, actor=account, reason=reason, note=request.form.get("note"), ip=client_ip()
        )
        return str(_("Resolved: %(reason)s.", reason=RESOLUTION_NAMES[reason]))

    return _act(alert_id, run)
