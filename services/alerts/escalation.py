"""Escalating alerts nobody acknowledged in time (the scheduler's pass; flush only, the caller commits).

Each kind of alert has a ladder of steps; step n fires once the alert has stayed open (not acknowledged) for its
delay, and sets `escalation_level` to n with a conditional UPDATE (`WHERE escalation_level = n - 1 AND status =
'open'`), so a repeat, a second scheduler or a concurrent acknowledgement never escalates twice or too late:

- risk:              1. after the risk window (default 60 minutes) -> the practice's on-call list;
                     2. after the acknowledgement window (default 48 hours) -> the clinician's supervisor;
- alliance, outcome: 1. after the acknowledgement window -> the clinician's supervisor.

Each step writes an alert action "escalated" (visible on the alert with escalated_at and escalation_level), an
audit event, and one message per recipient (email; a text message too for on-call staff with a phone), each with
a dedupe key. Messages carry the alert's link and the recipient's role, never client data. With nobody on call,
a risk alert goes to the supervisor (or, failing one, a manager) instead: it is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.queries import on_call_users
from services.alerts.evaluation import ALLIANCE, OUTCOME, RISK_ALERT, alert_link
from services.alerts.models import Alert, AlertAction
from services.audit.operations import record_event
from services.clients.models import Episode
from services.notifications.operations import queue_notification
from services.reviews.queries import reviewer_for

ON_CALL = "on_call"
SUPERVISOR = "supervisor"
BATCH = 200
ROLE_WORDS = {
    ON_CALL: {"en": "the on-call clinician", "es": "profesional de guardia"},
    SUPERVISOR: {"en": "supervisor", "es": "supervisor/a"},
}


@dataclass(frozen=True)
class Step:
    """One rung of an escalation ladder: after this long unacknowledged, tell these people."""

    level: int
    after: timedelta
    target: str


def ladders(*, ack_window: timedelta, risk_window: timedelta) -> dict[str, tuple[Step, ...]]:
    """The escalation steps of each kind of alert."""
    return {
        RISK_ALERT: (Step(1, risk_window, ON_CALL), Step(2, ack_window, SUPERVISOR)),
        ALLIANCE: (Step(1, ack_window, SUPERVISOR),),
        OUTCOME: (Step(1, ack_window, SUPERVISOR),),
    }


@dataclass
class EscalationRun:
    """What one pass escalated, and the outbox rows to publish once it commits."""

    escalated: list[tuple[int, int]] = field(default_factory=list)  # (alert id, level)
    notification_ids: list[int] = field(default_factory=list)


def _recipients(session: Session, clinician: User | None, target: str) -> tuple[list[User], bool]:
    """Who hears about a step, and whether that is a fallback (nobody on call)."""
    if target == ON_CALL:
        people = [user for user in on_call_users(session) if user.email or user.phone]
        if people:
            return people, False
    fallback = reviewer_for(session, clinician)
    return ([fallback] if fallback is not None else []), target == ON_CALL


def _messages(
    session: Session, alert: Alert, level: int, *, role: str, urgent: bool, people: list[User], base_url: str
) -> list[int]:
    ids = []
    for person in people:
        language = person.language if person.language in ("en", "es") else "en"
        context = {
            "link": alert_link(base_url, alert.id),
            "role": ROLE_WORDS[role][language],
            "language": language,
        }
        channels: list[tuple[str, str | None]] = [("email", person.email)]
        if urgent:
            channels.append(("sms", person.phone))
        for channel, address in channels:
            if not address:
                continue
            row = queue_notification(
                session,
                channel=channel,
                template="escalation",
                to_address=address,
                recipient_user_id=person.id,
                context=context,
                dedupe_key=f"alert:{alert.id}:escalated:{level}:user:{person.id}:{channel}",
            )
            ids.append(row.id)
    return ids


def escalate_alerts(
    session: Session,
    *,
    now: datetime,
    ack_window: timedelta,
    risk_window: timedelta,
    base_url: str,
) -> EscalationRun:
    """Escalate every open alert past its next step's delay (one step per alert per pass)."""
    run = EscalationRun()
    steps = ladders(ack_window=ack_window, risk_window=risk_window)
    # Only alerts with a step due now (one OR arm per step), so alerts at the top of their ladder never crowd out
    # the others; every arm is a range of ix_alerts_status_opened (status 'open', opened_at before a bound).
    due_now = [
        (Alert.kind == kind) & (Alert.escalation_level == step.level - 1) & (Alert.opened_at <= now - step.after)
        for kind, ladder in steps.items()
        for step in ladder
    ]
    candidates = list(
        session.scalars(
            select(Alert).where(Alert.status == "open", or_(*due_now)).order_by(Alert.opened_at, Alert.id).limit(BATCH)
        )
    )
    for alert in candidates:
        due = [
            step
            for step in steps.get(alert.kind, ())
            if step.level > alert.escalation_level and alert.opened_at <= now - step.after
        ]
        # Climb straight to the highest step due (an alert found late goes to everyone it should have by now), but
        # record each step, so the ladder reads the same whatever the timing.
        for step in due:
            if not _escalate_one(session, alert, step, now=now, base_url=base_url, run=run):
                break
    session.flush()
    return run


def _escalate_one(
    session: Session, alert: Alert, step: Step, *, now: datetime, base_url: str, run: EscalationRun
) -> bool:
    claimed = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status == "open", Alert.escalation_level == step.level - 1)
        .values(escalation_level=step.level, escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return False  # acknowledged meanwhile, or escalated by a concurrent pass
    alert.escalation_level, alert.escalated_at = step.level, now
    episode = session.get(Episode, alert.episode_id)
    clinician = session.get(User, episode.clinician_id) if episode is not None else None
    people, fallback = _recipients(session, clinician, step.target)
    detail: dict[str, Any] = {
        "level": step.level,
        "to": step.target,
        "recipients": [person.id for person in people],
        "after_minutes": int(step.after / timedelta(minutes=1)),
    }
    if fallback:
        detail["fallback"] = "nobody on call"
    session.add(AlertAction(alert_id=alert.id, at=now, actor_id=None, action="escalated", detail=detail))
    record_event(
        session,
        action="alert_escalated",
        actor_label="scheduler",
        subject_type="alert",
        subject_id=alert.id,
        client_id=episode.client_id if episode is not None else None,
        detail={"kind": alert.kind, **detail},
    )
    run.escalated.append((alert.id, step.level))
    # A risk alert past the risk window is urgent: a text message too. The role named is the one the person holds.
    role = SUPERVISOR if fallback else step.target
    urgent = step.target == ON_CALL and alert.kind == RISK_ALERT
    run.notification_ids.extend(
        _messages(session, alert, step.level, role=role, urgent=urgent, people=people, base_url=base_url)
    )
    return True
