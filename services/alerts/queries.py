"""Alert reads, scoped to what the asking staff member may see.

- clinician: alerts on episodes where they are the clinician;
- supervisor: alerts on episodes of every clinician in their team (themselves included); with no team, their own;
- front desk, manager, admin, and anyone inactive: none (managers see rates in reports, not alerts).

An alert outside the scope is reported as missing (None), so a page answers 404 and does not confirm it exists.
The scope is `services.clients.queries.episode_scope`, the one rule for who sees clinical content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, selectinload

from services.accounts.models import Role, User
from services.alerts.evaluation import ALERT_KINDS
from services.alerts.models import Alert, AlertAction, SignalRecord
from services.alerts.repair import RepairSuggestion, suggestions_for_evidence
from services.alerts.summary import alert_line, describe_signal
from services.clients.chart import RATE_WITHIN, RATEABLE_STATUSES
from services.clients.models import Appointment, Client, Episode
from services.clients.queries import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    Page,
    alert_is_open,
    caseload_by_clinician,
    episode_scope,
    last_client_measure_at,
    open_alert_count,
    team_members,
)
from services.db import utcnow
from services.inputs import page_offset
from services.measures import all_instruments
from services.signals import LOW_ALLIANCE
from services.surveys.models import Administration

# Risk first, then alliance, then outcome (issue 5: what a clinician should look at first).
_KIND_RANK = case({kind: rank for rank, kind in enumerate(ALERT_KINDS)}, value=Alert.kind, else_=len(ALERT_KINDS))


@dataclass(frozen=True)
class AlertListItem:
    """One row of an alert list: the alert and who it is about (for staff who may see it)."""

    alert: Alert
    client_id: int
    client_code: str
    client_name: str
    episode_id: int
    clinician_id: int

    def summary(self, language: str = "en") -> str:
        """Return the alert's one-line reason in a language."""
        return alert_line(self.alert.kind, self.alert.summary, self.alert.evidence, language=language)


@dataclass(frozen=True)
class EvidenceLine:
    """One piece of an alert's evidence, for display: the session, the rule, a plain sentence and the numbers."""

    session: int | None
    kind: str
    at: str | None
    text: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class AlertDetail:
    """An alert with everything its page shows: who, why (evidence lines), what was done, what to try."""

    alert: Alert
    client: Client
    episode: Episode
    actions: list[AlertAction]
    signals: list[SignalRecord]
    evidence: list[EvidenceLine] = field(default_factory=list)
    suggestions: list[RepairSuggestion] = field(default_factory=list)


def list_open_alerts_for(session: Session, user: User, *, limit: int | None = None) -> list[AlertListItem]:
    """Non-resolved alerts user may see: risk, then alliance, then outcome; newest first within a kind (one query)."""
    stmt = (
        select(Alert, Client.id, Client.code, Client.first_name, Client.last_name, Episode.id, Episode.clinician_id)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Alert.status != "resolved", episode_scope(user))
        .order_by(_KIND_RANK, Alert.opened_at.desc(), Alert.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        AlertListItem(
            alert=alert,
            client_id=client_id,
            client_code=code,
            client_name=f"{first} {last}",
            episode_id=episode_id,
            clinician_id=clinician_id,
        )
        for alert, client_id, code, first, last, episode_id, clinician_id in session.execute(stmt)
    ]


def get_alert_for(
    session: Session, user: User, alert_id: int, *, language: str = "en", for_update: bool = False
) -> AlertDetail | None:
    """The alert with its evidence, actions and repair suggestions, or None when user may not see it.

    Pass for_update=True before acting on it (acknowledge, resolve): the alert row is locked on PostgreSQL, so an
    evaluation adding evidence or repairing it at the same moment waits rather than being overwritten.
    """
    stmt = (
        select(Alert, Episode, Client)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Alert.id == alert_id, episode_scope(user))
        .options(selectinload(Alert.actions))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Alert).execution_options(populate_existing=True)
    row = session.execute(stmt).one_or_none()
    if row is None:
        return None
    alert, episode, client = row
    administration_ids = sorted(
        {int(entry["administration_id"]) for entry in alert.evidence if "administration_id" in entry}
    )
    signals = (
        list(
            session.scalars(
                select(SignalRecord)
                .where(SignalRecord.administration_id.in_(administration_ids))
                .order_by(SignalRecord.session, SignalRecord.id)
            )
        )
        if administration_ids
        else []
    )
    return AlertDetail(
        alert=alert,
        client=client,
        episode=episode,
        actions=list(alert.actions),
        signals=signals,
        evidence=evidence_lines(alert.evidence, language=language),
        suggestions=suggestions_for_evidence(alert.evidence) if alert.kind == "alliance" else [],
    )


def evidence_lines(entries: Sequence[dict[str, Any]], *, language: str = "en") -> list[EvidenceLine]:
    """Turn an alert's evidence entries into plain sentences with their numbers, in session order."""
    lines = []
    for entry in entries:
        numbers = dict(entry.get("evidence") or {})
        numbers.setdefault("session", entry.get("session"))
        kind = str(entry.get("kind", ""))
        lines.append(
            EvidenceLine(
                session=entry.get("session"),
                kind=kind,
                at=entry.get("at"),
                text=describe_signal(kind, numbers, instrument=str(entry.get("instrument", "")), language=language),
                numbers=numbers,
            )
        )
    return lines


# Paginated alert lists (the alerts page and the API) --------------------------------------------------------------

ALERT_STATUSES = ("open", "acknowledged", "resolved")


def list_alerts_page(
    session: Session,
    user: User,
    *,
    status: str | None = None,
    kind: str | None = None,
    active_only: bool = False,
    clinician_id: int | None = None,
    opened_before: datetime | None = None,
    opened_since: datetime | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[AlertListItem]:
    """Alerts user may see, filtered by status, kind, clinician and when they opened, a page at a time (two queries).

    Unresolved first (risk, then alliance, then outcome; newest first within a kind), then resolved ones, newest
    resolution first. Unknown status or kind values match nothing; the caller validates them. active_only keeps
    the open ones (`alert_is_open`), as every open-alert count does.
    """
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    conditions: list[ColumnElement[bool]] = [episode_scope(user)]
    if status is not None:
        conditions.append(Alert.status == status)
    if active_only:
        conditions.append(alert_is_open())
    if kind is not None:
        conditions.append(Alert.kind == kind)
    if clinician_id is not None:
        conditions.append(Episode.clinician_id == clinician_id)
    if opened_before is not None:
        conditions.append(Alert.opened_at < opened_before)
    if opened_since is not None:
        conditions.append(Alert.opened_at >= opened_since)
    where = and_(*conditions)
    base = (
        select(Alert, Client.id, Client.code, Client.first_name, Client.last_name, Episode.id, Episode.clinician_id)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(where)
    )
    total = session.scalar(select(func.count(Alert.id)).join(Episode, Episode.id == Alert.episode_id).where(where)) or 0
    resolved_last = case((Alert.status == "resolved", 1), else_=0)
    rows = session.execute(
        base.order_by(
            resolved_last,
            case((Alert.status == "resolved", 0), else_=_KIND_RANK),
            func.coalesce(Alert.resolved_at, Alert.opened_at).desc(),
            Alert.id.desc(),
        )
        .limit(per_page)
        .offset(page_offset(page, per_page))
    )
    items = [
        AlertListItem(
            alert=alert,
            client_id=client_id,
            client_code=code,
            client_name=f"{first} {last}",
            episode_id=episode_id,
            clinician_id=clinician_id,
        )
        for alert, client_id, code, first, last, episode_id, clinician_id in rows
    ]
    return Page(items=items, total=total, page=page, per_page=per_page)


# The caseload with a status per client ---------------------------------------------------------------------------

# Status of a caseload row, most urgent first: an open risk alert (red), an open alliance or outcome alert (amber),
# the last Partnership Check below the low cutoff (a prompt to talk about the partnership; never an alert), or ok.
CASELOAD_STATUSES = ("risk", "alliance", "outcome", "partnership", "ok")


@dataclass(frozen=True)
class CaseloadStatusRow:
    """One open episode on a caseload page, with its status colour and what the clinician can do next."""

    client_id: int
    code: str
    first_name: str
    last_name: str
    episode_id: int
    clinician_id: int
    clinician_name: str
    started_on: date
    last_measure_at: datetime | None
    open_alerts: int
    top_alert_kind: str | None
    low_alliance: bool
    next_appointment_at: datetime | None
    # The latest session of the last two weeks, when the clinician has not rated the partnership for it yet.
    rate_appointment_id: int | None

    @property
    def status(self) -> str:
        """risk, alliance, outcome, partnership or ok."""
        if self.top_alert_kind in ("risk", "alliance", "outcome"):
            return self.top_alert_kind
        return "partnership" if self.low_alliance else "ok"

    @property
    def colour(self) -> str:
        """red, amber, prompt or ok: what the row's status looks like."""
        return {"risk": "red", "alliance": "amber", "outcome": "amber", "partnership": "prompt"}.get(self.status, "ok")


def _kind_of_rank(rank: int | None) -> str | None:
    return ALERT_KINDS[int(rank)] if rank is not None and 0 <= int(rank) < len(ALERT_KINDS) else None


def _codes(kind: str) -> list[str]:
    return [instrument.code for instrument in all_instruments() if instrument.kind == kind]


def caseload_page(
    session: Session,
    user: User,
    *,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
) -> Page[CaseloadStatusRow]:
    """Open episodes user may see, most urgent status first, then by client name: two queries whatever the size.

    A clinician sees their own caseload and a supervisor their team's (`episode_scope`).
    """
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    now = now or utcnow()
    where = and_(episode_scope(user), Episode.ended_on.is_(None))
    total = session.scalar(select(func.count(Episode.id)).where(where)) or 0

    last_measure = last_client_measure_at()
    open_alerts = open_alert_count()
    top_rank = (
        select(func.min(_KIND_RANK))
        .where(Alert.episode_id == Episode.id, Alert.status != "resolved")
        .correlate(Episode)
        .scalar_subquery()
    )
    latest_alliance = (
        select(Administration.id)
        .where(Administration.episode_id == Episode.id, Administration.instrument_code.in_(_codes("alliance")))
        .order_by(Administration.completed_at.desc(), Administration.id.desc())
        .limit(1)
        .correlate(Episode)
        .scalar_subquery()
    )
    low_alliance = exists(
        select(SignalRecord.id).where(
            SignalRecord.administration_id == latest_alliance, SignalRecord.kind == LOW_ALLIANCE
        )
    ).correlate(Episode)
    next_appointment = (
        select(func.min(Appointment.starts_at))
        .where(Appointment.episode_id == Episode.id, Appointment.status == "scheduled", Appointment.starts_at >= now)
        .correlate(Episode)
        .scalar_subquery()
    )
    last_session = (
        select(Appointment.id)
        .where(
            Appointment.episode_id == Episode.id,
            Appointment.status.in_(RATEABLE_STATUSES),
            Appointment.starts_at <= now,
            Appointment.starts_at >= now - RATE_WITHIN,
        )
        .order_by(Appointment.starts_at.desc(), Appointment.id.desc())
        .limit(1)
        .correlate(Episode)
        .scalar_subquery()
    )
    rated = exists(
        select(Administration.id).where(
            Administration.appointment_id == last_session,
            Administration.instrument_code.in_(_codes("therapist_alliance")),
        )
    ).correlate(Episode)
    rate_appointment = case((rated, literal(None)), else_=last_session)
    status_rank = case(
        (top_rank.is_not(None), top_rank),
        (low_alliance, len(ALERT_KINDS)),
        else_=len(ALERT_KINDS) + 1,
    )
    stmt = (
        select(
            Client.id,
            Client.code,
            Client.first_name,
            Client.last_name,
            Episode.id,
            Episode.clinician_id,
            User.name,
            Episode.started_on,
            last_measure.label("last_measure_at"),
            open_alerts.label("open_alerts"),
            top_rank.label("top_rank"),
            low_alliance.label("low_alliance"),
            next_appointment.label("next_appointment_at"),
            rate_appointment.label("rate_appointment_id"),
        )
        .join(Client, Client.id == Episode.client_id)
        .join(User, User.id == Episode.clinician_id)
        .where(where)
        .order_by(status_rank, Client.last_name, Client.first_name, Episode.id)
        .limit(per_page)
        .offset(page_offset(page, per_page))
    )
    items = [
        CaseloadStatusRow(
            client_id=row[0],
            code=row[1],
            first_name=row[2],
            last_name=row[3],
            episode_id=row[4],
            clinician_id=row[5],
            clinician_name=row[6],
            started_on=row[7],
            last_measure_at=row.last_measure_at,
            open_alerts=int(row.open_alerts or 0),
            top_alert_kind=_kind_of_rank(row.top_rank),
            low_alliance=bool(row.low_alliance),
            next_appointment_at=row.next_appointment_at,
            rate_appointment_id=row.rate_appointment_id,
        )
        for row in session.execute(stmt)
    ]
    return Page(items=items, total=total, page=page, per_page=per_page)


def actor_names(session: Session, user_ids: Sequence[int | None]) -> dict[int, str]:
    """Names of the staff who acted on an alert, by id (one query)."""
    wanted = sorted({user_id for user_id in user_ids if user_id is not None})
    if not wanted:
        return {}
    return {user_id: name for user_id, name in session.execute(select(User.id, User.name).where(User.id.in_(wanted)))}


# Open-alert counts and the supervisor's team overview ------------------------------------------------------------
# "Open" is `alert_is_open`: status open or acknowledged (not resolved), on any episode of the viewer's scope, ended
# or not. The counts every page shows come from `open_alert_counts`, so the team table, the headings and the
# clinician's own alert list agree.


@dataclass(frozen=True)
class OpenAlertCounts:
    """How many alerts are open, by the episode's clinician and the alert's kind."""

    by_clinician_kind: dict[tuple[int, str], int]

    def for_clinician(self, clinician_id: int, kind: str | None = None) -> int:
        """Open alerts on one clinician's episodes (of one kind, or all)."""
        return sum(
            count
            for (clinician, alert_kind), count in self.by_clinician_kind.items()
            if clinician == clinician_id and kind in (None, alert_kind)
        )

    @property
    def by_clinician(self) -> dict[int, int]:
        """Open alerts per clinician (only clinicians with at least one)."""
        totals: dict[int, int] = {}
        for (clinician, _kind), count in self.by_clinician_kind.items():
            totals[clinician] = totals.get(clinician, 0) + count
        return totals

    @property
    def by_kind(self) -> dict[str, int]:
        """Open alerts per kind (only kinds with at least one)."""
        totals: dict[str, int] = {}
        for (_clinician, kind), count in self.by_clinician_kind.items():
            totals[kind] = totals.get(kind, 0) + count
        return totals

    @property
    def total(self) -> int:
        """All open alerts counted."""
        return sum(self.by_clinician_kind.values())


def open_alert_counts(session: Session, user: User, *, clinician_ids: Sequence[int] | None = None) -> OpenAlertCounts:
    """Open alerts user may see, counted per clinician and kind in one grouped query (optionally some clinicians)."""
    conditions: list[ColumnElement[bool]] = [alert_is_open(), episode_scope(user)]
    if clinician_ids is not None:
        conditions.append(Episode.clinician_id.in_(list(clinician_ids)))
    stmt = (
        select(Episode.clinician_id, Alert.kind, func.count(Alert.id))
        .join(Episode, Episode.id == Alert.episode_id)
        .where(*conditions)
        .group_by(Episode.clinician_id, Alert.kind)
    )
    return OpenAlertCounts({(clinician, kind): int(count) for clinician, kind, count in session.execute(stmt)})


@dataclass(frozen=True)
class TeamMemberRow:
    """One line of a supervisor's team table."""

    user_id: int
    name: str
    role: str
    active: bool
    open_episodes: int
    open_alerts: int
    open_risk_alerts: int
    last_measure_at: datetime | None


def team_overview(session: Session, supervisor: User, *, counts: OpenAlertCounts | None = None) -> list[TeamMemberRow]:
    """The team table: each clinician's open episodes and open alerts, by name (three or four queries in all).

    Active clinicians of the team are listed even with nothing open; a supervisor (the viewer included) only when
    they hold open episodes or open alerts; an inactive account whenever open alerts or open episodes in the scope
    still name it, so the rows add up to what the alert list shows.
    """
    members = team_members(session, supervisor)
    caseloads = caseload_by_clinician(session, supervisor)
    counts = counts if counts is not None else open_alert_counts(session, supervisor)
    missing = (set(caseloads) | set(counts.by_clinician)) - {member.id for member in members}
    others = list(session.scalars(select(User).where(User.id.in_(sorted(missing))))) if missing else []
    rows = []
    for user in sorted([*members, *others], key=lambda u: (u.name.casefold(), u.id)):
        held = caseloads.get(user.id)
        open_episodes = held.open_episodes if held is not None else 0
        open_alerts = counts.for_clinician(user.id)
        if user.role == Role.SUPERVISOR and not open_episodes and not open_alerts:
            continue
        rows.append(
            TeamMemberRow(
                user_id=user.id,
                name=user.name,
                role=str(user.role),
                active=bool(user.active),
                open_episodes=open_episodes,
                open_alerts=open_alerts,
                open_risk_alerts=counts.for_clinician(user.id, "risk"),
                last_measure_at=held.last_measure_at if held is not None else None,
            )
        )
    return rows
