"""Escalating alerts nobody acknowledged in time (the scheduler's pass; flush only, the caller commits).

One escalation per alert, when it has stayed open (not acknowledged) past its deadline:

- risk:              after the risk window (default 60 minutes) -> the practice's on-call list (email and text) and
                     the clinician's supervisor (email); with nobody on call, the supervisor by email and text;
- alliance, outcome: after the acknowledgement window (default 48 hours) -> the clinician's supervisor.

The escalation is claimed with a conditional UPDATE (`WHERE escalation_level = 0 AND status = 'open'`), so a
repeat, a second scheduler or a concurrent acknowledgement never escalates twice: one "escalated" line in the
alert's history, one audit event, and one EscalationNotice per person (unique per alert and person).

Messages: a person gets at most one escalation message per digest window (default 15 minutes, the practice setting
`escalation_digest_minutes`). The first notice goes out on the pass that makes it; notices made while that person's
window is still running wait and go out together, as one digest ("3 items..."), when it ends. Never a burst, never
dropped. Alerts on an episode that ended are closed first (services.alerts.operations) and never escalated; one
opened after the end (a risk answer on a late questionnaire) is news and is escalated like any other.

Messages carry a link and the recipient's role, never client data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.queries import on_call_users
from services.alerts.evaluation import RISK_ALERT, alert_link
from services.alerts.models import Alert, AlertAction, EscalationNotice
from services.alerts.operations import ended_before
from services.audit.operations import record_event
from services.clients.models import Episode
from services.notifications.operations import queue_notification
from services.reviews.queries import reviewer_for

ON_CALL = "on_call"
SUPERVISOR = "supervisor"
BATCH = 200
DIGEST_WINDOW = timedelta(minutes=15)
LEVEL = 1
ROLE_WORDS = {
    ON_CALL: {"en": "the on-call clinician", "es": "profesional de guardia"},
    SUPERVISOR: {"en": "supervisor", "es": "supervisor/a"},
}


@dataclass
class EscalationRun:
    """What one pass escalated, and the outbox rows to publish once it commits."""

    escalated: list[tuple[int, int]] = field(default_factory=list)  # (alert id, level)
    notification_ids: list[int] = field(default_factory=list)
    waiting: int = 0  # notices held back until their recipient's digest window ends


def digest_window(minutes: object) -> timedelta:
    """The digest window from the practice setting (minutes, at least 1); the default when it is not a number."""
    if isinstance(minutes, bool) or not isinstance(minutes, int | float | str):
        return DIGEST_WINDOW
    try:
        value = float(minutes)
    except ValueError:
        return DIGEST_WINDOW
    return timedelta(minutes=max(1.0, value)) if value == value else DIGEST_WINDOW  # NaN is not a number


def deadline(kind: str, *, ack_window: timedelta, risk_window: timedelta) -> timedelta:
    """How long an alert of this kind may stay unacknowledged before it is escalated."""
    return risk_window if kind == RISK_ALERT else ack_window


def _due(now: datetime, *, ack_window: timedelta, risk_window: timedelta) -> Any:
    # Two ranges of ix_alerts_status_opened: risk alerts past the risk window, the others past the ack window.
    return or_(
        (Alert.kind == RISK_ALERT) & (Alert.opened_at <= now - risk_window),
        (Alert.kind != RISK_ALERT) & (Alert.opened_at <= now - ack_window),
    )


def _recipients(session: Session, alert: Alert, clinician: User | None) -> tuple[list[tuple[User, str, bool]], bool]:
    """Who hears about an escalation, in which role, whether urgently; and whether that is a fallback."""
    supervisor = reviewer_for(session, clinician)
    people: dict[int, tuple[User, str, bool]] = {}
    fallback = False
    if alert.kind == RISK_ALERT:
        on_call = [user for user in on_call_users(session) if user.email or user.phone]
        for user in on_call:
            people[user.id] = (user, ON_CALL, True)
        fallback = not on_call
        if supervisor is not None and supervisor.id not in people:
            people[supervisor.id] = (supervisor, SUPERVISOR, fallback)
    elif supervisor is not None:
        people[supervisor.id] = (supervisor, SUPERVISOR, False)
    return list(people.values()), fallback


def escalate_alerts(
    session: Session,
    *,
    now: datetime,
    ack_window: timedelta,
    risk_window: timedelta,
    base_url: str,
    digest_window: timedelta = DIGEST_WINDOW,
) -> EscalationRun:
    """Escalate every open alert past its deadline (once each), then send each person's due digest."""
    run = EscalationRun()
    candidates = session.execute(
        select(Alert, Episode.ended_on)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(
            Alert.status == "open",
            Alert.escalation_level == 0,
            _due(now, ack_window=ack_window, risk_window=risk_window),
        )
        .order_by(Alert.opened_at, Alert.id)
        .limit(BATCH)
    ).all()
    for alert, ended_on in candidates:
        if ended_before(alert.opened_at, ended_on):
            continue  # its episode ended: it is closed as "episode ended", never escalated
        _escalate_one(session, alert, now=now, ack_window=ack_window, risk_window=risk_window, run=run)
    session.flush()
    deliver_notices(session, now=now, base_url=base_url, digest_window=digest_window, run=run)
    return run


def _escalate_one(
    session: Session, alert: Alert, *, now: datetime, ack_window: timedelta, risk_window: timedelta, run: EscalationRun
) -> bool:
    claimed = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status == "open", Alert.escalation_level == 0)
        .values(escalation_level=LEVEL, escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return False  # acknowledged meanwhile, or escalated by a concurrent pass
    alert.escalation_level, alert.escalated_at = LEVEL, now
    episode = session.get(Episode, alert.episode_id)
    clinician = session.get(User, episode.clinician_id) if episode is not None else None
    people, fallback = _recipients(session, alert, clinician)
    after = deadline(alert.kind, ack_window=ack_window, risk_window=risk_window)
    detail: dict[str, Any] = {
        "level": LEVEL,
        "to": sorted({role for _, role, _ in people}) or [SUPERVISOR],
        "recipients": [person.id for person, _, _ in people],
        "after_minutes": int(after / timedelta(minutes=1)),
    }
    if fallback:
        detail["fallback"] = "nobody on call"
    session.add(AlertAction(alert_id=alert.id, at=now, actor_id=None, action="escalated", detail=detail))
    for person, role, urgent in people:
        try:
            with session.begin_nested():
                session.add(
                    EscalationNotice(alert_id=alert.id, user_id=person.id, role=role, urgent=urgent, created_at=now)
                )
        except IntegrityError:
            continue  # already noted for this person (a concurrent pass)
    record_event(
        session,
        action="alert_escalated",
        actor_label="scheduler",
        subject_type="alert",
        subject_id=alert.id,
        client_id=episode.client_id if episode is not None else None,
        detail={"kind": alert.kind, **detail},
    )
    run.escalated.append((alert.id, LEVEL))
    return True


def deliver_notices(
    session: Session, *, now: datetime, base_url: str, digest_window: timedelta, run: EscalationRun
) -> None:
    """Queue one message (a digest when several) per person whose notices wait and whose window has ended."""
    pending = session.execute(
        select(EscalationNotice, Alert.status)
        .join(Alert, Alert.id == EscalationNotice.alert_id)
        .where(EscalationNotice.notified_at.is_(None))
        .order_by(EscalationNotice.user_id, EscalationNotice.id)
    ).all()
    per_user: dict[int, list[EscalationNotice]] = defaultdict(list)
    for notice, status in pending:
        if status != "open":
            # Seen (or closed) since it was escalated: nothing to chase. Dropped quietly, not counted as a message.
            notice.notified_at = now
            continue
        per_user[notice.user_id].append(notice)
    if not per_user:
        session.flush()
        return
    last_sent = dict(
        session.execute(
            select(EscalationNotice.user_id, func.max(EscalationNotice.notified_at))
            .where(EscalationNotice.user_id.in_(list(per_user)), EscalationNotice.notification_id.is_not(None))
            .group_by(EscalationNotice.user_id)
        ).all()
    )
    for user_id, notices in sorted(per_user.items()):
        last = last_sent.get(user_id)
        if last is not None and last > now - digest_window:
            run.waiting += len(notices)
            continue
        person = session.get(User, user_id)
        if person is None:
            continue
        ids = [notice.id for notice in notices]
        claimed = session.execute(
            update(EscalationNotice)
            .where(EscalationNotice.id.in_(ids), EscalationNotice.notified_at.is_(None))
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != len(ids):  # type: ignore[attr-defined]
            continue  # a concurrent pass took some of them: it sends this person's message
        queued = _messages(session, person, notices, base_url=base_url)
        for notice in notices:
            notice.notified_at = now
            notice.notification_id = queued[0] if queued else None
        run.notification_ids.extend(queued)
    session.flush()


def _messages(session: Session, person: User, notices: list[EscalationNotice], *, base_url: str) -> list[int]:
    language = person.language if person.language in ("en", "es") else "en"
    role = ON_CALL if any(notice.role == ON_CALL for notice in notices) else SUPERVISOR
    if len(notices) == 1:
        template = "escalation"
        context: dict[str, Any] = {"link": alert_link(base_url, notices[0].alert_id)}
    else:
        template = "escalation_digest"
        context = {"count": len(notices), "link": f"{base_url.rstrip('/')}/clinician/alerts?status=open"}
    context.update({"role": ROLE_WORDS[role][language], "language": language})
    channels: list[tuple[str, str | None]] = [("email", person.email)]
    if any(notice.urgent for notice in notices):
        channels.append(("sms", person.phone))
    queued: list[int] = []
    for channel, address in channels:
        if not address:
            continue
        row = queue_notification(
            session,
            channel=channel,
            template=template,
            to_address=address,
            recipient_user_id=person.id,
            context=context,
            dedupe_key=f"escalation:user:{person.id}:notice:{notices[0].id}:{channel}",
        )
        queued.append(row.id)
    return queued


def settle_history(session: Session, *, now: datetime, ack_window: timedelta, risk_window: timedelta) -> int:
    """Mark as escalated at the time the open alerts of a seeded history that were past their deadline before now.

    A seeded demo's alerts are history: in a running practice they would have been escalated when their deadline
    passed (that is the moment recorded, so monthly figures fall in the right month). Without this, the first
    scheduler pass would escalate months of alerts at once as if they were new.
    """
    rows = session.execute(
        select(Alert.id, Alert.kind, Alert.opened_at).where(
            Alert.status == "open",
            Alert.escalation_level == 0,
            _due(now, ack_window=ack_window, risk_window=risk_window),
        )
    ).all()
    for alert_id, kind, opened_at in rows:
        at = opened_at + deadline(kind, ack_window=ack_window, risk_window=risk_window)
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.escalation_level == 0)
            .values(escalation_level=LEVEL, escalated_at=at)
            .execution_options(synchronize_session=False)
        )
    if rows:
        record_event(session, action="alerts_history_settled", actor_label="demo seed", detail={"alerts": len(rows)})
    session.flush()
    return len(rows)
