"""Verbs of the room: mark a session's brief as discussed with the client, revise the goals together. They flush;
the caller commits. Both are audited here, in the operation."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.operations import record_event
from services.briefs.models import BriefDiscussion, GoalRevision
from services.clients.models import Appointment, Episode
from services.clients.operations import MAX_GOAL_LENGTH, MAX_GOALS
from services.db import utcnow
from services.i18n import N_, UserError

MAX_NOTE = 2000


class BriefError(UserError):
    """A request about a brief or the goals that cannot be done, with a message fit to show."""


def mark_discussed(
    session: Session,
    *,
    appointment: Appointment,
    episode: Episode,
    actor: User,
    note: str | None = None,
    ip: str | None = None,
) -> BriefDiscussion | None:
    """Record that the session's feedback was discussed with the client; None when it already was (a repeat)."""
    if episode.clinician_id != actor.id:
        raise BriefError(N_("Only the client's own clinician marks the brief as discussed."))
    clean = " ".join((note or "").split()) or None
    if clean is not None and len(clean) > MAX_NOTE:
        raise BriefError(N_("Please keep the note under %(max)d characters."), max=MAX_NOTE)
    existing = session.scalar(select(BriefDiscussion).where(BriefDiscussion.appointment_id == appointment.id))
    if existing is not None:
        return None
    row = BriefDiscussion(
        appointment_id=appointment.id,
        episode_id=episode.id,
        clinician_id=actor.id,
        discussed_at=utcnow(),
        note=clean,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        action="brief_discussed",
        actor_id=actor.id,
        subject_type="appointment",
        subject_id=appointment.id,
        client_id=episode.client_id,
        ip=ip,
        detail={"episode_id": episode.id, "note": clean is not None},
    )
    return row


def clean_goals(goals: Sequence[str]) -> list[str]:
    """The goals with spaces tidied and blanks dropped; refuses more than three or one too long."""
    cleaned = [" ".join(str(goal).split()) for goal in goals]
    cleaned = [goal for goal in cleaned if goal]
    if len(cleaned) > MAX_GOALS:
        raise BriefError(N_("An episode has at most %(max)d goals."), max=MAX_GOALS)
    if any(len(goal) > MAX_GOAL_LENGTH for goal in cleaned):
        raise BriefError(N_("Each goal has at most %(max)d characters."), max=MAX_GOAL_LENGTH)
    return cleaned


def revise_goals(
    session: Session, *, episode: Episode, goals: Sequence[str], actor: User, ip: str | None = None
) -> GoalRevision | None:
    """Replace the episode's goals with the ones agreed with the client, keeping the earlier wording as a revision.

    Returns None when nothing changed. The goal ratings stay attached to their position (goal 1, 2, 3).
    """
    if episode.ended_on is not None:
        raise BriefError(N_("This episode has ended; its goals can no longer be revised."))
    cleaned = clean_goals(goals)
    if not cleaned:
        raise BriefError(N_("Keep at least one goal, in the client's own words."))
    previous = [str(goal) for goal in (episode.goals or [])]
    if cleaned == previous:
        return None
    latest = session.scalar(select(func.max(GoalRevision.version)).where(GoalRevision.episode_id == episode.id))
    row = GoalRevision(
        episode_id=episode.id,
        version=(latest or 0) + 1,
        previous=previous,
        goals=cleaned,
        revised_at=utcnow(),
        revised_by_id=actor.id,
    )
    session.add(row)
    episode.goals = cleaned
    session.flush()
    record_event(
        session,
        action="goals_revised",
        actor_id=actor.id,
        subject_type="episode",
        subject_id=episode.id,
        client_id=episode.client_id,
        ip=ip,
        detail={"version": row.version, "goals": len(cleaned)},
    )
    return row
