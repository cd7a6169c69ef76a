"""Monthly report tasks: `reports.generate` renders one report row; `reports.monthly` requests the month just ended.

`generate_report` is the whole pipeline (claim, query, assemble, render, store the file atomically, mark done,
notify) and is also what `rapport report monthly` runs in-process. The task adds what a worker needs: time limits
from Settings, an address-space limit while it runs, and retries for transient errors only.

Memory: the task lowers RLIMIT_AS (the soft limit) to the process's current address space plus a budget, and puts
it back afterwards. We chose this over ``worker_max_memory_per_child``, which only looks at resident memory after
a task has finished and recycles the child: it cannot stop a runaway render, which would run on to the time limit
while the machine (and the PostgreSQL beside it) swaps or meets the OOM killer. With the limit, an allocation
beyond the budget fails inside the task: Python raises MemoryError, the report is marked failed, and the worker
child lives on. Should a C library abort instead, the child dies, the message is redelivered (acks_late), and the
row's attempt counter turns the third such death into a failed report rather than a loop.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from reports.assemble import render_monthly_report
from reports.pdf import RefusedResourceError
from services.config import Settings
from services.db import Database, utcnow
from services.ops.liveness import process_name
from services.ops.operations import claim_period, finish_period
from services.reporting.models import Report
from services.reporting.operations import (
    claim_report,
    complete_report,
    fail_report,
    give_up_report,
    holds_claim,
    notify_report_ready,
    release_report,
    report_file_path,
    request_scheduled_reports,
    set_progress,
    stale_running_after,
    store_file_atomically,
)
from services.reporting.periods import PeriodError, ReportScope, month_just_ended
from services.reporting.queries import ScopeNotFoundError
from workers import runtime
from workers.enqueue import enqueue_after_commit, send_notification_after_commit
from workers.tasks.base import IDEMPOTENT

log = logging.getLogger(__name__)

# Address space a report may add to the worker process while it renders: the practice report of the large demo
# (200 clinicians, 1,400 clients listed) adds about 600 MB of address space at a peak RSS near 450 MB.
REPORT_MEMORY_BUDGET = 1536 * 1024 * 1024
MONTHLY_JOB = "reports.monthly"


class Outcome(StrEnum):
    """What one run of the pipeline did."""

    DONE = "done"
    SKIPPED = "skipped"  # not ours to run: done, failed, or claimed by someone else
    FAILED = "failed"
    RETRY = "retry"


class TransientReportError(RuntimeError):
    """The database or the disk failed in a way worth retrying; the row is back to pending."""


def _address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


@contextmanager
def address_space_limit(budget: int | None) -> Iterator[None]:
    """Lower RLIMIT_AS to the current address space plus budget for the duration (no-op when budget is None)."""
    if budget is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = _address_space() + budget
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY:
        wanted = min(wanted, soft)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _scope_and_period(database: Database, report_id: int) -> tuple[ReportScope, str]:
    with database.unit_of_work() as session:
        row = session.get(Report, report_id)
        if row is None:
            raise LookupError(f"report {report_id} is gone")
        return ReportScope.parse(row.scope), row.period


def _progress(database: Database, report_id: int, value: int, claimed_by: str | None = None) -> None:
    with database.unit_of_work() as session:
        set_progress(session, report_id, value, claimed_by=claimed_by)


def _fail(database: Database, report_id: int, error: str, claimed_by: str | None = None) -> None:
    with database.unit_of_work() as session:
        fail_report(session, report_id, error=error, claimed_by=claimed_by)


def _claim(session: Session, settings: Settings, report_id: int, claimed_by: str) -> bool:
    """Claim the report; a running claim of a process on this host that no longer exists is taken at once."""
    return claim_report(
        session, report_id, claimed_by=claimed_by, stale_after=stale_running_after(settings.report_time_limit)
    )


def generate_report(
    database: Database,
    settings: Settings,
    report_id: int,
    *,
    notify: bool = True,
    memory_budget: int | None = None,
    now: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
    claimed_by: str | None = None,
) -> Outcome:
    """Claim, render and store one report; a report that is not pending (or whose claim is taken) is skipped.

    The claim records claimed_by (this process's heartbeat name by default); progress, the file and the outcome
    are written only while that claim holds, so a process taken for dead that wakes up changes nothing.
    """
    me = claimed_by or process_name()
    with database.unit_of_work() as session:
        if not _claim(session, settings, report_id, me):
            give_up_report(session, report_id)
            return Outcome.SKIPPED

    def progress(value: int) -> None:
        _progress(database, report_id, value, me)
        if on_progress is not None:
            on_progress(value)

    try:
        scope, period = _scope_and_period(database, report_id)
        progress(15)
        with address_space_limit(memory_budget), database.read_only_session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One snapshot for every query, so figures that relate across queries come from the same moment.
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            rendered = render_monthly_report(session, settings, scope, period, now=now)
            session.rollback()
        progress(90)
        with database.unit_of_work() as session:
            if not holds_claim(session, report_id, me):
                log.warning("report %s was claimed again while %s rendered it; leaving it", report_id, me)
                return Outcome.SKIPPED
        stored = store_file_atomically(report_file_path(settings, scope, period), rendered.pdf)
        with database.unit_of_work() as session:
            row = complete_report(session, report_id, stored, now=now, claimed_by=me)
            if row is None:
                log.warning("report %s was claimed again while %s stored it; leaving it", report_id, me)
                return Outcome.SKIPPED
            if notify:
                for notification in notify_report_ready(session, row, base_url=settings.base_url):
                    send_notification_after_commit(session, notification.id)
        if on_progress is not None:
            on_progress(100)
        log.info("report %s (%s %s) done: %s bytes", report_id, scope, period, stored.size)
        return Outcome.DONE
    except RefusedResourceError as exc:
        # Permanent: the same HTML would be refused again. The refused URLs are ours to log, not to show.
        log.error("report %s refused a resource: %s", report_id, exc)
        _fail(database, report_id, "the report asked for a resource outside its bundled assets; not rendered", me)
        return Outcome.FAILED
    except (ScopeNotFoundError, PeriodError, LookupError) as exc:
        _fail(database, report_id, str(exc), me)
        return Outcome.FAILED
    except SoftTimeLimitExceeded:
        _fail(database, report_id, f"took longer than {settings.report_soft_time_limit} s", me)
        return Outcome.FAILED
    except MemoryError:
        _fail(database, report_id, "needed more memory than a report may use", me)
        return Outcome.FAILED
    except (OperationalError, DBAPIError, OSError) as exc:
        log.warning("report %s hit a transient error: %s", report_id, exc)
        with database.unit_of_work() as session:
            release_report(session, report_id, error=f"retrying after: {type(exc).__name__}", claimed_by=me)
        return Outcome.RETRY
    except ValueError as exc:
        # Inconsistent figures (check_report_data) or a bad setting: a repeat would fail the same way.
        log.error("report %s could not be assembled: %s", report_id, exc)
        _fail(database, report_id, f"could not be assembled: {exc}", me)
        return Outcome.FAILED


class ReportTask(Task):  # type: ignore[misc]  # Celery ships no type information
    """Reads the report time limits from Settings when the worker asks for them."""

    @property
    def soft_time_limit(self) -> int:
        return runtime.settings().report_soft_time_limit

    @property
    def time_limit(self) -> int:
        return runtime.settings().report_time_limit


@shared_task(name="reports.generate", base=ReportTask, bind=True, max_retries=4, **IDEMPOTENT)
def generate(self: Any, report_id: int) -> str:
    """Render and store one monthly report by id; a repeat or a redelivery does nothing."""
    outcome = generate_report(runtime.database(), runtime.settings(), report_id, memory_budget=REPORT_MEMORY_BUDGET)
    if outcome is Outcome.RETRY:
        if self.request.retries >= self.max_retries:
            _fail(runtime.database(), report_id, "gave up after repeated transient errors")
            return Outcome.FAILED.value
        raise self.retry(countdown=min(600, 30 * 2**self.request.retries))
    return outcome.value


def request_month(
    database: Database, settings: Settings, period: str | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """Request the month's reports (practice and each team) once per period; enqueue them after the commit."""
    period = period or month_just_ended(now or utcnow(), settings.tz)
    with database.unit_of_work() as session:
        run = claim_period(session, job=MONTHLY_JOB, period_key=period)
        if run is None:
            return {"period": period, "requested": 0, "already_ran": True}
        queued = request_scheduled_reports(session, period=period)
        finish_period(session, run, {"reports": queued})
        for report_id in queued:
            enqueue_after_commit(session, "reports.generate", report_id)
    return {"period": period, "requested": len(queued), "already_ran": False}


@shared_task(name="reports.monthly", soft_time_limit=60, time_limit=90, **IDEMPOTENT)
def monthly(period: str | None = None) -> dict[str, Any]:
    """Request the reports of the month just ended (practice and each team); a second run for a period is a no-op."""
    return request_month(runtime.database(), runtime.settings(), period)
