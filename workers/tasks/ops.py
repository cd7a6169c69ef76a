"""Operational tasks: reconcile (the re-drive), heartbeats, housekeeping."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from celery import shared_task
from sqlalchemy import delete

from services.accounts.models import LoginSession
from services.db import utcnow
from services.ops.operations import beat
from services.ops.reconcile import find_pending
from workers import runtime
from workers.tasks.alerts import evaluate
from workers.tasks.base import IDEMPOTENT
from workers.tasks.notifications import send_notification

log = logging.getLogger(__name__)


@shared_task(name="ops.reconcile", soft_time_limit=50, time_limit=58, **IDEMPOTENT)
def reconcile() -> dict[str, int]:
    """Re-enqueue whatever the database says is still pending."""
    return run_reconcile()


def run_reconcile() -> dict[str, int]:
    """One reconcile pass (also used by `rapport reconcile`)."""
    settings = runtime.settings()
    with runtime.database().unit_of_work() as session:
        work = find_pending(
            session, grace=timedelta(seconds=settings.reconcile_grace_seconds), max_attempts=settings.max_attempts
        )
    for notification_id in work.notifications:
        send_notification.apply_async(args=[notification_id])
    for administration_id in work.administrations:
        evaluate.apply_async(args=[administration_id])
    result = {
        "notifications": len(work.notifications),
        "administrations": len(work.administrations),
        **{f"failed_{k}": v for k, v in work.failed.items()},
    }
    if work.total:
        log.info("reconcile re-drove %s", result)
    return result


@shared_task(name="ops.heartbeat", soft_time_limit=20, time_limit=30)
def heartbeat() -> None:
    """Record that a worker is alive and consuming."""
    with runtime.database().unit_of_work() as session:
        beat(session, name=f"worker@{socket.gethostname()}", role="worker")


@shared_task(name="ops.prune_sessions", soft_time_limit=120, time_limit=180, **IDEMPOTENT)
def prune_sessions() -> int:
    """Delete login sessions that ended more than 30 days ago."""
    with runtime.database().unit_of_work() as session:
        result = session.execute(
            delete(LoginSession).where(
                LoginSession.ended_at.is_not(None), LoginSession.ended_at < utcnow() - timedelta(days=30)
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
