"""Admin: the audit trail, searched by person, client, action and time, and exported as CSV.

Looking at the trail is itself audited (with the filter), and so is every export (with the filter and the number
of rows). Clients appear by their pseudonymous code only: an administrator never sees a client's name here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import Response, render_template, request, stream_with_context
from flask_babel import gettext as _

from services.accounts.models import Role
from services.audit.operations import record_event
from services.audit.queries import (
    AuditFilter,
    client_id_for_code,
    count_events,
    last_event_id,
    list_actions,
    search_events,
    stream_events,
)
from services.csvsafe import csv_chunks
from web.access import allow
from web.admin.queries import list_users
from web.admin.views import bp
from web.app import current_settings
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session

MAX_ID = 2**63 - 1
FIRST_YEAR, LAST_YEAR = 2000, 2100
EXPORT_COLUMNS = (
    "id",
    "seq",
    "at_utc",
    "actor_id",
    "actor_email",
    "actor_label",
    "action",
    "subject_type",
    "subject_id",
    "client_code",
    "ip",
    "detail",
)


@dataclass
class TrailQuery:
    """The page's filter as typed (to refill the form), what it means, and what could not be read."""

    criteria: AuditFilter
    form: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    unknown_client: bool = False

    def detail(self) -> dict[str, object]:
        """The filter as an audit event's detail (the client code as typed, when one was)."""
        code = {"client_code": self.form["client"][:16]} if self.form["client"] else {}
        return {**self.criteria.as_detail(), **code}


def _id_arg(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise ValueError(name)
    return int(raw)


def _day_arg(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    day = date.fromisoformat(raw)  # ValueError for anything else
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(name)
    return day


def _local_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=current_settings().tz).astimezone(UTC)


def read_query() -> TrailQuery:
    """The filter from the query string; a value that cannot be read is named in errors and ignored."""
    form = {key: request.args.get(key, "").strip()[:100] for key in ("person", "client", "action", "since", "until")}
    errors: dict[str, str] = {}
    actor_id = client_id = None
    since = until = None
    try:
        actor_id = _id_arg("person")
    except ValueError:
        errors["person"] = _("Choose a person from the list.")
    try:
        first = _day_arg("since")
        since = _local_midnight_utc(first) if first else None
    except ValueError:
        errors["since"] = _("Enter a date between %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR)
    try:
        last = _day_arg("until")
        until = _local_midnight_utc(last + timedelta(days=1)) if last else None
    except ValueError:
        errors["until"] = _("Enter a date between %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR)
    if since is not None and until is not None and until <= since:
        errors["until"] = _("The last day must not be before the first.")
        until = None
    unknown_client = False
    if form["client"]:
        client_id = client_id_for_code(db_session(), form["client"][:16])
        unknown_client = client_id is None
    criteria = AuditFilter(
        actor_id=actor_id, client_id=client_id, action=form["action"][:60] or None, since=since, until=until
    )
    return TrailQuery(criteria=criteria, form=form, errors=errors, unknown_client=unknown_client)


@bp.get("/audit")
@allow(Role.ADMIN)
def audit_trail() -> tuple[str, int]:
    """Search the audit trail, newest first, a page at a time (keyset: ?older=ID or ?newer=ID)."""
    session = db_session()
    query = read_query()
    try:
        older, newer = _id_arg("older"), _id_arg("newer")
    except ValueError:
        older = newer = None
    page = None
    if not query.unknown_client:
        page = search_events(session, query.criteria, older_than=older, newer_than=newer)
    record_event(
        session,
        action="audit_trail_viewed",
        actor_id=current_account().id,
        ip=client_ip(),
        detail=query.detail(),
    )
    html = render_template(
        "admin/audit.html",
        query=query,
        page=page,
        people=list_users(session),
        actions=list_actions(session),
        filter_args={key: value for key, value in query.form.items() if value and key not in query.errors},
    )
    commit()
    return html, 400 if query.errors else 200


def _csv_rows(upto_id: int, query: TrailQuery) -> Iterator[list[object]]:
    for row in stream_events(db_session(), query.criteria, upto_id=upto_id):
        yield [
            row.id,
            row.seq,
            row.at.astimezone(UTC).isoformat(timespec="seconds"),
            row.actor_id,
            row.actor_email,
            row.actor_label,
            row.action,
            row.subject_type,
            row.subject_id,
            row.client_code,
            row.ip,
            json.dumps(row.detail, ensure_ascii=False, sort_keys=True),
        ]


@bp.get("/audit/export.csv")
@allow(Role.ADMIN)
def audit_export() -> Response | tuple[str, int]:
    """The filtered trail as CSV, oldest first, streamed; the export is audited with its filter and row count."""
    session = db_session()
    query = read_query()
    if query.errors:
        return audit_trail()
    upto_id = last_event_id(session)
    rows = 0 if query.unknown_client else count_events(session, query.criteria, upto_id=upto_id)
    record_event(
        session,
        action="audit_trail_exported",
        actor_id=current_account().id,
        ip=client_ip(),
        detail={**query.detail(), "rows": rows, "upto_id": upto_id},
    )
    commit()
    body: Iterator[str]
    if query.unknown_client:
        body = csv_chunks(EXPORT_COLUMNS, [])
    else:
        body = stream_with_context(csv_chunks(EXPORT_COLUMNS, _csv_rows(upto_id, query)))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="rapport-audit-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Rapport-Rows": str(rows),
        },
    )
