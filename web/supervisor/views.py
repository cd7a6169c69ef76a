"""Supervisor: the team's caseload at a glance, and the team's clients' records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.alerts.evaluation import ALERT_KINDS
from services.alerts.queries import caseload_page, list_alerts_page, open_alert_counts, team_overview
from services.db import utcnow
from services.reporting.fidelity import Fidelity, fidelity
from services.reporting.periods import ReportScope, month_of, period_containing
from web.access import allow
from web.app import current_settings
from web.client_pages import show_client_record
from web.clinician.presenting import clinical_context
from web.clinician.views import CASELOAD_TARGET, page_number, page_size
from web.errors import error_response
from web.htmx import wants_fragment
from web.i18n import DASH
from web.login import current_account
from web.request_db import db_session

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")
bp.context_processor(clinical_context)

ALERTS_TARGET = "team-alerts"
ALERTS_PER_PAGE = 10
ALERTS_PAGE_ARG = "alerts_page"
# The team caseload below the alerts: ten clients a page by default keeps the overview to a few screens.
CASELOAD_PER_PAGE = 10
# The age filter: its value, what it says, and the opened-at window it stands for (since, before) in days ago.
AGE_FILTERS: dict[str, tuple[LazyString, int | None, int | None]] = {
    "new": (_l("Opened in the last 7 days"), 7, None),
    "7": (_l("Older than 7 days"), None, 7),
    "30": (_l("Older than 30 days"), None, 30),
}


class FilterError(ValueError):
    """A filter value the overview cannot use (the page answers 400 with the message)."""


@dataclass(frozen=True)
class AlertFilters:
    """The overview's alert filters, as read from the query string ('' means any)."""

    kind: str = ""
    clinician: int | None = None
    age: str = ""
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """True when any filter narrows the list."""
        return bool(self.kind or self.clinician is not None or self.age)


def read_filters(clinician_ids: set[int]) -> AlertFilters:
    """The kind, clinician and age filters from the query string; unknown values raise FilterError."""
    kind = request.args.get("kind", "").strip()
    if kind and kind not in ALERT_KINDS:
        raise FilterError(_("Unknown kind of alert. Choose risk, partnership or outcome, or any kind."))
    age = request.args.get("age", "").strip()
    if age and age not in AGE_FILTERS:
        raise FilterError(_("Unknown age filter. Choose one from the list, or any age."))
    raw = request.args.get("clinician", "").strip()
    clinician = None
    if raw:
        if not raw.isdigit() or int(raw) not in clinician_ids:
            raise FilterError(_("That clinician is not in your team. Choose one from the list."))
        clinician = int(raw)
    args = {name: value for name, value in (("kind", kind), ("clinician", clinician), ("age", age)) if value}
    return AlertFilters(kind=kind, clinician=clinician, age=age, args=args)


def alert_args() -> dict[str, str]:
    """The alert list's arguments to keep in the caseload pager's links (echoed as given; the list validates them)."""
    names = ("kind", "clinician", "age", ALERTS_PAGE_ARG)
    return {name: request.args[name] for name in names if request.args.get(name)}


def caseload_args() -> dict[str, int]:
    """The caseload's paging arguments to keep in the alert pager's links (when they are not the defaults)."""
    args = {}
    if page_number() > 1:
        args["page"] = page_number()
    if page_size(CASELOAD_PER_PAGE) != CASELOAD_PER_PAGE:
        args["per_page"] = page_size(CASELOAD_PER_PAGE)
    return args


@bp.get("/")
@allow(Role.SUPERVISOR)
def home() -> str | Response:
    """The team table, the team's open alerts (filtered, paged), then the team caseload with a status per client."""
    account = current_account()
    session = db_session()
    if wants_fragment(CASELOAD_TARGET):
        return render_template(
            "clinician/_caseload.html",
            caseload=caseload_page(session, account, page=page_number(), per_page=page_size(CASELOAD_PER_PAGE)),
            endpoint="supervisor.home",
            client_endpoint="supervisor.client",
            show_clinician=True,
            caseload_pager_args=alert_args(),
        )
    counts = open_alert_counts(session, account)
    members = team_overview(session, account, counts=counts)
    try:
        filters = read_filters({member.user_id for member in members})
    except FilterError as exc:
        return error_response(400, message=str(exc))
    _label, since_days, before_days = AGE_FILTERS.get(filters.age, ("", None, None))
    now = utcnow()
    alerts = list_alerts_page(
        session,
        account,
        active_only=True,
        kind=filters.kind or None,
        clinician_id=filters.clinician,
        opened_since=now - timedelta(days=since_days) if since_days is not None else None,
        opened_before=now - timedelta(days=before_days) if before_days is not None else None,
        page=max(request.args.get(ALERTS_PAGE_ARG, 1, type=int) or 1, 1),
        per_page=ALERTS_PER_PAGE,
    )
    context: dict[str, Any] = {
        "alerts": alerts,
        "filters": filters,
        "open_total": counts.total,
        "clinician_names": {member.user_id: member.name for member in members},
        "alert_pager_args": {**caseload_args(), **filters.args},
        "caseload_state": caseload_args(),
        "alerts_page_arg": ALERTS_PAGE_ARG,
    }
    if wants_fragment(ALERTS_TARGET):
        return render_template("supervisor/_alerts.html", **context)
    team_name = account.team.name if account.team is not None else None
    return render_template(
        "supervisor/home.html",
        members=members,
        feedback_use=_feedback_use(session, account, [member.user_id for member in members], now),
        share=share_text,
        caseload=caseload_page(session, account, page=page_number(), per_page=page_size(CASELOAD_PER_PAGE)),
        caseload_pager_args=alert_args(),
        team_name=team_name,
        kinds=ALERT_KINDS,
        age_filters=AGE_FILTERS,
        **context,
    )


def share_text(part: int, whole: int) -> str:
    """ "3 of 5 (60%)", or a dash when there is nothing to count."""
    if whole <= 0:
        return DASH
    return str(_("%(part)d of %(whole)d (%(percent)d%%)", part=part, whole=whole, percent=round(100 * part / whole)))


def _feedback_use(session: Any, account: Any, member_ids: list[int], now: Any) -> tuple[str, Fidelity]:
    """This month's "was the feedback used?" figures for the team (services.reporting.fidelity), by clinician."""
    settings = current_settings()
    period = period_containing(now, settings.tz)
    team_id = account.team_id
    scope = ReportScope("team", team_id) if team_id is not None else ReportScope("clinician", account.id)
    figures = fidelity(
        session,
        scope,
        month_of(period, settings.tz),
        risk_window_minutes=settings.risk_window_minutes,
        now=now,
        clinician_ids=member_ids,
    )
    return period, figures


@bp.get("/clients/<int:client_id>")
@allow(Role.SUPERVISOR)
def client(client_id: int) -> str:
    """A team client's record (404 outside the team; audited)."""
    return show_client_record(client_id, template="supervisor/client.html", what="supervisor_record")
