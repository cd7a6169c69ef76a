"""Clinician: open alerts and the caseload with a status per client, the client's record, notification settings.

The alert pages and actions (`web.clinician.alerts`) and the chart and the clinician's own Partnership Check
(`web.clinician.chart`) register on this blueprint too. Supervisors use those pages for their team: every read
goes through the scoped queries, so what a page shows is what the viewer's role may see, and anything else is 404.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.alerts.digest import DIGEST_TIMES
from services.alerts.queries import caseload_page, list_open_alerts_for, open_alert_counts
from services.audit.operations import record_event
from services.briefs.queries import list_today
from web.access import allow
from web.client_pages import show_client_record
from web.clinician.presenting import clinical_context
from web.frontdesk.common import day_bounds, local_today
from web.htmx import wants_fragment
from web.i18n import local_time
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session

bp = Blueprint("clinician", __name__, url_prefix="/clinician")
bp.context_processor(clinical_context)

CLINICAL = (Role.CLINICIAN, Role.SUPERVISOR)
# Open alerts shown on the home page before "see all"; the caseload is paged.
HOME_ALERTS = 20
CASELOAD_PER_PAGE = 25
CASELOAD_TARGET = "caseload"
NOTIFY_MODES = ("immediate", "digest")


def page_number() -> int:
    """The ?page= argument, at least 1 (anything unreadable is page 1)."""
    return max(request.args.get("page", 1, type=int) or 1, 1)


def page_size(default: int = CASELOAD_PER_PAGE) -> int:
    """The ?per_page= argument, 10 to 100 (the default otherwise)."""
    wanted = request.args.get("per_page", default, type=int) or default
    return min(max(wanted, 10), 100)


@bp.get("/")
@allow(Role.CLINICIAN)
def home() -> str:
    """Today's sessions with their briefs, then open alerts (risk, partnership, outcome), then my caseload."""
    account = current_account()
    session = db_session()
    caseload = caseload_page(session, account, page=page_number(), per_page=page_size())
    if wants_fragment(CASELOAD_TARGET):
        return render_template(
            "clinician/_caseload.html",
            caseload=caseload,
            endpoint="clinician.home",
            client_endpoint="clinician.client",
            show_clinician=False,
        )
    alerts = list_open_alerts_for(session, account, limit=HOME_ALERTS + 1)
    today = local_today()
    start, end = day_bounds(today)
    return render_template(
        "clinician/home.html",
        today=today,
        sessions_today=list_today(session, account, start=start, end=end),
        alerts=alerts[:HOME_ALERTS],
        more_alerts=len(alerts) > HOME_ALERTS,
        open_total=open_alert_counts(session, account).total,
        caseload=caseload,
    )


@bp.get("/clients/<int:client_id>")
@allow(Role.CLINICIAN)
def client(client_id: int) -> str:
    """One of my clients' records (404 for anyone else's; audited)."""
    return show_client_record(client_id, template="clinician/client.html", what="clinician_record")


@bp.route("/settings", methods=["GET", "POST"])
@allow(*CLINICAL)
def settings() -> str | Response | tuple[str, int]:
    """How I hear about alliance and outcome alerts: at once, or in a twice-daily digest (risk is always at once)."""
    account = current_account()
    error = None
    if request.method == "POST":
        mode = request.form.get("notify_mode", "")
        if mode not in NOTIFY_MODES:
            error = _("Choose one of the two options.")
        else:
            session = db_session()
            if mode != account.notify_mode:
                previous = account.notify_mode
                account.notify_mode = mode
                record_event(
                    session,
                    action="notify_mode_changed",
                    actor_id=account.id,
                    subject_type="user",
                    subject_id=account.id,
                    ip=client_ip(),
                    detail={"from": previous, "to": mode},
                )
                commit()
            flash(_("Saved: your notification choice."), "success")
            return redirect(url_for("clinician.settings"), code=303)
    digest_times = [local_time(at) for at in DIGEST_TIMES]
    html = render_template(
        "clinician/settings.html",
        account=account,
        error=error,
        digest_times=digest_times,
        home=url_for("supervisor.home" if account.role == Role.SUPERVISOR else "clinician.home"),
    )
    return (html, 400) if error else html


from web.clinician import alerts as _alerts  # noqa: E402,F401  (registers the alert pages and actions)
from web.clinician import chart as _chart  # noqa: E402,F401  (registers the chart and the rating form)
from web.clinician import room as _room  # noqa: E402,F401  (registers the brief and the view shared with the client)
