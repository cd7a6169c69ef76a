"""Operational tasks: reconcile (the re-drive), heartbeats, housekeeping; and the broker's queue depth."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from celery import shared_task
from sqlalchemy import delete

from services.accounts.models import LoginSession
from services.config import Settings
from services.db import Database, utcnow
from services.i18n import N_, Message
from services.notifications.operations import stale_claim_after
from services.ops.operations import beat, claim_period, finish_period, prune_bookkeeping, relax_commit
from services.ops.reconcile import PendingWork, find_pending
from services.reporting.operations import stale_running_after
from workers import runtime
from workers.tasks.base import IDEMPOTENT

log = logging.getLogger(__name__)

RECONCILE_JOB = "ops.reconcile"
QUEUE = "celery"
# Job runs and heartbeats are kept this long for the operations page.
KEEP_BOOKKEEPING = timedelta(days=30)

Publish = Callable[[str, Sequence[int]], None]


def publish_with_celery(task_name: str, args: Sequence[int]) -> None:
    """Publish one task by name (the default: the process's Celery app)."""
    from workers.app import celery_app

    celery_app.send_task(task_name, args=list(args))


def _redrive(work: PendingWork, publish: Publish) -> int:
    """Publish the re-driven work; returns how many could not be published (the broker is down: next pass)."""
    messages: list[tuple[str, Sequence[int]]] = [
        *(("notifications.send", (i,)) for i in work.notifications),
        *(("alerts.evaluate", (i,)) for i in work.administrations),
        *(("reports.generate", (i,)) for i in work.reports),
    ]
    if work.invitations_due:
        messages.append(("surveys.dispatch", ()))
    for sent, (name, args) in enumerate(messages):
        try:
            publish(name, args)
        except Exception:
            # One failure means the broker is unreachable: stop here rather than wait out a timeout per message.
            log.warning(
                "reconcile could not publish %s%r; the next pass re-drives it", name, tuple(args), exc_info=True
            )
            return len(messages) - sent
    return 0


def run_reconcile(
    *,
    period: str | None = None,
    database: Database | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    publish: Publish = publish_with_celery,
) -> dict[str, int]:
    """One reconcile pass (`rapport reconcile`; beat's runs pass their period, so a second one for it is a no-op)."""
    settings = settings or runtime.settings()
    database = database or runtime.database()
    with database.unit_of_work() as session:
        run = None
        if period is not None:
            # The period's row and any give-ups are safe to lose in a crash (the next pass redoes them).
            relax_commit(session)
            run = claim_period(session, job=RECONCILE_JOB, period_key=period)
            if run is None:
                return {"already_ran": 1}
        work = find_pending(
            session,
            grace=timedelta(seconds=settings.reconcile_grace_seconds),
            max_attempts=settings.max_attempts,
            now=now,
            stale_claim=stale_claim_after(settings.task_time_limit),
            stale_report=stale_running_after(settings.report_time_limit),
        )
        result = {
            "notifications": len(work.notifications),
            "administrations": len(work.administrations),
            "reports": len(work.reports),
            "invitations": int(work.invitations_due),
            **{f"failed_{k}": v for k, v in work.failed.items()},
        }
        if run is not None:
            finish_period(session, run, result)
    # After the commit: the rows that say what is pending are what matters, the messages only carry them.
    unpublished = _redrive(work, publish) if work.total else 0
    if unpublished:
        result["unpublished"] = unpublished
    if work.total or work.failed:
        log.info("reconcile re-drove %s", result)
    return result


@shared_task(name=RECONCILE_JOB, soft_time_limit=25, time_limit=28, **IDEMPOTENT)
def reconcile(period: str | None = None) -> dict[str, int]:
    """Re-enqueue whatever the database says is still pending (once per period when beat sends it)."""
    return run_reconcile(period=period)


@shared_task(name="ops.heartbeat", bind=True, soft_time_limit=20, time_limit=30)
def heartbeat(self: Any) -> None:
    """Record that the worker that took this task is alive and consuming (its node name is the heartbeat's name)."""
    name = str(getattr(self.request, "hostname", None) or f"worker@{socket.gethostname()}")
    with runtime.database().unit_of_work() as session:
        beat(session, name=name, role="worker")


@shared_task(name="ops.prune_sessions", soft_time_limit=120, time_limit=180, **IDEMPOTENT)
def prune_sessions() -> int:
    """Delete login sessions that ended more than 30 days ago, and job runs and heartbeats older than that."""
    now = utcnow()
    with runtime.database().unit_of_work() as session:
        result = session.execute(
            delete(LoginSession).where(
                LoginSession.ended_at.is_not(None), LoginSession.ended_at < now - timedelta(days=30)
            )
        )
        pruned = prune_bookkeeping(session, now=now, keep=KEEP_BOOKKEEPING)
        log.info("pruned %s", pruned)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


@shared_task(name="ops.verify_audit", soft_time_limit=1800, time_limit=1900, **IDEMPOTENT)
def verify_audit() -> dict[str, object]:
    """Walk the audit chain; on a break, log it and email every admin (once per day)."""
    from services.audit.chain import verify_chain
    from services.audit.operations import alert_admins_of_broken_chain

    settings = runtime.settings()
    database = runtime.database()
    with database.read_only_session() as session:
        report = verify_chain(session)
    if report.ok:
        log.info("audit chain intact: %d rows", report.rows)
        return {"ok": True, "rows": report.rows}
    log.error("audit chain broken at row %s (position %s): %s", report.bad_id, report.bad_seq, report.problem)
    with database.unit_of_work() as session:
        ids = alert_admins_of_broken_chain(
            session,
            day=utcnow().date().isoformat(),
            link=f"{settings.base_url.rstrip('/')}/admin/operations",
            practice=settings.practice_name,
        )
    return {"ok": False, "rows": report.rows, "bad_id": report.bad_id, "notified": len(ids)}


# The broker's queue ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting in the broker's default queue (None when it cannot be read), and what was read."""

    broker: str
    waiting: int | None
    in_progress: int | None
    detail: str


def queue_depth(settings: Settings, *, queue: str = QUEUE) -> QueueDepth:
    """Redis: LLEN of the queue's lists (one per priority) and the unacknowledged hash; filesystem: its files."""
    url = settings.broker_url
    if url.startswith("redis"):
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            with client.pipeline() as pipe:
                # kombu's Redis transport keeps one list per priority step: "celery", "celery\x06\x163", ...
                for name in (queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))):
                    pipe.llen(name)
                pipe.hlen("unacked")
                *lengths, unacked = pipe.execute()
        except redis.RedisError as exc:
            return QueueDepth("redis", None, None, Message("Redis did not answer: %(error)s", error=str(exc)))
        finally:
            client.close()
        return QueueDepth("redis", int(sum(lengths)), int(unacked), f"LLEN {queue}")
    if url.startswith("filesystem"):
        folder = settings.broker_dir / "queue"
        try:
            count = sum(1 for entry in folder.iterdir() if entry.name.endswith(f".{queue}.msg"))
        except FileNotFoundError:
            count = 0
        return QueueDepth("filesystem", count, None, Message("files in %(folder)s", folder=str(folder)))
    return QueueDepth(url.split(":", 1)[0], None, None, N_("this broker's queue cannot be inspected"))
