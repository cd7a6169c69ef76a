"""Survey invitation tasks: the once-a-minute dispatch (create, send, remind, expire); the service does the work."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task

from services.db import utcnow
from services.ops.operations import claim_period, finish_period, minute_key
from services.surveys.invitations import dispatch_invitations
from services.surveys.policy import invitation_policy
from workers import runtime
from workers.enqueue import send_notification_after_commit
from workers.tasks.base import IDEMPOTENT

log = logging.getLogger(__name__)

JOB = "surveys.dispatch"


@shared_task(name=JOB, soft_time_limit=50, time_limit=58, **IDEMPOTENT)
def dispatch() -> dict[str, int]:
    """Create, send, remind and expire invitations; keyed by the minute, so a second run in it is a no-op."""
    return run_dispatch()


def run_dispatch(now: datetime | None = None) -> dict[str, int]:
    """One dispatch pass for the current minute; its messages are published once it commits."""
    now = now or utcnow()
    policy = invitation_policy(runtime.settings())
    with runtime.database().unit_of_work() as session:
        run = claim_period(session, job=JOB, period_key=minute_key(now))
        if run is None:
            return {"already_ran": 1}
        result = dispatch_invitations(session, policy=policy, now=now)
        finish_period(session, run, result.as_dict())
        for notification_id in result.notification_ids:
            send_notification_after_commit(session, notification_id)
    counts = result.as_dict()
    if any(counts.values()):
        log.info("survey dispatch: %s", counts)
    return counts
