"""Alert verbs: evaluation attempts (bounded), and what a clinician does about an alert. They flush; callers commit.

Permission is the caller's: pass only an alert that `queries.get_alert_for` returned for the acting user.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, func, literal, or_, select, update
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.kinds import (
    EPISODE_ENDED,
    NOTE_REQUIRED,
    RESOLUTION_REASONS,
    has_repair_steps,
    resolution_reasons,
    steps_for,
)
from services.alerts.models import Alert, AlertAction
from services.alerts.repair import REPAIR_TOPICS, get_suggestion
from services.audit.operations import record_event
from services.clients.models import Episode
from services.db import utcnow
from services.i18n import UserError
from services.ops.liveness import claim_takeable, take_claim
from services.surveys.models import Administration

__all__ = ["RESOLUTION_REASONS"]  # re-exported: every reason an alert can carry
MAX_TEXT = 2000
SYSTEM = "system"
# Alerts closed per pass when episodes end; the next pass takes the rest.
ENDED_BATCH = 500


class AlertActionError(UserError):
    """An action that cannot be done on this alert, with a message fit to show."""


# The hard time limit of the evaluation tasks (workers/tasks/alerts.py: a batch of one submission's instruments);
# an evaluation claim older than that plus the margin belongs to a task Celery has killed.
EVALUATION_TIME_LIMIT = 120
EVALUATION_CLAIM_MARGIN = timedelta(seconds=30)
STALE_EVALUATION = timedelta(seconds=EVALUATION_TIME_LIMIT) + EVALUATION_CLAIM_MARGIN


class Attempt(enum.StrEnum):
    """What `begin_evaluation_attempt` decided."""

    GO = "go"  # an attempt was counted: evaluate now
    DONE = "done"  # already evaluated: nothing to do
    CLAIMED = "claimed"  # a live worker process is evaluating it: nothing to do here
    FAILED = "failed"  # given up earlier: left for an admin
    EXHAUSTED = "exhausted"  # no attempts left: marked failed now
    MISSING = "missing"  # no such administration


def evaluation_claim_free(
    now: datetime,
    stale_after: timedelta = STALE_EVALUATION,
    *,
    dead_claimer: str | None = None,
    taker: str | None = None,
) -> ColumnElement[bool]:
    """Nobody holds the evaluation, or its claim may be taken again (services.ops.liveness.claim_takeable)."""
    return or_(
        Administration.eval_claimed_at.is_(None),
        claim_takeable(
            Administration.eval_claimed_by,
            Administration.eval_claimed_at,
            now=now,
            stale_after=stale_after,
            dead_claimer=dead_claimer,
            taker=taker,
        ),
    )


def begin_evaluation_attempt(
    session: Session,
    administration_id: int,
    *,
    max_attempts: int,
    claimed_by: str | None = None,
    now: datetime | None = None,
    stale_after: timedelta = STALE_EVALUATION,
) -> Attempt:
    """Claim the evaluation for claimed_by and count one attempt, in its own transaction before evaluating, so that
    a crash still counts; a claim held by a live process is left alone (Attempt.CLAIMED)."""
    now = now or utcnow()

    def claim(dead_claimer: str | None) -> Update:
        return (
            update(Administration)
            .where(
                Administration.id == administration_id,
                Administration.evaluated_at.is_(None),
                Administration.eval_failed_at.is_(None),
                Administration.eval_attempts < max_attempts,
                evaluation_claim_free(now, stale_after, dead_claimer=dead_claimer, taker=claimed_by),
            )
            .values(eval_attempts=Administration.eval_attempts + 1, eval_claimed_by=claimed_by, eval_claimed_at=now)
            .execution_options(synchronize_session=False)
        )

    holder = select(Administration.eval_claimed_by).where(
        Administration.id == administration_id, Administration.eval_claimed_at.is_not(None)
    )
    if take_claim(session, claim, holder):
        return Attempt.GO
    state = session.execute(
        select(
            Administration.evaluated_at,
            Administration.eval_failed_at,
            Administration.eval_attempts,
            Administration.eval_claimed_at,
        ).where(Administration.id == administration_id)
    ).one_or_none()
    if state is None:
        return Attempt.MISSING
    if state.evaluated_at is not None:
        return Attempt.DONE
    if state.eval_failed_at is not None:
        return Attempt.FAILED
    if state.eval_attempts < max_attempts and state.eval_claimed_at is not None:
        return Attempt.CLAIMED
    give_up_evaluations(session, max_attempts=max_attempts, administration_id=administration_id)
    return Attempt.EXHAUSTED


def record_evaluation_failure(
    session: Session, administration_id: int, *, error: str, max_attempts: int, now: datetime | None = None
) -> bool:
    """Store why an attempt failed and release its claim; True when the row has no attempts left and is now failed."""
    session.execute(
        update(Administration)
        .where(Administration.id == administration_id, Administration.evaluated_at.is_(None))
        .values(last_error=error[:500], eval_claimed_by=None, eval_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(give_up_evaluations(session, max_attempts=max_attempts, administration_id=administration_id, now=now))


def give_up_evaluations(
    session: Session,
    *,
    max_attempts: int,
    administration_id: int | None = None,
    older_than: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Mark failed the waiting administrations that used up their attempts; returns how many."""
    now = now or utcnow()
    conditions = [
        Administration.evaluated_at.is_(None),
        Administration.eval_failed_at.is_(None),
        Administration.eval_attempts >= max_attempts,
    ]
    if administration_id is not None:
        conditions.append(Administration.id == administration_id)
    if older_than is not None:
        conditions.append(Administration.completed_at < older_than)
    result = session.execute(
        update(Administration)
        .where(*conditions)
        .values(
            eval_failed_at=now,
            last_error=func.substr(
                literal("gave up after repeated failures: ") + func.coalesce(Administration.last_error, ""), 1, 500
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# What clinicians do about alerts ---------------------------------------------------------------------------------


def acknowledge_alert(session: Session, alert: Alert, *, actor: User, ip: str | None = None) -> AlertAction | None:
    """Mark an open alert as seen; None when it was already acknowledged (a double click changes nothing)."""
    _refuse_resolved(alert)
    if alert.status == "acknowledged":
        return None
    now = utcnow()
    alert.status = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by_id = actor.id
    return _action(session, alert, actor=actor, action="acknowledged", at=now, ip=ip)


def add_alert_note(session: Session, alert: Alert, *, actor: User, text: str, ip: str | None = None) -> AlertAction:
    """Add a clinician's note to an alert."""
    clean = _text(text, required=True)
    return _action(session, alert, actor=actor, action="note", text=clean, ip=ip)


def record_repair_step(
    session: Session,
    alert: Alert,
    *,
    actor: User,
    suggestion_key: str | None = None,
    text: str | None = None,
    component: str | None = None,
    ip: str | None = None,
) -> AlertAction:
    """Record a repair step taken on a partnership alert: one of the suggestions (by key), free text, or both."""
    if not has_repair_steps(alert.kind):
        raise AlertActionError("Repair steps are for partnership alerts; record one of this alert's steps instead.")
    suggestion = None
    if suggestion_key:
        suggestion = get_suggestion(suggestion_key)
        if suggestion is None:
            raise AlertActionError("Unknown repair suggestion %(key)r.", key=suggestion_key)
    clean = _text(text, required=suggestion is None)
    topic = component or (suggestion.topic if suggestion is not None else None)
    if topic is not None and topic not in REPAIR_TOPICS:
        raise AlertActionError(
            "Unknown component %(topic)r; choose one of: %(choices)s.", topic=topic, choices=", ".join(REPAIR_TOPICS)
        )
    _seen(alert, actor)
    detail: dict[str, Any] = {"suggestion": suggestion.key} if suggestion is not None else {}
    return _action(session, alert, actor=actor, action="repair_step", component=topic, text=clean, detail=detail, ip=ip)


def record_step(
    session: Session, alert: Alert, *, actor: User, step: str, text: str | None = None, ip: str | None = None
) -> AlertAction:
    """Record a step taken on a risk or outcome alert (services.alerts.kinds.STEPS_BY_KIND), with optional words."""
    _refuse_resolved(alert)
    allowed = steps_for(alert.kind)
    if step not in allowed:
        if not allowed:
            raise AlertActionError("Record a repair step on a partnership alert.")
        raise AlertActionError(
            "Unknown step %(step)r for a %(kind)s alert; choose one of: %(choices)s.",
            step=step,
            kind=alert.kind,
            choices=", ".join(allowed),
        )
    clean = _text(text, required=False)
    _seen(alert, actor)
    return _action(session, alert, actor=actor, action="step", text=clean, detail={"step": step}, ip=ip)


def _seen(alert: Alert, actor: User) -> None:
    if alert.status == "open":
        # Acting on an alert means it has been seen.
        alert.status = "acknowledged"
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by_id = actor.id


def resolve_alert(
    session: Session, alert: Alert, *, actor: User, reason: str, note: str | None = None, ip: str | None = None
) -> AlertAction:
    """Close an alert with one of its kind's reasons (services.alerts.kinds.RESOLUTION_REASONS_BY_KIND)."""
    _refuse_resolved(alert)
    allowed = resolution_reasons(alert.kind)
    if reason not in allowed:
        raise AlertActionError(
            "Unknown reason %(reason)r for a %(kind)s alert; choose one of: %(choices)s.",
            reason=reason,
            kind=alert.kind,
            choices=", ".join(allowed),
        )
    clean = _text(note, required=reason in NOTE_REQUIRED)
    now = utcnow()
    alert.status = "resolved"
    alert.resolved_at = now
    alert.resolved_by_id = actor.id
    alert.resolution_reason = reason
    if reason == "repaired" and alert.repaired_at is None:
        alert.repaired_at = now
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by_id = actor.id
    return _action(session, alert, actor=actor, action="resolved", text=clean, detail={"reason": reason}, ip=ip, at=now)


def ended_before(opened_at: datetime, ended_on: date | None) -> bool:
    """Whether an alert opened at opened_at belongs to an episode that has ended since (not news after its end)."""
    return ended_on is not None and opened_at.astimezone(UTC).date() <= ended_on


def close_alerts_of_ended_episodes(
    session: Session, *, today: date, episode_id: int | None = None, now: datetime | None = None
) -> list[int]:
    """Resolve, as "episode ended", every unresolved alert of an episode that ended on or before today; their ids.

    Called when an episode ends, and by the scheduler as a safety net (episodes that ended before this existed, or
    were ended by an import). An alert opened after the end (a risk answer on a last, late questionnaire) is news,
    not history: it stays open. Each closure is a conditional UPDATE, so a concurrent pass closes nothing twice.
    """
    now = now or utcnow()
    conditions = [Alert.status != "resolved", Episode.ended_on.is_not(None), Episode.ended_on <= today]
    if episode_id is not None:
        conditions.append(Episode.id == episode_id)
    rows = session.execute(
        select(Alert.id, Alert.kind, Alert.opened_at, Episode.ended_on, Episode.client_id)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(*conditions)
        .order_by(Alert.id)
        .limit(ENDED_BATCH)
    ).all()
    closed = []
    for alert_id, kind, opened_at, ended_on, client_id in rows:
        if not ended_before(opened_at, ended_on):
            continue
        done = session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.status != "resolved")
            .values(
                status="resolved",
                resolved_at=now,
                resolved_by_id=None,
                resolution_reason=EPISODE_ENDED,
                updated_at=now,
            )
            .execution_options(synchronize_session="fetch")
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            continue
        session.add(
            AlertAction(alert_id=alert_id, at=now, actor_id=None, action="resolved", detail={"reason": EPISODE_ENDED})
        )
        record_event(
            session,
            action="alert_resolved",
            actor_label=SYSTEM,
            subject_type="alert",
            subject_id=alert_id,
            client_id=client_id,
            detail={"kind": kind, "reason": EPISODE_ENDED},
        )
        closed.append(alert_id)
    session.flush()
    return closed


def _refuse_resolved(alert: Alert) -> None:
    if alert.status == "resolved":
        raise AlertActionError("This alert is already resolved.")


def _text(value: str | None, *, required: bool) -> str | None:
    clean = (value or "").strip()
    if required and not clean:
        raise AlertActionError("Please write a few words.")
    if len(clean) > MAX_TEXT:
        raise AlertActionError("Please keep it under %(max)d characters.", max=MAX_TEXT)
    return clean or None


def _action(
    session: Session,
    alert: Alert,
    *,
    actor: User,
    action: str,
    text: str | None = None,
    component: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    at: datetime | None = None,
) -> AlertAction:
    row = AlertAction(
        alert_id=alert.id,
        at=at or utcnow(),
        actor_id=actor.id,
        action=action,
        component=component,
        text=text,
        detail=detail or {},
    )
    session.add(row)
    client_id = session.scalar(select(Episode.client_id).where(Episode.id == alert.episode_id))
    record_event(
        session,
        action=f"alert_{action}",
        actor_id=actor.id,
        subject_type="alert",
        subject_id=alert.id,
        client_id=client_id,
        ip=ip,
        detail={"kind": alert.kind, **({"component": component} if component else {}), **(detail or {})},
    )
    session.flush()
    return row
