"""Front desk: import appointments from a CSV or iCalendar file, or a calendar URL, with a per-row report."""

from __future__ import annotations

from flask import render_template
from werkzeug.datastructures import FileStorage

from services.accounts.models import Role
from services.clients.imports import (
    ImportFileError,
    ImportReport,
    detect_format,
    fetch_calendar,
    import_appointments,
    parse_calendar,
)
from services.i18n import N_
from web.access import allow
from web.app import current_settings
from web.frontdesk.common import audit, current_policy
from web.frontdesk.forms import ImportForm
from web.frontdesk.views import bp
from web.i18n import translate
from web.request_db import commit, db_session, rollback


def run_import(*, data: bytes, filename: str, fmt: str, source: str | None) -> ImportReport:
    """Parse and apply an upload or download; the caller commits. Raises ImportFileError for a bad file."""
    settings = current_settings()
    text_format = fmt if fmt in ("csv", "ical") else detect_format(filename, data[:200].decode("utf-8", "replace"))
    rows = parse_calendar(data, fmt=text_format, tz=settings.tz)
    report = import_appointments(
        db_session(), rows, source=(source or "").strip() or text_format, policy=current_policy()
    )
    audit(
        "appointments_imported",
        client_id=None,
        subject_type="import",
        subject_id=None,
        source=report.source,
        imported=report.imported,
        updated=report.updated,
        skipped=report.skipped,
    )
    return report


def read_upload(upload: FileStorage, max_bytes: int) -> bytes:
    """The uploaded file's bytes, refusing more than max_bytes."""
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImportFileError(
            N_("The file is larger than %(size)d KB; split it into smaller files."), size=max_bytes // 1024
        )
    return data


def _calendar_data(form: ImportForm) -> tuple[bytes, str]:
    """The bytes to import and a name to guess the format from: the upload, or what the URL answers."""
    upload = form.file.data if isinstance(form.file.data, FileStorage) and form.file.data.filename else None
    url = (form.url.data or "").strip()
    policy = current_policy()
    if upload is not None and url:
        raise ImportFileError(N_("Choose a file or give an address, not both."))
    if upload is not None:
        return read_upload(upload, policy.import_max_bytes), upload.filename or ""
    if url:
        return fetch_calendar(url, policy=policy), url.split("?")[0]
    raise ImportFileError(N_("Choose a file to upload or give the address of a calendar."))


@bp.route("/import", methods=["GET", "POST"])
@allow(Role.FRONT_DESK)
def import_appointments_page() -> tuple[str, int]:
    """Upload a file or give a calendar address; shows what was imported, updated and skipped, and why."""
    form = ImportForm()
    report: ImportReport | None = None
    problem: str | None = None
    status = 200
    if form.validate_on_submit():
        try:
            data, filename = _calendar_data(form)
            report = run_import(data=data, filename=filename, fmt=form.fmt.data or "auto", source=form.source.data)
            commit()
        except ImportFileError as exc:
            rollback()
            problem, status = translate(exc), 400
    elif form.errors:
        status = 400
    return render_template("frontdesk/import.html", form=form, report=report, problem=problem), status
