"""Report rows and files: request, claim, progress, store (atomic file replacement), fail, notify.

One row per (scope, period). A request resets the row to pending (the worker is enqueued after the caller's
commit); a worker claims it with a conditional UPDATE so a redelivered or doubled task does nothing; the PDF is
written to a temporary file in the reports folder and moved over the old one with os.replace, so a reader sees
the old file or the new one, never half of either.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Update, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.accounts.models import Role, Team, User
from services.config import Settings
from services.db import utcnow
from services.i18n import N_, UserError
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from services.ops.liveness import claim_takeable, take_claim
from services.reporting.models import Report
from services.reporting.periods import ReportScope, parse_period

# Celery kills a report task at its hard time limit, so a running report untouched for longer than that limit plus
# this margin belongs to a worker that died; sooner than that, when its claiming process's heartbeat went quiet.
CLAIM_MARGIN = timedelta(minutes=2)
MAX_ATTEMPTS = 3
ERROR_CHARS = 500


def stale_running_after(report_time_limit: int) -> timedelta:
    """How long a running report may go untouched before it is claimed again: the hard time limit plus a margin."""
    return timedelta(seconds=report_time_limit) + CLAIM_MARGIN


# The default, for the default report_time_limit of 900 s (callers with Settings pass their own).
STALE_RUNNING = stale_running_after(900)


def stale_running(
    now: datetime, stale_after: timedelta = STALE_RUNNING, *, dead_claimer: str | None = None, taker: str | None = None
) -> ColumnElement[bool]:
    """Running, and its claim may be taken again (services.ops.liveness.claim_takeable; progress touches it)."""
    return (Report.status == "running") & claim_takeable(
        Report.claimed_by, Report.updated_at, now=now, stale_after=stale_after, dead_claimer=dead_claimer, taker=taker
    )


class ReportRequestError(UserError):
    """A report cannot be requested as asked (bad period or scope, or a period in the future)."""


def report_link(base_url: str, report_id: int) -> str:
    """The page a notification links to: the report's status and download page, nothing else."""
    return f"{base_url.rstrip('/')}/manager/reports/{report_id}"


def request_report(
    session: Session,
    *,
    scope: ReportScope,
    period: str,
    requested_by_id: int | None = None,
    now: datetime | None = None,
    tz_period_now: str | None = None,
    stale_after: timedelta = STALE_RUNNING,
) -> tuple[Report, bool]:
    """Ask for a report of scope and period; returns the row and whether work was queued (False: already queued).

    A report already pending or running is left alone (one generation at a time per row); a done or failed one
    goes back to pending, and its file is replaced when the new one is ready; so does a running one whose worker
    died (stale_running). tz_period_now, when given, is the current period in the practice's zone: later periods
    are refused.
    """
    parse_period(period)
    if tz_period_now is not None and period > tz_period_now:
        raise ReportRequestError(N_("%(period)s has not started yet"), period=period)
    now = now or utcnow()
    row = session.scalar(select(Report).where(Report.scope == str(scope), Report.period == period))
    if row is None:
        row = Report(scope=str(scope), period=period, status="pending", progress=0, requested_by_id=requested_by_id)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # Requested at the same moment by someone else: theirs is the row.
            row = session.scalar(select(Report).where(Report.scope == str(scope), Report.period == period))
            if row is None:
                raise
            return row, False
        return row, True
    if row.status == "pending" or (row.status == "running" and not _is_stale(session, row.id, now, stale_after)):
        return row, False
    row.status = "pending"
    row.claimed_by = None
    row.progress = 0
    row.error = None
    row.attempts = 0
    row.requested_by_id = requested_by_id
    row.updated_at = now
    session.flush()
    return row, True


def _is_stale(session: Session, report_id: int, now: datetime, stale_after: timedelta) -> bool:
    return session.scalar(select(Report.id).where(Report.id == report_id, stale_running(now, stale_after))) is not None


def claim_report(
    session: Session,
    report_id: int,
    *,
    claimed_by: str | None = None,
    now: datetime | None = None,
    stale_after: timedelta = STALE_RUNNING,
) -> bool:
    """Move a pending (or stale running) report to running for claimed_by; False when someone else has it or done.

    A running claim of a process on this host that no longer exists is taken at once (services.ops.liveness).
    """
    now = now or utcnow()

    def claim(dead_claimer: str | None) -> Update:
        takeable = or_(
            Report.status == "pending", stale_running(now, stale_after, dead_claimer=dead_claimer, taker=claimed_by)
        )
        return (
            update(Report)
            .where(Report.id == report_id, Report.attempts < MAX_ATTEMPTS, takeable)
            .values(
                status="running",
                progress=5,
                attempts=Report.attempts + 1,
                error=None,
                claimed_by=claimed_by,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    holder = select(Report.claimed_by).where(Report.id == report_id, Report.status == "running")
    return take_claim(session, claim, holder)


def give_up_report(session: Session, report_id: int, *, now: datetime | None = None) -> bool:
    """Mark failed a report whose attempts are used up (a worker died on it repeatedly)."""
    result = session.execute(
        update(Report)
        .where(
            Report.id == report_id,
            Report.status.in_(("pending", "running")),
            Report.attempts >= MAX_ATTEMPTS,
        )
        .values(status="failed", error="gave up after repeated attempts", updated_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _claim_held(report_id: int, claimed_by: str | None) -> ColumnElement[bool]:
    held = (Report.id == report_id) & (Report.status == "running")
    return held if claimed_by is None else held & (Report.claimed_by == claimed_by)


def set_progress(session: Session, report_id: int, progress: int, *, claimed_by: str | None = None) -> None:
    """Record how far a running report has got (0-100), if claimed_by still holds it (None: whoever does)."""
    session.execute(
        update(Report)
        .where(_claim_held(report_id, claimed_by))
        .values(progress=max(0, min(100, progress)), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def report_file_path(settings: Settings, scope: ReportScope, period: str) -> Path:
    """Where the PDF of a scope and period lives (one file per row, replaced on regeneration)."""
    parse_period(period)
    return settings.reports_dir / f"monthly-{scope.slug}-{period}.pdf"


@dataclass(frozen=True)
class StoredFile:
    """A file written atomically, with its size and SHA-256."""

    path: Path
    size: int
    sha256: str


def store_file_atomically(path: Path, content: bytes) -> StoredFile:
    """Write content to a temporary file beside path, flush it to disk, then os.replace it over path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o640)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return StoredFile(path=path, size=len(content), sha256=hashlib.sha256(content).hexdigest())


def holds_claim(session: Session, report_id: int, claimed_by: str) -> bool:
    """Whether claimed_by still holds the running report (False once a re-drive took it from a process deemed dead)."""
    return session.scalar(select(Report.id).where(_claim_held(report_id, claimed_by))) is not None


def complete_report(
    session: Session,
    report_id: int,
    stored: StoredFile,
    *,
    now: datetime | None = None,
    claimed_by: str | None = None,
) -> Report | None:
    """Record the stored file on the row and mark it done; None when claimed_by no longer holds the claim."""
    row = session.get(Report, report_id, populate_existing=True, with_for_update=claimed_by is not None)
    if row is None:
        raise LookupError(f"report {report_id} is gone")
    if claimed_by is not None and (row.status != "running" or row.claimed_by != claimed_by):
        return None
    now = now or utcnow()
    row.status = "done"
    row.progress = 100
    row.file_path = str(stored.path)
    row.size_bytes = stored.size
    row.sha256 = stored.sha256
    row.error = None
    row.generated_at = now
    row.updated_at = now
    session.flush()
    return row


def fail_report(
    session: Session, report_id: int, *, error: str, now: datetime | None = None, claimed_by: str | None = None
) -> None:
    """Mark a report failed with a short reason (no client data); with claimed_by, only while it holds the claim."""
    session.execute(
        update(Report)
        .where(Report.id == report_id if claimed_by is None else _claim_held(report_id, claimed_by))
        .values(status="failed", error=error[:ERROR_CHARS], updated_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def release_report(session: Session, report_id: int, *, error: str, claimed_by: str | None = None) -> None:
    """Put a running report back to pending after a transient error, so a retry can claim it."""
    session.execute(
        update(Report)
        .where(_claim_held(report_id, claimed_by))
        .values(status="pending", error=error[:ERROR_CHARS], claimed_by=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def notify_report_ready(session: Session, report: Report, *, base_url: str) -> list[Notification]:
    """Queue a "report ready" email (a link, nothing else) to whoever asked for it, or to every active manager.

    A scheduled report (no requester) of the whole practice goes to all managers; scheduled team and clinician
    reports are listed on the managers' page without an email each. One message per version of the file.
    """
    if report.status != "done" or report.sha256 is None:
        return []
    if report.requested_by_id is not None:
        recipients = list(session.scalars(select(User).where(User.id == report.requested_by_id, User.active.is_(True))))
    elif report.scope == "practice":
        recipients = list(
            session.scalars(
                select(User).where(User.role == Role.MANAGER.value, User.active.is_(True)).order_by(User.id)
            )
        )
    else:
        recipients = []
    queued = []
    for user in recipients:
        if not user.email:
            continue
        queued.append(
            queue_notification(
                session,
                channel="email",
                template="report_ready",
                to_address=user.email,
                recipient_user_id=user.id,
                context={"link": report_link(base_url, report.id), "language": user.language},
                dedupe_key=f"report:{report.id}:{report.sha256[:16]}:user:{user.id}",
            )
        )
    return queued


def request_scheduled_reports(session: Session, *, period: str) -> list[int]:
    """Request the month's reports for the practice and each team (the beat job); returns the rows queued."""
    scopes = [ReportScope("practice")]
    scopes += [ReportScope("team", team_id) for team_id in session.scalars(select(Team.id).order_by(Team.id))]
    queued = []
    for scope in scopes:
        row, fresh = request_report(session, scope=scope, period=period)
        if fresh:
            queued.append(row.id)
    return queued
