"""Case review reads, scoped to who may see them, and who reviews a clinician's cases.

- supervisor: reviews of every episode in their team (`episode_scope`), and any review assigned to them;
- manager: the reviews assigned to them and those nobody holds (a manager is the fallback reviewer of a practice
  without supervisors); for the rest of the practice, counts per reviewer (`practice_review_counts`), no clients;
- everyone else, and anyone inactive: none.

A review outside the scope is reported as missing (None), so a page answers 404 and does not confirm it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from services.accounts.models import Role, User
from services.accounts.queries import supervisor_for
from services.alerts.models import Alert
from services.alerts.summary import alert_line
from services.clients.models import Client, Episode
from services.clients.queries import episode_scope
from services.db import utcnow
from services.reviews.models import Review

REASONS = ("UNREPAIRED", "SILENT_AFTER_RUPTURE", "REPEATED_RUPTURE", "RELIABLE_DETERIORATION", "FOLLOW_UP")
OPEN = "open"
COMPLETED = "completed"
AGENDA_LIMIT = 200


def review_kind(reason: str, alert_kind: str | None) -> str:
    """The kind of alert a review is about: its alert's, else what its reason implies."""
    if alert_kind in ("alliance", "outcome", "risk"):
        return alert_kind
    return "outcome" if reason == "RELIABLE_DETERIORATION" else "alliance"


def reviewer_for(session: Session, clinician: User | None) -> User | None:
    """Who reviews a clinician's cases: their supervisor; else any other active supervisor; else a manager.

    Never the clinician themselves (a supervisor's own caseload goes to another supervisor).
    """
    if clinician is not None:
        candidate = supervisor_for(session, clinician)
        if candidate is not None and candidate.id != clinician.id:
            return candidate
    exclude = clinician.id if clinician is not None else -1
    for role in (Role.SUPERVISOR, Role.MANAGER):
        found = session.scalar(
            select(User)
            .where(User.role == role.value, User.active.is_(True), User.id != exclude)
            .order_by(User.id)
            .limit(1)
        )
        if found is not None:
            return found
    return None


def review_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Review (joined to Episode): the reviews user may see and complete."""
    if not user.active:
        return false()
    if user.role == Role.SUPERVISOR:
        return or_(episode_scope(user), Review.reviewer_id == user.id)
    if user.role == Role.MANAGER:
        return or_(Review.reviewer_id == user.id, Review.reviewer_id.is_(None))
    return false()


def can_see_charts(user: User) -> bool:
    """Whether the agenda may link to the client's chart (clinical pages are for clinicians and supervisors)."""
    return user.role in (Role.CLINICIAN, Role.SUPERVISOR)


@dataclass(frozen=True)
class AgendaItem:
    """One review on the agenda, with who it is about and whose case it is."""

    review: Review
    client_id: int
    client_code: str
    client_name: str
    clinician_name: str
    reviewer_name: str | None
    alert_kind: str | None
    alert_summary: str | None
    alert_status: str | None
    alert_evidence: list[dict[str, Any]] | None = None

    def alert_line(self, language: str = "en") -> str | None:
        """The alert's one-line reason in the reader's language (the stored summary is English)."""
        if self.alert_kind is None:
            return None
        return alert_line(self.alert_kind, self.alert_summary, self.alert_evidence or [], language=language)

    def overdue(self, now: datetime) -> bool:
        """True once the due time has passed on an open review."""
        return self.review.status == OPEN and self.review.due_at <= now


def list_agenda(session: Session, user: User, *, status: str = OPEN, limit: int = AGENDA_LIMIT) -> list[AgendaItem]:
    """Reviews user may see with this status, by due date (open) or most recent first (completed); one query."""
    clinician = aliased(User)
    reviewer = aliased(User)
    order = (Review.due_at, Review.id) if status == OPEN else (Review.completed_at.desc(), Review.id.desc())
    rows = session.execute(
        select(
            Review,
            Client.id,
            Client.code,
            Client.first_name,
            Client.last_name,
            clinician.name,
            reviewer.name,
            Alert.kind,
            Alert.summary,
            Alert.status,
            Alert.evidence,
        )
        .join(Episode, Episode.id == Review.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(clinician, clinician.id == Episode.clinician_id)
        .outerjoin(reviewer, reviewer.id == Review.reviewer_id)
        .outerjoin(Alert, Alert.id == Review.alert_id)
        .where(review_scope(user), Review.status == status)
        .order_by(*order)
        .limit(limit)
    )
    return [
        AgendaItem(
            review=review,
            client_id=client_id,
            client_code=code,
            client_name=f"{first} {last}",
            clinician_name=clinician_name,
            reviewer_name=reviewer_name,
            alert_kind=alert_kind,
            alert_summary=alert_summary,
            alert_status=alert_status,
            alert_evidence=alert_evidence,
        )
        for (
            review,
            client_id,
            code,
            first,
            last,
            clinician_name,
            reviewer_name,
            alert_kind,
            alert_summary,
            alert_status,
            alert_evidence,
        ) in rows
    ]


@dataclass(frozen=True)
class ReviewDetail:
    """A review with the case it is about, for its page and form."""

    review: Review
    episode: Episode
    client: Client
    clinician: User
    reviewer: User | None
    alert: Alert | None
    follow_up_of: Review | None
    follow_ups: list[Review]

    def alert_line(self, language: str = "en") -> str | None:
        """The alert's one-line reason in the reader's language (the stored summary is English)."""
        if self.alert is None:
            return None
        return alert_line(self.alert.kind, self.alert.summary, self.alert.evidence, language=language)

    @property
    def kind(self) -> str:
        """The kind of alert the review is about (alliance, outcome or risk), which decides its questions."""
        return review_kind(self.review.reason, self.alert.kind if self.alert is not None else None)


def get_review_for(session: Session, user: User, review_id: int, *, for_update: bool = False) -> ReviewDetail | None:
    """The review with its case, or None when user may not see it; for_update locks the review row (PostgreSQL)."""
    clinician = aliased(User)
    stmt = (
        select(Review, Episode, Client, clinician)
        .join(Episode, Episode.id == Review.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(clinician, clinician.id == Episode.clinician_id)
        .where(Review.id == review_id, review_scope(user))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Review).execution_options(populate_existing=True)
    row = session.execute(stmt).one_or_none()
    if row is None:
        return None
    review, episode, client, clinician_user = row
    reviewer = session.get(User, review.reviewer_id) if review.reviewer_id is not None else None
    alert = session.get(Alert, review.alert_id) if review.alert_id is not None else None
    parent_id = (review.form.get("trigger") or {}).get("review_id") if review.reason == "FOLLOW_UP" else None
    follow_up_of = session.get(Review, int(parent_id)) if parent_id is not None else None
    follow_ups = list(
        session.scalars(select(Review).where(Review.key == f"follow_up:review:{review.id}").order_by(Review.id))
    )
    return ReviewDetail(
        review=review,
        episode=episode,
        client=client,
        clinician=clinician_user,
        reviewer=reviewer,
        alert=alert,
        follow_up_of=follow_up_of,
        follow_ups=follow_ups,
    )


@dataclass(frozen=True)
class AgendaCounts:
    """How many open reviews a user sees, and how many of them are overdue."""

    open: int
    overdue: int


def agenda_counts(session: Session, user: User, *, now: datetime | None = None) -> AgendaCounts:
    """Open and overdue review counts for user's agenda (one query)."""
    now = now or utcnow()
    overdue = func.sum(case((Review.due_at <= now, 1), else_=0))
    row = session.execute(
        select(func.count(Review.id), overdue)
        .join(Episode, Episode.id == Review.episode_id)
        .where(review_scope(user), Review.status == OPEN)
    ).one()
    return AgendaCounts(open=int(row[0] or 0), overdue=int(row[1] or 0))


@dataclass(frozen=True)
class ReviewerCount:
    """Open reviews held by one reviewer (None: unassigned), and how many of them are overdue."""

    reviewer_id: int | None
    reviewer_name: str | None
    open: int
    overdue: int


def practice_review_counts(session: Session, user: User, *, now: datetime | None = None) -> list[ReviewerCount]:
    """Every open review of the practice counted per reviewer, for a manager's overview (no client data; one query).

    Empty for anyone but an active manager.
    """
    if not user.active or user.role != Role.MANAGER:
        return []
    now = now or utcnow()
    overdue = func.sum(case((Review.due_at <= now, 1), else_=0))
    rows = session.execute(
        select(Review.reviewer_id, User.name, func.count(Review.id), overdue)
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(Review.status == OPEN)
        .group_by(Review.reviewer_id, User.name)
        .order_by(User.name, Review.reviewer_id)
    )
    return [
        ReviewerCount(reviewer_id=rid, reviewer_name=name, open=int(count or 0), overdue=int(late or 0))
        for rid, name, count, late in rows
    ]
