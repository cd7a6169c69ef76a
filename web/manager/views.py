"""Manager: practice-wide counts and the monthly reports (no individual client records on these pages).

Reports: ask for any month and scope (practice, team, clinician), follow its progress (htmx polls the status
fragment; without JavaScript the page refreshes itself while work is under way), download it (audited), or
generate it again (the file is replaced atomically when the new one is ready).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.audit.operations import record_event
from services.clients.queries import practice_summary
from services.db import utcnow
from services.reporting.models import Report
from services.reporting.operations import ReportRequestError, request_report, stale_running_after
from services.reporting.periods import PeriodError, ReportScope, period_containing
from services.reporting.queries import (
    ScopeNotFoundError,
    get_report,
    list_reports,
    scope_choices,
    scope_label,
    scope_labels,
)
from web.access import allow
from web.app import current_settings
from web.htmx import wants_fragment
from web.i18n import translate
from web.limiter import client_ip
from web.login import current_account
from web.manager.forms import ReportRequestForm
from web.manager.queries import period_choices
from web.request_db import commit, db_session
from workers.enqueue import enqueue_after_commit

bp = Blueprint("manager", __name__, url_prefix="/manager")

REPORT_ROLES = (Role.MANAGER, Role.ADMIN)
ACTIVE = ("pending", "running")


def _request_form() -> ReportRequestForm:
    session = db_session()
    settings = current_settings()
    form = ReportRequestForm()
    periods = period_choices(utcnow(), settings.timezone)
    current = periods[0]
    form.period.choices = [
        (p, f"{p} ({_('so far')})" if p == current else p)  # the current month is not over yet
        for p in periods
    ]
    form.scope.choices = [(c.scope, c.label) for c in scope_choices(session)]
    if form.period.data is None:
        form.period.data = periods[1]
    return form


def _reports_context() -> dict[str, object]:
    session = db_session()
    reports = list_reports(session)
    return {
        "reports": reports,
        "labels": scope_labels(session, [r.scope for r in reports]),
        "polling": any(r.status in ACTIVE for r in reports),
    }


@bp.get("/")
@allow(Role.MANAGER)
def home() -> str:
    """The manager's home: practice summary, the list of reports and the form to ask for one."""
    if wants_fragment("reports"):
        return render_template("manager/_reports.html", list_url=url_for("manager.home"), **_reports_context())
    return render_template(
        "manager/home.html",
        summary=practice_summary(db_session()),
        form=_request_form(),
        list_url=url_for("manager.home"),
        **_reports_context(),
    )


@bp.get("/reports")
@allow(*REPORT_ROLES)
def reports() -> str:
    """The monthly reports on their own (for admins too): list, progress, and the form to ask for one."""
    if wants_fragment("reports"):
        return render_template("manager/_reports.html", list_url=url_for("manager.reports"), **_reports_context())
    return render_template(
        "manager/reports.html", form=_request_form(), list_url=url_for("manager.reports"), **_reports_context()
    )


def _list_page(form: ReportRequestForm) -> tuple[str, int]:
    """The page the request form was on, again, with its errors (400)."""
    if current_account().role == Role.MANAGER.value:
        page = render_template(
            "manager/home.html",
            summary=practice_summary(db_session()),
            form=form,
            list_url=url_for("manager.home"),
            **_reports_context(),
        )
    else:
        page = render_template(
            "manager/reports.html", form=form, list_url=url_for("manager.reports"), **_reports_context()
        )
    return page, 400


def _queue(report: Report, *, fresh: bool, action: str) -> None:
    session = db_session()
    record_event(
        session,
        action=action,
        actor_id=current_account().id,
        subject_type="report",
        subject_id=report.id,
        ip=client_ip(),
        detail={"scope": report.scope, "period": report.period, "queued": fresh},
    )
    if fresh:
        enqueue_after_commit(session, "reports.generate", report.id)
    commit()
    if fresh:
        flash(_("The report is being generated. This page shows its progress."), "success")
    else:
        flash(_("This report is already being generated."), "info")


@bp.post("/reports")
@allow(*REPORT_ROLES)
def request_new() -> Response | tuple[str, int]:
    """Ask for a report of a month and scope; the worker generates it after this commits."""
    session = db_session()
    form = _request_form()
    if not form.validate_on_submit():
        return _list_page(form)
    settings = current_settings()
    try:
        scope = ReportScope.parse(form.scope.data or "")
        scope_label(session, scope)
        report, fresh = request_report(
            session,
            scope=scope,
            period=form.period.data or "",
            requested_by_id=current_account().id,
            tz_period_now=period_containing(utcnow(), settings.tz),
            stale_after=stale_running_after(settings.report_time_limit),
        )
    except (PeriodError, ReportRequestError, ScopeNotFoundError) as exc:
        form.period.errors = [translate(exc)]
        return _list_page(form)
    _queue(report, fresh=fresh, action="report_requested")
    return redirect(url_for("manager.report", report_id=report.id))


def _report_or_404(report_id: int) -> Report:
    report = get_report(db_session(), report_id)
    if report is None:
        abort(404)
    return report


@bp.get("/reports/<int:report_id>")
@allow(*REPORT_ROLES)
def report(report_id: int) -> str:
    """One report's status and progress, with its download link once it is ready."""
    row = _report_or_404(report_id)
    label = scope_labels(db_session(), [row.scope])[row.scope]
    context = {"report": row, "label": label, "polling": row.status in ACTIVE}
    if wants_fragment("report-status"):
        return render_template("manager/_report_status.html", **context)
    return render_template("manager/report.html", **context)


@bp.post("/reports/<int:report_id>/regenerate")
@allow(*REPORT_ROLES)
def regenerate(report_id: int) -> Response:
    """Generate a report again; the stored file stays available until the new one replaces it."""
    row = _report_or_404(report_id)
    session = db_session()
    try:
        report_row, fresh = request_report(
            session,
            scope=ReportScope.parse(row.scope),
            period=row.period,
            requested_by_id=current_account().id,
            stale_after=stale_running_after(current_settings().report_time_limit),
        )
    except (PeriodError, ReportRequestError) as exc:
        flash(translate(exc), "error")
        return redirect(url_for("manager.report", report_id=report_id))
    _queue(report_row, fresh=fresh, action="report_regeneration_requested")
    return redirect(url_for("manager.report", report_id=report_id))


@bp.get("/reports/<int:report_id>/download")
@allow(*REPORT_ROLES)
def download(report_id: int) -> Response:
    """The report's PDF; the download is written to the audit trail before a byte is sent."""
    row = _report_or_404(report_id)
    if row.file_path is None or row.sha256 is None:
        abort(404)
    reports_dir = current_settings().reports_dir.resolve()
    path = Path(row.file_path).resolve()
    if not path.is_relative_to(reports_dir) or not path.is_file():
        abort(404)
    session = db_session()
    record_event(
        session,
        action="report_downloaded",
        actor_id=current_account().id,
        subject_type="report",
        subject_id=row.id,
        ip=client_ip(),
        detail={"scope": row.scope, "period": row.period, "sha256": row.sha256},
    )
    commit()
    scope = ReportScope.parse(row.scope)
    response = send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"rapport-monthly-{scope.slug}-{row.period}.pdf",
        conditional=False,
        etag=False,
        max_age=0,
    )
    return response
