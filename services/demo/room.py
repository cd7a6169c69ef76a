"""The demo's feedback in the room: briefs opened before sessions and marked discussed, some and not others.

Each clinician gets their own habit (how often they open a brief before the session, how often they then mark it
discussed), so the supervisor's "was the feedback used?" table and the monthly PDF's section differ by clinician.
Bounded: the last weeks' sessions only, at most MAX_BRIEFS of them, so the large demo stays quick to seed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from services.audit.chain import link_event
from services.audit.models import AuditEvent
from services.briefs.models import BriefDiscussion
from services.briefs.queries import HELD_STATUSES, brief_view_label
from services.clients.models import Appointment, Episode
from services.surveys.models import Administration

HISTORY = timedelta(days=45)
MAX_BRIEFS = 2000


def _view(session: Session, *, actor_id: int, client_id: int, appointment_id: int, at: datetime) -> None:
    event = AuditEvent(
        at=at,
        action="client_viewed",
        actor_id=actor_id,
        subject_type="client",
        subject_id=client_id,
        client_id=client_id,
        detail={"what": brief_view_label(appointment_id)},
    )
    link_event(session, event)
    session.add(event)


def seed_feedback_use(session: Session, rng: random.Random, *, now: datetime) -> tuple[int, int]:
    """Open (audited) and mark discussed a share of recent sessions' briefs; returns (opened, discussed)."""
    answered_before = exists(
        select(Administration.id).where(
            Administration.episode_id == Appointment.episode_id,
            Administration.respondent == "client",
            Administration.completed_at < Appointment.starts_at,
        )
    )
    rows = session.execute(
        select(Appointment.id, Appointment.starts_at, Episode.id, Episode.clinician_id, Episode.client_id)
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(
            Appointment.status.in_(HELD_STATUSES),
            Appointment.starts_at >= now - HISTORY,
            Appointment.starts_at <= now + timedelta(hours=12),
            answered_before,
        )
        .order_by(Appointment.starts_at.desc(), Appointment.id)
        .limit(MAX_BRIEFS)
    ).all()
    habits: dict[int, tuple[float, float]] = {}
    opened = discussed = 0
    first_today: set[int] = set()
    for appointment_id, starts_at, episode_id, clinician_id, client_id in sorted(rows, key=lambda r: (r[1], r[0])):
        view_rate, discuss_rate = habits.setdefault(clinician_id, (rng.uniform(0.3, 0.9), rng.uniform(0.4, 0.9)))
        upcoming = starts_at > now
        if upcoming:
            # Today's sessions still to come: each clinician has opened the first one already, not the others.
            if clinician_id in first_today:
                continue
            first_today.add(clinician_id)
            _view(session, actor_id=clinician_id, client_id=client_id, appointment_id=appointment_id, at=now)
            opened += 1
            continue
        if rng.random() >= view_rate:
            continue
        seen_at = min(starts_at - timedelta(minutes=rng.randint(5, 90)), now)
        _view(session, actor_id=clinician_id, client_id=client_id, appointment_id=appointment_id, at=seen_at)
        opened += 1
        if rng.random() < discuss_rate:
            session.add(
                BriefDiscussion(
                    appointment_id=appointment_id,
                    episode_id=episode_id,
                    clinician_id=clinician_id,
                    discussed_at=min(starts_at + timedelta(minutes=rng.randint(20, 50)), now),
                )
            )
            discussed += 1
    session.flush()
    return opened, discussed
