"""Client reads, scoped to what the asking staff member may see.

Who sees which client records (every page and API call that shows a client goes through these):

- front desk: every client's record (contact details, all episodes, appointments) but never a score;
- clinician: clients with an episode (open or ended) where they are the clinician; on the record they see
  only those episodes, with their appointments and scores;
- supervisor: the same for every clinician in their team (themselves included); a supervisor with
  no team sees only their own caseload;
- manager and admin: no individual client records at all, only practice-wide counts
  (``practice_summary``); the monthly reports carry pseudonymous codes.

A client outside the scope is reported as missing (None), so the page answers 404 and does not
confirm that the record exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from services.accounts.models import Role, User
from services.alerts.models import Alert
from services.clients.models import Appointment, Client, Episode
from services.db import utcnow
from services.inputs import page_offset
from services.surveys.models import Administration, Invitation

T = TypeVar("T")

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results with what a pager needs."""

    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        """True when there is a page before this one."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """True when there is a page after this one."""
        return self.page < self.pages


def _team_clinician_ids(user: User) -> Select[int]:
    """Ids of the staff whose caseloads a supervisor oversees (their team, themselves included)."""
    if user.team_id is None:
        return select(User.id).where(User.id == user.id)
    return select(User.id).where(or_(User.team_id == user.team_id, User.id == user.id))


def episode_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Episode: episodes whose clinical content (scores, alerts) user may see."""
    if not user.active:
        return false()
    if user.role == Role.CLINICIAN:
        return Episode.clinician_id == user.id
    if user.role == Role.SUPERVISOR:
        return Episode.clinician_id.in_(_team_clinician_ids(user))
    # Front desk never sees scores; managers and admins see aggregates only.
    return false()


def client_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Client: the clients whose record user may open."""
    if not user.active:
        return false()
    if user.role == Role.FRONT_DESK:
        return true()
    if user.role in (Role.CLINICIAN, Role.SUPERVISOR):
        return Client.id.in_(select(Episode.client_id).where(episode_scope(user)))
    return false()


def can_see_clients(user: User) -> bool:
    """True when user's role opens individual client records at all."""
    return user.active and user.role in (Role.FRONT_DESK, Role.CLINICIAN, Role.SUPERVISOR)


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _visible_clients_where(user: User, search: str | None, include_archived: bool) -> ColumnElement[bool]:
    """The clients user may see, optionally matching every word of search in a name or the code."""
    conditions: list[ColumnElement[bool]] = [client_scope(user)]
    if not include_archived:
        conditions.append(Client.archived_at.is_(None))
    for term in (search or "").split()[:5]:
        pattern = _like_pattern(term[:100])
        conditions.append(
            or_(
                Client.first_name.ilike(pattern, escape="\\"),
                Client.last_name.ilike(pattern, escape="\\"),
                Client.code.ilike(pattern, escape="\\"),
            )
        )
    return and_(*conditions)


def list_visible_clients(
    session: Session,
    user: User,
    *,
    search: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    include_archived: bool = False,
) -> Page[Client]:
    """Clients user may see, optionally filtered by name or code, one page at a time, by last name."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    where = _visible_clients_where(user, search, include_archived)
    total = session.scalar(select(func.count()).select_from(Client).where(where)) or 0
    items = list(
        session.scalars(
            select(Client)
            .where(where)
            .order_by(Client.last_name, Client.first_name, Client.id)
            .limit(per_page)
            .offset(page_offset(page, per_page))
        )
    )
    return Page(items=items, total=total, page=page, per_page=per_page)


@dataclass(frozen=True)
class RosterRow:
    """A client on the front desk's roster: their clinician, next appointment and last invitation's state."""

    client: Client
    clinician_name: str | None
    next_appointment_at: datetime | None
    invitation_status: str | None
    invitation_sent_at: datetime | None


def list_roster(
    session: Session,
    user: User,
    *,
    search: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
) -> Page[RosterRow]:
    """One page of the roster in two statements (the count and the page), whatever the page size.

    The clinician is the one of the client's newest open episode (else their newest episode); the next appointment
    is the earliest scheduled one not yet over; the last invitation is the one handed out or sent most recently.
    """
    now = now or utcnow()
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    where = _visible_clients_where(user, search, include_archived=False)
    total = session.scalar(select(func.count()).select_from(Client).where(where)) or 0
    order = (Client.last_name, Client.first_name, Client.id)
    # The page's client ids first, so the per-client lookups below run for these rows only.
    page_ids = (
        select(Client.id).where(where).order_by(*order).limit(per_page).offset(page_offset(page, per_page)).subquery()
    )
    current_episode = (
        select(Episode.id)
        .where(Episode.client_id == Client.id)
        .order_by(Episode.ended_on.is_not(None), Episode.started_on.desc(), Episode.id.desc())
        .limit(1)
        .correlate(Client)
        .scalar_subquery()
    )
    next_appointment = (
        select(func.min(Appointment.starts_at))
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(Episode.client_id == Client.id, Appointment.status == "scheduled", Appointment.ends_at > now)
        .correlate(Client)
        .scalar_subquery()
    )
    last_invitation = (
        select(Invitation.id)
        .join(Episode, Episode.id == Invitation.episode_id)
        .where(Episode.client_id == Client.id, Invitation.sent_at.is_not(None))
        .order_by(Invitation.sent_at.desc(), Invitation.id.desc())
        .limit(1)
        .correlate(Client)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Client, User.name, next_appointment.label("next_at"), Invitation.status, Invitation.sent_at)
        .join(page_ids, page_ids.c.id == Client.id)
        .outerjoin(Episode, Episode.id == current_episode)
        .outerjoin(User, User.id == Episode.clinician_id)
        .outerjoin(Invitation, Invitation.id == last_invitation)
        .order_by(*order)
    ).all()
    items = [
        RosterRow(
            client=client,
            clinician_name=name,
            next_appointment_at=next_at,
            invitation_status=status,
            invitation_sent_at=sent_at,
        )
        for client, name, next_at, status, sent_at in rows
    ]
    return Page(items=items, total=total, page=page, per_page=per_page)


def get_client_for(session: Session, user: User, client_id: int) -> Client | None:
    """The client if user may see their record, else None (the caller answers 404)."""
    return session.scalar(select(Client).where(Client.id == client_id, client_scope(user)))


@dataclass(frozen=True)
class EpisodeRecord:
    """An episode with its clinician's name and its appointments, for a client's record page."""

    episode: Episode
    clinician_name: str
    appointments: list[Appointment]


@dataclass(frozen=True)
class MeasureRow:
    """One completed instrument, as a clinician's record page lists it."""

    episode_id: int
    instrument_code: str
    respondent: str
    completed_at: datetime
    total: float | None


@dataclass(frozen=True)
class ClientRecord:
    """What a record page shows about one client; measures are empty for roles that see no scores."""

    client: Client
    episodes: list[EpisodeRecord]
    measures: list[MeasureRow] = field(default_factory=list)


def get_client_record(session: Session, user: User, client_id: int) -> ClientRecord | None:
    """A client's record (episodes, appointments, and scores, each as far as user may see them), or None."""
    client = get_client_for(session, user, client_id)
    if client is None:
        return None
    # Front desk keeps the whole schedule; clinicians and supervisors see the episodes in their own scope.
    shown = true() if user.role == Role.FRONT_DESK else episode_scope(user)
    rows = session.execute(
        select(Episode, User.name)
        .join(User, User.id == Episode.clinician_id)
        .where(Episode.client_id == client.id, shown)
        .order_by(Episode.started_on.desc(), Episode.id.desc())
    ).all()
    episode_ids = [episode.id for episode, _ in rows]
    appointments: dict[int, list[Appointment]] = {episode_id: [] for episode_id in episode_ids}
    if episode_ids:
        for appointment in session.scalars(
            select(Appointment).where(Appointment.episode_id.in_(episode_ids)).order_by(Appointment.starts_at.desc())
        ):
            appointments[appointment.episode_id].append(appointment)
    episodes = [
        EpisodeRecord(episode=episode, clinician_name=name, appointments=appointments[episode.id])
        for episode, name in rows
    ]
    measures = [
        MeasureRow(
            episode_id=row.episode_id,
            instrument_code=row.instrument_code,
            respondent=row.respondent,
            completed_at=row.completed_at,
            total=row.total,
        )
        for row in session.execute(
            select(
                Administration.episode_id,
                Administration.instrument_code,
                Administration.respondent,
                Administration.completed_at,
                Administration.total,
            )
            .join(Episode, Episode.id == Administration.episode_id)
            .where(Episode.client_id == client.id, episode_scope(user))
            .order_by(Administration.completed_at.desc())
        )
    ]
    return ClientRecord(client=client, episodes=episodes, measures=measures)


def last_client_measure_at() -> ScalarSelect[Any]:
    """Correlated to Episode: when the episode's client last answered a questionnaire."""
    return (
        select(func.max(Administration.completed_at))
        .where(Administration.episode_id == Episode.id, Administration.respondent == "client")
        .correlate(Episode)
        .scalar_subquery()
    )


# What "open" means for an alert on every page that lists or counts them: its status is open or acknowledged,
# that is, every alert not yet resolved (alerts of an ended episode are resolved as "episode ended").


def alert_is_open() -> ColumnElement[bool]:
    """A WHERE clause on Alert: the alert is open or acknowledged (not resolved)."""
    return Alert.status != "resolved"


def open_alert_count() -> ScalarSelect[Any]:
    """Correlated to Episode: how many of the episode's alerts are open (`alert_is_open`)."""
    return (
        select(func.count(Alert.id))
        .where(Alert.episode_id == Episode.id, alert_is_open())
        .correlate(Episode)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class ClinicianCaseload:
    """One clinician's open episodes in a viewer's scope, and when a client of theirs last answered."""

    clinician_id: int
    open_episodes: int
    last_measure_at: datetime | None


def caseload_by_clinician(session: Session, user: User) -> dict[int, ClinicianCaseload]:
    """Open episodes user may see, counted per clinician, with the last client measure on them (one query)."""
    stmt = (
        select(Episode.clinician_id, func.count(func.distinct(Episode.id)), func.max(Administration.completed_at))
        .outerjoin(Administration, and_(Administration.episode_id == Episode.id, Administration.respondent == "client"))
        .where(episode_scope(user), Episode.ended_on.is_(None))
        .group_by(Episode.clinician_id)
    )
    return {
        clinician_id: ClinicianCaseload(clinician_id=clinician_id, open_episodes=int(count), last_measure_at=last)
        for clinician_id, count, last in session.execute(stmt)
    }


def team_members(session: Session, supervisor: User) -> list[User]:
    """Active clinicians and supervisors in a supervisor's team (just the supervisor without a team)."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.id.in_(_team_clinician_ids(supervisor)),
                User.active.is_(True),
                User.role.in_([Role.CLINICIAN.value, Role.SUPERVISOR.value]),
            )
            .order_by(User.name, User.id)
        )
    )


@dataclass(frozen=True)
class PracticeSummary:
    """Practice-wide counts a manager sees instead of individual records."""

    active_clients: int
    open_episodes: int
    clinicians: int
    appointments_next_7_days: int
    measures_last_30_days: int
    open_alerts_by_kind: dict[str, int]


def practice_summary(session: Session, *, now: datetime | None = None) -> PracticeSummary:
    """Counts across the whole practice: no names, no codes, no scores."""
    now = now or utcnow()
    open_episode_clients = select(Episode.client_id).where(Episode.ended_on.is_(None))
    active_clients = session.scalar(
        select(func.count())
        .select_from(Client)
        .where(Client.archived_at.is_(None), Client.id.in_(open_episode_clients))
    )
    open_episodes = session.scalar(select(func.count()).select_from(Episode).where(Episode.ended_on.is_(None)))
    clinicians = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.active.is_(True), User.role.in_([Role.CLINICIAN.value, Role.SUPERVISOR.value]))
    )
    upcoming = session.scalar(
        select(func.count())
        .select_from(Appointment)
        .where(
            Appointment.status == "scheduled",
            Appointment.starts_at >= now,
            Appointment.starts_at < now + timedelta(days=7),
        )
    )
    measures = session.scalar(
        select(func.count()).select_from(Administration).where(Administration.completed_at >= now - timedelta(days=30))
    )
    by_kind = {
        kind: count
        for kind, count in session.execute(select(Alert.kind, func.count()).where(alert_is_open()).group_by(Alert.kind))
    }
    return PracticeSummary(
        active_clients=active_clients or 0,
        open_episodes=open_episodes or 0,
        clinicians=clinicians or 0,
        appointments_next_7_days=upcoming or 0,
        measures_last_30_days=measures or 0,
        open_alerts_by_kind=by_kind,
    )


def list_clinicians(session: Session) -> list[User]:
    """Active staff who can hold an episode (clinicians and supervisors), by name."""
    return list(
        session.scalars(
            select(User)
            .where(User.active.is_(True), User.role.in_([Role.CLINICIAN.value, Role.SUPERVISOR.value]))
            .order_by(User.name, User.id)
        )
    )


@dataclass(frozen=True)
class AppointmentRow:
    """An appointment as the front desk's day list shows it: who, when, with whom, and the survey states."""

    appointment: Appointment
    client_id: int
    client_code: str
    first_name: str
    last_name: str
    clinician_name: str
    episode_open: bool
    # Invitation status per phase ("pre", "post"), when there is one: whether it was answered, never a score.
    invitations: dict[str, str]


def list_appointments(
    session: Session,
    user: User,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    episode_id: int | None = None,
    client_id: int | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[AppointmentRow]:
    """Appointments of the clients user may see, by start time, filtered by period, episode, client or status."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    conditions: list[ColumnElement[bool]] = [client_scope(user)]
    if user.role != Role.FRONT_DESK:
        conditions.append(episode_scope(user))
    if start is not None:
        conditions.append(Appointment.starts_at >= start)
    if end is not None:
        conditions.append(Appointment.starts_at < end)
    if episode_id is not None:
        conditions.append(Appointment.episode_id == episode_id)
    if client_id is not None:
        conditions.append(Episode.client_id == client_id)
    if status is not None:
        conditions.append(Appointment.status == status)
    base = (
        select(Appointment, Client.id, Client.code, Client.first_name, Client.last_name, User.name, Episode.ended_on)
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(User, User.id == Episode.clinician_id)
        .where(and_(*conditions))
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(Appointment.starts_at, Appointment.id).limit(per_page).offset(page_offset(page, per_page))
    ).all()
    ids = [row[0].id for row in rows]
    states: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for appointment_id, phase, invitation_status in session.execute(
            select(Invitation.appointment_id, Invitation.phase, Invitation.status).where(
                Invitation.appointment_id.in_(ids)
            )
        ):
            if appointment_id is not None:
                states[appointment_id][phase] = invitation_status
    items = [
        AppointmentRow(
            appointment=appointment,
            client_id=cid,
            client_code=code,
            first_name=first,
            last_name=last,
            clinician_name=clinician,
            episode_open=ended_on is None,
            invitations=states[appointment.id],
        )
        for appointment, cid, code, first, last, clinician, ended_on in rows
    ]
    return Page(items=items, total=total, page=page, per_page=per_page)


def get_appointment_for(session: Session, user: User, appointment_id: int) -> Appointment | None:
    """The appointment if user may see its client (and, for clinical roles, its episode), else None."""
    conditions: list[ColumnElement[bool]] = [Appointment.id == appointment_id, client_scope(user)]
    if user.role != Role.FRONT_DESK:
        conditions.append(episode_scope(user))
    return session.scalar(
        select(Appointment)
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(*conditions)
    )


def get_episode_for(session: Session, user: User, episode_id: int) -> Episode | None:
    """The episode if user may see its client (and, for clinical roles, the episode itself), else None."""
    conditions: list[ColumnElement[bool]] = [Episode.id == episode_id, client_scope(user)]
    if user.role != Role.FRONT_DESK:
        conditions.append(episode_scope(user))
    return session.scalar(select(Episode).join(Client, Client.id == Episode.client_id).where(*conditions))
