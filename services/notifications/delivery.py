"""Sending one outbox row: claim it, render, hand it to its channel, record the outcome."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database
from services.notifications.channels import DeliveryError, OutgoingMessage, send_email, send_sms
from services.notifications.models import Notification
from services.notifications.operations import claim_notification, mark_attempt_failed, mark_sent, stale_claim_after
from services.notifications.templates import render_message
from services.ops.liveness import process_name

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """What happened to a delivery attempt."""

    SENT = "sent"
    SKIPPED = "skipped"  # already sent, being sent elsewhere, cancelled or gone
    RETRY = "retry"
    FAILED = "failed"


# Values a template needs that may exist only at send time (a survey link whose raw token is never stored).
ContextBuilder = Callable[[Session, Settings, Notification], dict[str, Any]]
_context_builders: dict[str, ContextBuilder] = {}


class SkipDelivery(Exception):
    """Raised by a context builder when the message must not go out any more (its reason is recorded)."""


def register_context_builder(template: str, builder: ContextBuilder) -> None:
    """Have builder add values to every message of template, inside the transaction that claims it."""
    _context_builders[template] = builder


def deliver_notification(
    database: Database, settings: Settings, notification_id: int, *, claimed_by: str | None = None
) -> Outcome:
    """Deliver a notification once per claim (claimed by this process by default); safe to call any number of times.

    A claim whose process died mid-send is taken again once that process's heartbeat goes quiet (or at once when a
    task on its host finds its pid gone): the message goes out again, marked with its attempt number.
    """
    build_error: Exception | None = None
    with database.unit_of_work() as session:
        claimed = claim_notification(
            session,
            notification_id,
            stale_after=stale_claim_after(settings.task_time_limit),
            claimed_by=claimed_by or process_name(),
        )
        if not claimed:
            return Outcome.SKIPPED
        row = session.get(Notification, notification_id)
        assert row is not None
        values = {"practice": settings.practice_name, **row.context}
        builder = _context_builders.get(row.template)
        if builder is not None:
            try:
                with session.begin_nested():
                    values.update(builder(session, settings, row))
            except SkipDelivery as exc:
                row.status, row.last_error = "cancelled", str(exc)[:500]
                log.info("notification %s not sent: %s", notification_id, exc)
                return Outcome.SKIPPED
            except Exception as exc:
                build_error = exc  # recorded below, once the claim (and its attempt) is committed
        language = str(row.context.get("language", "en"))
        channel, to_address, template, attempt = row.channel, row.to_address, row.template, row.attempts
    if build_error is not None:
        with database.unit_of_work() as session:
            status = mark_attempt_failed(
                session, notification_id, error=repr(build_error), retry=True, max_attempts=settings.max_attempts
            )
        log.error("notification %s: building its values failed (%s): %r", notification_id, status, build_error)
        return Outcome.RETRY if status == "pending" else Outcome.FAILED
    try:
        subject, body = render_message(template, values, language=language)
        message = OutgoingMessage(notification_id, to_address, subject, body, attempt=attempt)
        reference = send_email(settings, message) if channel == "email" else send_sms(settings, message)
    except DeliveryError as exc:
        with database.unit_of_work() as session:
            status = mark_attempt_failed(
                session,
                notification_id,
                error=str(exc),
                retry=exc.transient,
                max_attempts=settings.max_attempts,
            )
        log.warning("notification %s not delivered (%s): %s", notification_id, status, exc)
        return Outcome.RETRY if status == "pending" else Outcome.FAILED
    except Exception as exc:
        with database.unit_of_work() as session:
            mark_attempt_failed(session, notification_id, error=repr(exc), retry=False, max_attempts=0)
        log.exception("notification %s failed permanently", notification_id)
        return Outcome.FAILED
    _record_sent(database, notification_id, reference)
    return Outcome.SENT


# A delivered message whose "sent" cannot be written (the database connection dropped) is written again this many
# times, backing off from RECORD_BACKOFF s: left as "sending", it would be sent again once its claim went stale.
RECORD_ATTEMPTS = 5
RECORD_BACKOFF = 0.2


def _record_sent(database: Database, notification_id: int, reference: str) -> None:
    """Mark the notification sent; the message is out, so a dropped connection is retried, not given up on.

    mark_sent is a conditional update (sending -> sent), so a repeat after a commit whose answer was lost is a no-op.
    """
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with database.unit_of_work() as session:
                mark_sent(session, notification_id, message_id=reference)
            return
        except OperationalError:
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            log.warning("notification %s was sent; recording it failed, trying again", notification_id, exc_info=True)
            time.sleep(RECORD_BACKOFF * 2**attempt)
