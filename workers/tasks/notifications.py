"""Outbox delivery tasks. Thin: arguments are ids; the service does the work."""

from __future__ import annotations

from typing import Any

from celery import shared_task

import services.accounts.operations  # noqa: F401 - registers the password-reset link builder
from services.notifications.delivery import Outcome, deliver_notification
from workers import runtime
from workers.tasks.base import IDEMPOTENT


@shared_task(name="notifications.send", bind=True, max_retries=5, **IDEMPOTENT)
def send_notification(self: Any, notification_id: int) -> str:
    """Deliver one outbox row (a conditional claim makes a second delivery a no-op)."""
    outcome = deliver_notification(runtime.database(), runtime.settings(), notification_id)
    if outcome is Outcome.RETRY:
        raise self.retry(countdown=min(300, 15 * 2**self.request.retries))
    return outcome.value
