"""Enqueue work after the caller's transaction commits. A failed publish only delays work: reconcile re-drives it."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.db import after_commit

log = logging.getLogger(__name__)


def _publish(task_name: str, *args: int) -> None:
    from workers.app import celery_app

    try:
        celery_app.send_task(task_name, args=list(args))
    except Exception:
        log.warning("could not publish %s%r now; reconcile will re-drive it", task_name, args, exc_info=True)


def send_notification_after_commit(session: Session, notification_id: int) -> None:
    """Send a queued notification once the current transaction commits."""
    after_commit(session, lambda: _publish("notifications.send", notification_id))


def enqueue_after_commit(session: Session, task_name: str, *args: int) -> None:
    """Publish any named task with id arguments after commit."""
    after_commit(session, lambda: _publish(task_name, *args))
