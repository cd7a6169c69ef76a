"""The scheduler's clinical jobs: case reviews (open, remind) and alert escalation. Thin: the services do the work.

Both run every minute from beat with the period's key, which they claim in job_runs before anything else, so a
second beat, a redelivery or a repeat is a no-op; their messages are published after the commit. `now` can be
given (tests, back-fills), so the silence rule is checked against a controllable clock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task

from services.alerts.escalation import escalate_alerts
from services.alerts.operations import close_alerts_of_ended_episodes
from services.config import Settings
from services.db import Database, utcnow
from services.ops.operations import claim_period, finish_period
from services.practice.rules import rule_settings
from services.practice.settings import get_number
from services.reviews.operations import open_due_reviews, queue_review_reminders
from services.reviews.policy import review_policy
from workers import runtime
from workers.enqueue import send_notification_after_commit
from workers.tasks.base import IDEMPOTENT

log = logging.getLogger(__name__)

SCAN_JOB = "reviews.scan"
ESCALATE_JOB = "alerts.escalate"


def run_review_scan(
    *,
    period: str | None = None,
    database: Database | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Open the reviews the rules call for and send due reminders, in one unit of work (once per period)."""
    settings = settings or runtime.settings()
    database = database or runtime.database()
    now = now or utcnow()
    policy = review_policy(settings)
    with database.unit_of_work() as session:
        run = claim_period(session, job=SCAN_JOB, period_key=period) if period is not None else None
        if period is not None and run is None:
            return {"already_ran": 1}
        opened = open_due_reviews(
            session,
            now=now,
            policy=policy,
            tz=settings.tz,
            settings=rule_settings(session, risk_window_minutes=settings.risk_window_minutes),
        )
        reminders = queue_review_reminders(session, now=now, policy=policy, base_url=settings.base_url)
        result = {"opened": [row.id for row in opened], "reminders": len(reminders)}
        if run is not None:
            finish_period(session, run, result)
        for notification_id in reminders:
            send_notification_after_commit(session, notification_id)
    if opened or reminders:
        log.info("case reviews: %s", result)
    return result


@shared_task(name=SCAN_JOB, soft_time_limit=50, time_limit=58, **IDEMPOTENT)
def scan(period: str | None = None) -> dict[str, Any]:
    """Open due case reviews and send reminders (keyed by period: a repeat is a no-op)."""
    return run_review_scan(period=period)


def run_escalation(
    *,
    period: str | None = None,
    database: Database | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close alerts of ended episodes, then escalate alerts nobody acknowledged in time (one unit of work, once per
    period)."""
    settings = settings or runtime.settings()
    database = database or runtime.database()
    now = now or utcnow()
    with database.unit_of_work() as session:
        run = claim_period(session, job=ESCALATE_JOB, period_key=period) if period is not None else None
        if period is not None and run is None:
            return {"already_ran": 1}
        # The safety net for episodes that ended without closing their alerts (before this existed, or by import).
        closed = close_alerts_of_ended_episodes(session, today=now.astimezone(settings.tz).date(), now=now)
        escalation = escalate_alerts(
            session,
            now=now,
            ack_window=timedelta(hours=settings.ack_window_hours),
            risk_window=timedelta(
                minutes=rule_settings(session, risk_window_minutes=settings.risk_window_minutes).risk_window_minutes
            ),
            base_url=settings.base_url,
            digest_window=timedelta(minutes=get_number(session, "escalation_digest_minutes")),
        )
        result = {
            "closed": closed,
            "escalated": [list(item) for item in escalation.escalated],
            "messages": len(escalation.notification_ids),
            "waiting": escalation.waiting,
        }
        if run is not None:
            finish_period(session, run, result)
        for notification_id in escalation.notification_ids:
            send_notification_after_commit(session, notification_id)
    if escalation.escalated or closed:
        log.info("escalations: %s", result)
    return result


@shared_task(name=ESCALATE_JOB, soft_time_limit=50, time_limit=58, **IDEMPOTENT)
def escalate(period: str | None = None) -> dict[str, Any]:
    """Escalate unacknowledged alerts to the supervisor or the on-call list (keyed by period)."""
    return run_escalation(period=period)
