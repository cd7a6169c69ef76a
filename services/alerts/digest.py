"""The twice-daily digest for clinicians who chose it for alliance and outcome alerts (risk is never batched).

A digest run belongs to a slot (08:00 and 16:00 practice time) and covers the alerts opened since the previous run's
slot. The run is keyed by its slot in `job_runs`, and each message by recipient and slot, so a repeated or doubled
run sends nothing twice. An alert already announced by an immediate message is left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.briefs.queries import waiting_briefs
from services.clients.models import Episode
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from services.ops.models import JobRun
from services.ops.operations import claim_period, finish_period

JOB = "alerts.send_digests"
DIGEST_TIMES = (time(8, 0), time(16, 0))
DIGEST_KINDS = ("alliance", "outcome")
# The morning digest also says how many of today's briefs have new answers nobody has opened (issue 15).
MORNING = DIGEST_TIMES[0]


@dataclass
class DigestRun:
    """What one digest run did."""

    period_key: str
    ran: bool
    since: datetime | None = None
    until: datetime | None = None
    notification_ids: list[int] = field(default_factory=list)
    alerts: int = 0


def digest_slot(now: datetime, tz: ZoneInfo) -> datetime:
    """Return the latest digest slot at or before now (timezone-aware, in UTC)."""
    local = now.astimezone(tz)
    for day in (local.date(), local.date() - timedelta(days=1)):
        for at in sorted(DIGEST_TIMES, reverse=True):
            slot = datetime.combine(day, at, tzinfo=tz)
            if slot <= local:
                return slot.astimezone(UTC)
    raise AssertionError("unreachable: a slot exists within any 24 hours")


def period_key(slot: datetime, tz: ZoneInfo) -> str:
    """Return the run's key, the slot in practice time ("2026-01-05T08:00")."""
    return slot.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def send_digests(session: Session, *, now: datetime, tz: ZoneInfo, base_url: str) -> DigestRun:
    """Queue one digest per digest-mode clinician with new alerts since the last run; a repeat is a no-op."""
    slot = digest_slot(now, tz)
    key = period_key(slot, tz)
    previous = session.scalar(
        select(JobRun).where(JobRun.job == JOB, JobRun.finished_at.is_not(None)).order_by(JobRun.period_key.desc())
    )
    run = claim_period(session, job=JOB, period_key=key)
    if run is None:
        return DigestRun(period_key=key, ran=False)
    since = _previous_until(previous) or _slot_before(slot, tz)
    outcome = DigestRun(period_key=key, ran=True, since=since, until=slot)
    rows = session.execute(
        select(Alert.id, User)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(User, User.id == Episode.clinician_id)
        .where(
            Alert.kind.in_(DIGEST_KINDS),
            Alert.status != "resolved",
            Alert.opened_at >= since,
            Alert.opened_at < slot,
            User.notify_mode == "digest",
            User.active.is_(True),
        )
        .order_by(Alert.id)
    ).all()
    announced = set(
        session.scalars(
            select(Notification.dedupe_key).where(
                Notification.dedupe_key.in_([f"alert:{alert_id}:opened" for alert_id, _ in rows])
            )
        )
    )
    per_user: dict[int, list[int]] = defaultdict(list)
    users: dict[int, User] = {}
    for alert_id, user in rows:
        if f"alert:{alert_id}:opened" in announced:
            continue
        per_user[user.id].append(alert_id)
        users[user.id] = user
    briefs = _waiting_briefs(session, slot, tz, users)
    for user_id in sorted(set(per_user) | set(briefs)):
        user = users[user_id]
        alert_ids = per_user.get(user_id, [])
        waiting = briefs.get(user_id, 0)
        template = "alert_digest" if not waiting else ("morning_digest" if alert_ids else "briefs_waiting")
        link = "/clinician/alerts" if not waiting else "/clinician/"
        row = queue_notification(
            session,
            channel="email",
            template=template,
            to_address=user.email,
            recipient_user_id=user.id,
            context={
                "count": len(alert_ids),
                **({"briefs": waiting} if waiting else {}),
                "link": f"{base_url.rstrip('/')}{link}",
                "language": user.language,
            },
            dedupe_key=f"digest:{user.id}:{key}",
        )
        outcome.notification_ids.append(row.id)
        outcome.alerts += len(alert_ids)
    finish_period(
        session,
        run,
        {
            "since": since.isoformat(),
            "until": slot.isoformat(),
            "messages": len(outcome.notification_ids),
            "alerts": outcome.alerts,
        },
    )
    return outcome


def _waiting_briefs(session: Session, slot: datetime, tz: ZoneInfo, users: dict[int, User]) -> dict[int, int]:
    """At the morning slot, today's briefs waiting per digest-mode clinician (fills users with those not in it)."""
    local = slot.astimezone(tz)
    if local.time() != MORNING:
        return {}
    start = datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    waiting = waiting_briefs(session, start=start, end=end, before=slot)
    if not waiting:
        return {}
    for user in session.scalars(
        select(User).where(User.id.in_(waiting), User.notify_mode == "digest", User.active.is_(True))
    ):
        users.setdefault(user.id, user)
    return {user_id: n for user_id, n in waiting.items() if user_id in users and users[user_id].notify_mode == "digest"}


def _previous_until(previous: JobRun | None) -> datetime | None:
    if previous is None:
        return None
    raw = previous.result.get("until")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _slot_before(slot: datetime, tz: ZoneInfo) -> datetime:
    return digest_slot(slot - timedelta(seconds=1), tz)
