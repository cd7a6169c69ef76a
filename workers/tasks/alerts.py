"""Alert tasks. Thin: arguments are ids; services do the work; notifications are published after the commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from services.alerts.digest import send_digests as queue_digests
from services.alerts.evaluation import evaluate_administration
from services.alerts.operations import (
    EVALUATION_TIME_LIMIT,
    Attempt,
    begin_evaluation_attempt,
    record_evaluation_failure,
)
from services.config import Settings
from services.db import Database, utcnow
from services.ops.liveness import process_name
from services.practice.rules import rule_settings
from workers import runtime
from workers.enqueue import send_notification_after_commit
from workers.tasks.base import IDEMPOTENT

log = logging.getLogger(__name__)

# Retries of a transient failure; each is also one of the row's bounded evaluation attempts.
MAX_RETRIES = 8


@dataclass
class Batch:
    """What a batch evaluation did: status per administration id, and the ids to retry."""

    outcome: dict[str, str] = field(default_factory=dict)
    retry: list[int] = field(default_factory=list)


class TransientEvaluationError(Exception):
    """An evaluation attempt failed for a reason worth retrying soon (database unavailable, lock timeout)."""


def evaluate_now(database: Database, settings: Settings, administration_id: int) -> str:
    """Claim (for this process) and count an attempt, evaluate in one unit of work, publish the notifications after
    its commit. A claim whose process died is taken again once its heartbeat goes quiet (services.ops.liveness)."""
    with database.unit_of_work() as session:
        attempt = begin_evaluation_attempt(
            session, administration_id, max_attempts=settings.max_attempts, claimed_by=process_name()
        )
    if attempt is not Attempt.GO:
        return attempt.value
    try:
        with database.unit_of_work() as session:
            result = evaluate_administration(
                session,
                administration_id,
                settings=rule_settings(session, risk_window_minutes=settings.risk_window_minutes),
                base_url=settings.base_url,
            )
            for notification_id in result.notification_ids:
                send_notification_after_commit(session, notification_id)
    except (OperationalError, SoftTimeLimitExceeded) as exc:
        if _record_failure(database, settings, administration_id, exc):
            return "failed"
        raise TransientEvaluationError(f"administration {administration_id}: {exc!r}"[:500]) from exc
    except Exception as exc:
        # Not transient: keep the reason; reconcile re-drives it until its attempts are used up.
        _record_failure(database, settings, administration_id, exc)
        raise
    return result.status


def _record_failure(database: Database, settings: Settings, administration_id: int, exc: BaseException) -> bool:
    try:
        with database.unit_of_work() as session:
            gave_up = record_evaluation_failure(
                session, administration_id, error=repr(exc), max_attempts=settings.max_attempts
            )
    except OperationalError:
        log.warning("could not record the failed evaluation of administration %s", administration_id, exc_info=True)
        return False
    if gave_up:
        log.error("gave up evaluating administration %s: %r", administration_id, exc)
    return gave_up


@shared_task(
    name="alerts.evaluate", bind=True, max_retries=MAX_RETRIES, soft_time_limit=30, time_limit=45, **IDEMPOTENT
)
def evaluate(self: Any, administration_id: int) -> str:
    """Evaluate one administration: signals, alerts and notifications in one transaction; a repeat is a no-op."""
    try:
        return evaluate_now(runtime.database(), runtime.settings(), administration_id)
    except TransientEvaluationError as exc:
        raise self.retry(exc=exc, countdown=min(120, 2 ** (self.request.retries + 1))) from exc


def evaluate_batch_now(database: Database, settings: Settings, administration_ids: Sequence[int]) -> Batch:
    """Evaluate several administrations in order, each in its own unit of work; collect what to retry.

    A transient failure puts the id on the retry list; any other failure is recorded on its row (reconcile re-drives
    it) and does not stop the rest.
    """
    batch = Batch()
    for administration_id in administration_ids:
        try:
            batch.outcome[str(administration_id)] = evaluate_now(database, settings, administration_id)
        except TransientEvaluationError:
            batch.retry.append(administration_id)
        except Exception:
            log.exception("evaluating administration %s failed; reconcile will re-drive it", administration_id)
            batch.outcome[str(administration_id)] = "error"
    return batch


@shared_task(
    name="alerts.evaluate_batch",
    bind=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=EVALUATION_TIME_LIMIT - 30,
    time_limit=EVALUATION_TIME_LIMIT,
    **IDEMPOTENT,
)
def evaluate_batch(self: Any, *administration_ids: int) -> dict[str, str]:
    """Evaluate one submission's administrations (one message for the survey, not one per instrument)."""
    batch = evaluate_batch_now(runtime.database(), runtime.settings(), administration_ids)
    if batch.retry:
        raise self.retry(args=batch.retry, countdown=min(120, 2 ** (self.request.retries + 1)))
    return batch.outcome


def send_digests_now(database: Database, settings: Settings) -> dict[str, Any]:
    """Queue this slot's digests in one unit of work and publish them after its commit."""
    with database.unit_of_work() as session:
        run = queue_digests(session, now=utcnow(), tz=settings.tz, base_url=settings.base_url)
        for notification_id in run.notification_ids:
            send_notification_after_commit(session, notification_id)
    return {"period": run.period_key, "ran": run.ran, "messages": len(run.notification_ids), "alerts": run.alerts}


@shared_task(name="alerts.send_digests", soft_time_limit=120, time_limit=180, **IDEMPOTENT)
def send_digests() -> dict[str, Any]:
    """Send the twice-daily digest of alliance and outcome alerts (keyed by its slot: a repeat is a no-op)."""
    return send_digests_now(runtime.database(), runtime.settings())
