"""Read-only queries for the monthly report and the report listings.

`monthly_aggregates` computes every figure of a monthly report with GROUP BY on the database server, for one scope
(the practice, a team, or one clinician's caseload) and a window of calendar months in the practice's time zone.
Counts come back per (month, clinician) and, where a figure is a count of distinct clients, per month as well; the
report's trend and its sections are sums over the same rows, so the summary page always says what the sections say.

Months: an event belongs to the month (practice time zone) of its timestamp, compared with UTC instants computed
from the zone, so daylight-saving changes are exact. Bucketing is a CASE over those instants inside a subquery,
which is the same SQL on PostgreSQL and SQLite. Clients appear only in the not-on-track list, by their code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from services.accounts.models import Team, User
from services.alerts.models import Alert, SignalRecord
from services.clients.models import Appointment, Client, Episode
from services.db import UTCDateTime
from services.measures import load_instrument
from services.measures.instrument import Cutoff
from services.reporting.models import Report
from services.reporting.periods import Month, ReportScope
from services.reporting.sql import grouped_percentiles, hours_between, tune_for_reporting
from services.reviews.models import Review
from services.signals import (
    COMPONENT_DROP,
    NOT_ON_TRACK,
    OFF_TRACK,
    PERSPECTIVE_GAP,
    RELIABLE_DETERIORATION,
    SignalSettings,
    effective_cutoff,
)
from services.surveys.models import Administration, Invitation

PHQ9 = "PHQ-9"
GAD7 = "GAD-7"
PARTNERSHIP = "PARTNERSHIP-CHECK"
THERAPIST_PARTNERSHIP = "THERAPIST-PARTNERSHIP-CHECK"
ALERT_KINDS = ("alliance", "outcome", "risk")
OUTCOME_OPENING = (RELIABLE_DETERIORATION, OFF_TRACK, NOT_ON_TRACK)

Column = ColumnElement[Any] | QueryableAttribute[Any]


class ScopeNotFoundError(LookupError):
    """The team or clinician a scope names does not exist."""


# ---------------------------------------------------------------------------------------------------------------
# Plain results


@dataclass(frozen=True)
class ActivityCount:
    """Clients with an episode open during the month, and how many of them had an alert raised that month."""

    period: str
    clinician_id: int | None  # None: distinct over the whole scope
    active_clients: int
    clients_flagged: int


@dataclass(frozen=True)
class SessionCount:
    """Sessions held (appointments completed or checked in) in a month."""

    period: str
    clinician_id: int
    sessions: int


@dataclass(frozen=True)
class EngagementCount:
    """Invitations offered in a month through one channel, and how many of them were opened and completed."""

    period: str
    clinician_id: int
    channel: str
    sent: int
    opened: int
    completed: int


@dataclass(frozen=True)
class OutcomeCount:
    """Episodes closed in a month and their NHS Talking Therapies classification."""

    period: str
    clinician_id: int
    closed: int
    assessed: int
    reliable_improvement: int
    reliable_deterioration: int
    recovery_eligible: int
    recovered: int
    reliable_recovery: int


@dataclass(frozen=True)
class PartnershipCount:
    """Partnership Check administrations by clients in a month, and the sum of their totals."""

    period: str
    clinician_id: int
    sessions: int
    total_sum: float


@dataclass(frozen=True)
class AlertCount:
    """Alerts of one kind raised (opened), and resolved, in a month."""

    period: str
    clinician_id: int
    kind: str
    raised: int
    resolved: int
    repaired: int


@dataclass(frozen=True)
class AcknowledgementFigures:
    """Alerts acknowledged in a month by kind, and the median and 90th percentile hours from opening to it."""

    period: str
    by_kind: tuple[tuple[str, int], ...]
    median_hours: float | None
    p90_hours: float | None

    @property
    def total(self) -> int:
        """Alerts of every kind acknowledged in the month."""
        return sum(n for _, n in self.by_kind)


@dataclass(frozen=True)
class NotOnTrackRow:
    """An outcome alert open at month end on an episode still open, with the numbers behind it."""

    alert_id: int
    client_code: str
    clinician: str
    measure: str
    first_score: float | None
    latest_score: float | None
    sessions: int
    flagged_at: datetime
    rule_kinds: tuple[str, ...]
    acknowledged: bool
    clinician_id: int | None = None


@dataclass(frozen=True)
class MonthDetail:
    """Figures shown for the report's month only (no trend)."""

    checkpoint_episodes: int
    checkpoint_flagged: int
    clients_rated: int
    clients_with_rupture: int
    unrepaired_open: int
    repair_days_median: float | None
    tension_reports: int
    therapist_rated_sessions: int
    perspective_gaps: int
    component_drops: tuple[tuple[str, int], ...]
    escalations: int
    risk_alerts: int
    risk_within_window: int
    risk_ack_median_minutes: float | None
    risk_ack_p90_minutes: float | None
    reviews_opened: int
    reviews_completed_on_time: int
    reviews_completed_late: int
    reviews_overdue: int


@dataclass(frozen=True)
class MonthlyAggregates:
    """Everything the monthly report needs, as plain data; months are oldest first, ending with the report's."""

    scope: ReportScope
    scope_label: str
    months: tuple[Month, ...]
    clinician_names: dict[int, str]
    activity: tuple[ActivityCount, ...]
    sessions: tuple[SessionCount, ...]
    engagement: tuple[EngagementCount, ...]
    outcomes: tuple[OutcomeCount, ...]
    partnership: tuple[PartnershipCount, ...]
    alerts: tuple[AlertCount, ...]
    acknowledgements: tuple[AcknowledgementFigures, ...]
    detail: MonthDetail
    not_on_track: tuple[NotOnTrackRow, ...]
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    clinician_teams: dict[int, str] = field(default_factory=dict)  # clinician id -> current team's name
    team_names: tuple[str, ...] = ()  # every team of the practice, by name (the team reports)

    @property
    def period(self) -> str:
        """The report's month."""
        return self.months[-1].period


# ---------------------------------------------------------------------------------------------------------------
# Building blocks


def _scope_clauses(scope: ReportScope) -> list[ColumnElement[bool]]:
    """Conditions on Episode that keep a query inside the scope (a team is its clinicians' current caseloads)."""
    if scope.kind == "team":
        return [Episode.clinician_id.in_(select(User.id).where(User.team_id == scope.id))]
    if scope.kind == "clinician":
        return [Episode.clinician_id == scope.id]
    return []


def _bucket(ts: Column, months: Sequence[Month]) -> ColumnElement[str]:
    """The period (YYYY-MM) an instant inside the window falls in: a CASE over the months' UTC boundaries."""
    # Periods are validated YYYY-MM strings: inlining them keeps the expression free of extra parameters.
    label = [literal_column(f"'{m.period}'", String()) for m in months]
    if len(months) == 1:
        return label[0]
    whens = [(ts < literal(m.end, UTCDateTime()), label[i]) for i, m in enumerate(months[:-1])]
    return case(*whens, else_=label[-1])


def _date_bucket(day: Column, months: Sequence[Month]) -> ColumnElement[str]:
    """The period a local date inside the window falls in."""
    label = [literal_column(f"'{m.period}'", String()) for m in months]
    if len(months) == 1:
        return label[0]
    whens = [(day <= literal(m.last_day, Date()), label[i]) for i, m in enumerate(months[:-1])]
    return case(*whens, else_=label[-1])


def _within(ts: Column, months: Sequence[Month]) -> ColumnElement[bool]:
    return and_(ts >= literal(months[0].start, UTCDateTime()), ts < literal(months[-1].end, UTCDateTime()))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _flags(score: ColumnElement[Any], cutoff: Cutoff) -> ColumnElement[bool]:
    """SQL for Cutoff.flags: the score is on the flagged side of the cutoff."""
    value = literal(float(cutoff.value), Float())
    return {
        "<": score < value,
        "<=": score <= value,
        ">": score > value,
        ">=": score >= value,
    }[cutoff.operator]


def _months_table(months: Sequence[Month]) -> Any:
    """A small table of the months (period, first and last local day) to join episodes that span several."""
    rows = [
        select(
            literal(m.period, String()).label("period"),
            literal(m.first_day, Date()).label("first_day"),
            literal(m.last_day, Date()).label("last_day"),
        )
        for m in months
    ]
    return (rows[0] if len(rows) == 1 else union_all(*rows)).cte("report_months")


def _raised_at() -> tuple[Any, ColumnElement[datetime]]:
    """The opening administration (outer-joined) and the instant an alert counts from.

    An alert counts in the month of the answer that raised it (its opening administration), falling back to its
    opening time: an answer given at 23:59 on the last day and evaluated after midnight stays in its own month.
    """
    opening = aliased(Administration, name="opening")
    return opening, func.coalesce(opening.completed_at, Alert.opened_at)


def _client_scored(code: str | Sequence[str]) -> list[ColumnElement[bool]]:
    codes = [code] if isinstance(code, str) else list(code)
    return [
        Administration.instrument_code.in_(codes),
        Administration.respondent == "client",
        Administration.complete.is_(True),
        Administration.total.is_not(None),
    ]


# ---------------------------------------------------------------------------------------------------------------
# The queries


def scope_label(session: Session, scope: ReportScope) -> str:
    """How the report names its scope; raises ScopeNotFoundError for an unknown team or clinician."""
    if scope.kind == "practice":
        return "Whole practice"
    if scope.kind == "team":
        name = session.scalar(select(Team.name).where(Team.id == scope.id))
        if name is None:
            raise ScopeNotFoundError(f"no team with id {scope.id}")
        return f"Team: {name}"
    name = session.scalar(select(User.name).where(User.id == scope.id))
    if name is None:
        raise ScopeNotFoundError(f"no staff member with id {scope.id}")
    return f"Clinician: {name}"


def activity_counts(session: Session, scope: ReportScope, months: Sequence[Month]) -> list[ActivityCount]:
    """Active clients (an episode open at some point in the month) and those flagged, per clinician and overall."""
    table = _months_table(months)
    opening, raised_at = _raised_at()
    raised = (
        select(Alert.episode_id.label("episode_id"), _bucket(raised_at, months).label("period"))
        .select_from(Alert)
        .outerjoin(opening, opening.id == Alert.opened_by_administration_id)
        .where(_within(raised_at, months))
        .distinct()
        .subquery("raised")
    )
    active = (
        select(
            table.c.period.label("period"),
            Episode.clinician_id.label("clinician_id"),
            Episode.client_id.label("client_id"),
            raised.c.episode_id.label("flagged_episode"),
        )
        .select_from(Episode)
        .join(
            table,
            and_(
                Episode.started_on <= table.c.last_day,
                or_(Episode.ended_on.is_(None), Episode.ended_on >= table.c.first_day),
            ),
        )
        .outerjoin(raised, and_(raised.c.episode_id == Episode.id, raised.c.period == table.c.period))
        .where(*_scope_clauses(scope))
        .subquery("active")
    )
    flagged = func.count(case((active.c.flagged_episode.is_not(None), active.c.client_id)).distinct())
    out: list[ActivityCount] = []
    per_clinician = select(
        active.c.period, active.c.clinician_id, func.count(active.c.client_id.distinct()), flagged
    ).group_by(active.c.period, active.c.clinician_id)
    for period, clinician_id, n, k in session.execute(per_clinician):
        out.append(ActivityCount(str(period), int(clinician_id), int(n), int(k)))
    overall = select(active.c.period, func.count(active.c.client_id.distinct()), flagged).group_by(active.c.period)
    for period, n, k in session.execute(overall):
        out.append(ActivityCount(str(period), None, int(n), int(k)))
    return out


def session_counts(session: Session, scope: ReportScope, months: Sequence[Month]) -> list[SessionCount]:
    """Sessions held per clinician and month: appointments completed, or checked in and not cancelled."""
    held = or_(
        Appointment.status == "completed",
        and_(Appointment.checked_in_at.is_not(None), Appointment.status.not_in(("cancelled", "no_show"))),
    )
    inner = (
        select(_bucket(Appointment.starts_at, months).label("period"), Episode.clinician_id.label("clinician_id"))
        .select_from(Appointment)
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(held, _within(Appointment.starts_at, months), *_scope_clauses(scope))
        .subquery("held")
    )
    stmt = select(inner.c.period, inner.c.clinician_id, func.count()).group_by(inner.c.period, inner.c.clinician_id)
    return [SessionCount(str(p), int(c), int(n)) for p, c, n in session.execute(stmt)]


def engagement_counts(session: Session, scope: ReportScope, months: Sequence[Month]) -> list[EngagementCount]:
    """Invitations offered per month, clinician and channel, and how many of them were opened and completed.

    An invitation counts in the month it was sent (or, for a kiosk or copied link never sent, first opened); the
    opened and completed counts are of those same invitations, whenever the client got to them.
    """
    offered = func.coalesce(Invitation.sent_at, Invitation.opened_at, Invitation.started_at, Invitation.completed_at)
    offered_unsent = func.coalesce(Invitation.opened_at, Invitation.started_at, Invitation.completed_at)
    inner = (
        select(
            _bucket(offered, months).label("period"),
            Episode.clinician_id.label("clinician_id"),
            Invitation.channel.label("channel"),
            or_(
                Invitation.opened_at.is_not(None),
                Invitation.started_at.is_not(None),
                Invitation.completed_at.is_not(None),
            ).label("opened"),
            Invitation.completed_at.is_not(None).label("completed"),
        )
        .select_from(Invitation)
        .join(Episode, Episode.id == Invitation.episode_id)
        .where(
            # The same condition as offered-within-the-window, spelt so that PostgreSQL can estimate it from the
            # statistics of sent_at (it cannot for a COALESCE): with the estimate right it hashes, not sorts.
            or_(
                _within(Invitation.sent_at, months),
                and_(
                    Invitation.sent_at.is_(None),
                    _within(offered_unsent, months),
                ),
            ),
            *_scope_clauses(scope),
        )
        .subquery("offered")
    )
    stmt = select(
        inner.c.period,
        inner.c.clinician_id,
        inner.c.channel,
        func.count(),
        _count_if(inner.c.opened),
        _count_if(inner.c.completed),
    ).group_by(inner.c.period, inner.c.clinician_id, inner.c.channel)
    return [
        EngagementCount(str(p), int(c), str(ch), int(n), int(o), int(k)) for p, c, ch, n, o, k in session.execute(stmt)
    ]


def outcome_counts(
    session: Session, scope: ReportScope, months: Sequence[Month], *, settings: SignalSettings
) -> list[OutcomeCount]:
    """Episodes closed per month and clinician, classified from their first and last PHQ-9 and GAD-7 on the server.

    NHS Talking Therapies definitions, with the cutoffs and reliable-change values of the instrument definitions (and
    the practice's cutoff overrides): the same rule as services.signals.episode_outcome, written as SQL so that
    thousands of episodes are counted without leaving the database. An episode is assessed when it has at least two
    complete scores on each measure.
    """
    phq, gad = load_instrument(PHQ9), load_instrument(GAD7)
    phq_cut, gad_cut = effective_cutoff(phq, settings), effective_cutoff(gad, settings)
    if phq_cut is None or gad_cut is None or phq.reliable_change is None or gad.reliable_change is None:
        raise ValueError("the PHQ-9 and GAD-7 definitions must carry a cutoff and a reliable-change value")
    phq_rc = literal(float(phq.reliable_change.value), Float())
    gad_rc = literal(float(gad.reliable_change.value), Float())

    ended_in_window = (
        Episode.ended_on >= literal(months[0].first_day, Date()),
        Episode.ended_on <= literal(months[-1].last_day, Date()),
        *_scope_clauses(scope),
    )
    period = _date_bucket(Episode.ended_on, months)
    closed: dict[tuple[str, int], int] = {}
    inner = (
        select(period.label("period"), Episode.clinician_id.label("clinician_id"))
        .where(*ended_in_window)
        .subquery("closed")
    )
    for p_, c_, n_ in session.execute(
        select(inner.c.period, inner.c.clinician_id, func.count()).group_by(inner.c.period, inner.c.clinician_id)
    ):
        closed[(str(p_), int(c_))] = int(n_)

    partition = (Administration.episode_id, Administration.instrument_code)
    # A join (not IN): PostgreSQL hashes the closed episodes and scans the scores once. One sort serves both windows:
    # the position in completion order, and the series length (the last score is at position n).
    ranked = (
        select(
            Administration.episode_id.label("episode_id"),
            period.label("period"),
            Episode.clinician_id.label("clinician_id"),
            Administration.instrument_code.label("code"),
            Administration.total.label("total"),
            func.row_number()
            .over(partition_by=partition, order_by=(Administration.completed_at, Administration.id))
            .label("rn_first"),
            func.count().over(partition_by=partition).label("n"),
        )
        .select_from(Administration)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(*_client_scored((PHQ9, GAD7)), *ended_in_window)
        .subquery("ranked")
    )

    def pick(code: str, last: bool) -> Any:
        at = ranked.c.rn_first == (ranked.c.n if last else 1)
        return func.max(case((and_(ranked.c.code == code, at), ranked.c.total)))

    pairs = (
        select(
            ranked.c.period,
            ranked.c.clinician_id,
            pick(PHQ9, last=False).label("phq_first"),
            pick(PHQ9, last=True).label("phq_last"),
            pick(GAD7, last=False).label("gad_first"),
            pick(GAD7, last=True).label("gad_last"),
            _count_if(ranked.c.code == PHQ9).label("phq_n"),
            _count_if(ranked.c.code == GAD7).label("gad_n"),
        )
        .group_by(ranked.c.episode_id, ranked.c.period, ranked.c.clinician_id)
        .subquery("pairs")
    )
    p = pairs.c
    assessed = and_(p.phq_n >= 2, p.gad_n >= 2)
    improved = or_(p.phq_first - p.phq_last >= phq_rc, p.gad_first - p.gad_last >= gad_rc)
    deteriorated = or_(p.phq_last - p.phq_first >= phq_rc, p.gad_last - p.gad_first >= gad_rc)
    reliable_improvement = and_(assessed, improved, not_(deteriorated))
    reliable_deterioration = and_(assessed, deteriorated, not_(improved))
    case_start = or_(_flags(p.phq_first, phq_cut), _flags(p.gad_first, gad_cut))
    case_end = or_(_flags(p.phq_last, phq_cut), _flags(p.gad_last, gad_cut))
    eligible = and_(assessed, case_start)
    recovered = and_(eligible, not_(case_end))
    stmt = select(
        p.period,
        p.clinician_id,
        _count_if(assessed),
        _count_if(reliable_improvement),
        _count_if(reliable_deterioration),
        _count_if(eligible),
        _count_if(recovered),
        _count_if(and_(recovered, reliable_improvement)),
    ).group_by(p.period, p.clinician_id)
    classified = {(str(row[0]), int(row[1])): [int(v) for v in row[2:]] for row in session.execute(stmt)}
    return [
        OutcomeCount(key[0], key[1], n, *classified.get(key, [0, 0, 0, 0, 0, 0])) for key, n in sorted(closed.items())
    ]


def partnership_counts(session: Session, scope: ReportScope, months: Sequence[Month]) -> list[PartnershipCount]:
    """Partnership Check administrations by clients per month and clinician, with the sum of their totals."""
    inner = (
        select(
            _bucket(Administration.completed_at, months).label("period"),
            Episode.clinician_id.label("clinician_id"),
            Administration.total.label("total"),
        )
        .select_from(Administration)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(*_client_scored(PARTNERSHIP), _within(Administration.completed_at, months), *_scope_clauses(scope))
        .subquery("rated")
    )
    stmt = select(inner.c.period, inner.c.clinician_id, func.count(), func.sum(inner.c.total)).group_by(
        inner.c.period, inner.c.clinician_id
    )
    return [PartnershipCount(str(p), int(c), int(n), float(s or 0.0)) for p, c, n, s in session.execute(stmt)]


def alert_counts(session: Session, scope: ReportScope, months: Sequence[Month]) -> list[AlertCount]:
    """Alerts raised per month, clinician and kind, and alerts resolved (and of those, repaired) per month."""
    opening, raised_at = _raised_at()
    raised_inner = (
        select(
            _bucket(raised_at, months).label("period"),
            Episode.clinician_id.label("clinician_id"),
            Alert.kind.label("kind"),
        )
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .outerjoin(opening, opening.id == Alert.opened_by_administration_id)
        .where(_within(raised_at, months), *_scope_clauses(scope))
        .subquery("raised")
    )
    counts: dict[tuple[str, int, str], list[int]] = {}
    for p, c, k, n in session.execute(
        select(raised_inner.c.period, raised_inner.c.clinician_id, raised_inner.c.kind, func.count()).group_by(
            raised_inner.c.period, raised_inner.c.clinician_id, raised_inner.c.kind
        )
    ):
        counts.setdefault((str(p), int(c), str(k)), [0, 0, 0])[0] = int(n)
    repaired = or_(Alert.resolution_reason == "repaired", Alert.repaired_at.is_not(None))
    resolved_inner = (
        select(
            _bucket(Alert.resolved_at, months).label("period"),
            Episode.clinician_id.label("clinician_id"),
            Alert.kind.label("kind"),
            repaired.label("repaired"),
        )
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(Alert.resolved_at.is_not(None), _within(Alert.resolved_at, months), *_scope_clauses(scope))
        .subquery("resolved")
    )
    for p, c, k, n, r in session.execute(
        select(
            resolved_inner.c.period,
            resolved_inner.c.clinician_id,
            resolved_inner.c.kind,
            func.count(),
            _count_if(resolved_inner.c.repaired),
        ).group_by(resolved_inner.c.period, resolved_inner.c.clinician_id, resolved_inner.c.kind)
    ):
        entry = counts.setdefault((str(p), int(c), str(k)), [0, 0, 0])
        entry[1], entry[2] = int(n), int(r)
    return [AlertCount(p, c, k, *values) for (p, c, k), values in sorted(counts.items())]


def acknowledgement_figures(
    session: Session, scope: ReportScope, months: Sequence[Month]
) -> list[AcknowledgementFigures]:
    """Alerts acknowledged per month by kind, with the median and 90th percentile of hours to acknowledge."""
    inner = (
        select(
            _bucket(Alert.acknowledged_at, months).label("period"),
            Alert.kind.label("kind"),
            hours_between(Alert.acknowledged_at, Alert.opened_at).label("hours"),
        )
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(Alert.acknowledged_at.is_not(None), _within(Alert.acknowledged_at, months), *_scope_clauses(scope))
        .subquery("acknowledged")
    )
    by_kind: dict[str, dict[str, int]] = {}
    for p, k, n in session.execute(
        select(inner.c.period, inner.c.kind, func.count()).group_by(inner.c.period, inner.c.kind)
    ):
        by_kind.setdefault(str(p), {})[str(k)] = int(n)
    quantiles = grouped_percentiles(
        session, select().select_from(inner), keys=[inner.c.period], value=inner.c.hours, fractions=(0.5, 0.9)
    )
    out = []
    for m in months:
        if m.period not in by_kind:
            continue
        median, p90 = quantiles.get((m.period,), (None, None))
        out.append(
            AcknowledgementFigures(
                m.period,
                tuple(sorted(by_kind[m.period].items())),
                None if median is None else max(0.0, median),
                None if p90 is None else max(0.0, p90),
            )
        )
    return out


def month_detail(
    session: Session, scope: ReportScope, month: Month, *, settings: SignalSettings, risk_window_minutes: int
) -> MonthDetail:
    """The figures shown for the report's month only: checkpoint, alliance detail, escalations, risk, reviews."""
    months = (month,)
    scoped = _scope_clauses(scope)
    in_month = _within(Administration.completed_at, months)

    # Not-on-track checkpoint: episodes whose checkpoint-th PHQ-9 or GAD-7 was answered this month, and of those
    # the ones flagged NOT_ON_TRACK on that administration (the rule fires at that session only).
    active_outcome = (
        select(Administration.episode_id)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(Administration.instrument_code.in_((PHQ9, GAD7)), in_month, *scoped)
    )
    sequence = (
        select(
            Administration.id.label("id"),
            Administration.episode_id.label("episode_id"),
            Administration.completed_at.label("completed_at"),
            func.row_number()
            .over(
                partition_by=(Administration.episode_id, Administration.instrument_code),
                order_by=(Administration.completed_at, Administration.id),
            )
            .label("n"),
        )
        .where(Administration.instrument_code.in_((PHQ9, GAD7)), Administration.episode_id.in_(active_outcome))
        .subquery("sequence")
    )
    reached = sequence.c.n == settings.not_on_track_checkpoint
    flagged_here = exists().where(SignalRecord.administration_id == sequence.c.id, SignalRecord.kind == NOT_ON_TRACK)
    checkpoint_episodes, checkpoint_flagged = session.execute(
        select(
            func.count(sequence.c.episode_id.distinct()),
            func.count(case((flagged_here, sequence.c.episode_id)).distinct()),
        ).where(reached, _within(sequence.c.completed_at, months))
    ).one()

    # Alliance: clients rated, and those of them whose alliance alert was raised this month.
    opening, raised_at = _raised_at()
    ruptured_clients = (
        select(Episode.client_id)
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .outerjoin(opening, opening.id == Alert.opened_by_administration_id)
        .where(Alert.kind == "alliance", _within(raised_at, months), *scoped)
    )
    tension_item = load_instrument(PARTNERSHIP).items_with_role("tension")
    tension_value = Administration.answers[tension_item[0].id].as_float() if tension_item else literal(None, Float())
    clients_rated, clients_with_rupture, tension_reports = session.execute(
        select(
            func.count(Episode.client_id.distinct()),
            func.count(case((Episode.client_id.in_(ruptured_clients), Episode.client_id)).distinct()),
            _count_if(tension_value >= settings.tension_threshold),
        )
        .select_from(Administration)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(*_client_scored(PARTNERSHIP), in_month, *scoped)
    ).one()

    # Perspective gaps: sessions the therapist rated this month for which a PERSPECTIVE_GAP was recorded (on the
    # therapist's rating or on the client's rating of the same appointment).
    gap_admin = aliased(Administration, name="gap_admin")
    has_gap = exists(
        select(SignalRecord.id)
        .join(gap_admin, gap_admin.id == SignalRecord.administration_id)
        .where(
            SignalRecord.kind == PERSPECTIVE_GAP,
            SignalRecord.episode_id == Administration.episode_id,
            or_(
                gap_admin.id == Administration.id,
                and_(
                    Administration.appointment_id.is_not(None),
                    gap_admin.appointment_id == Administration.appointment_id,
                ),
            ),
        )
    )
    therapist_rated, perspective_gaps = session.execute(
        select(func.count(), _count_if(has_gap))
        .select_from(Administration)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(
            Administration.instrument_code == THERAPIST_PARTNERSHIP,
            Administration.total.is_not(None),
            in_month,
            *scoped,
        )
    ).one()

    component = SignalRecord.evidence["component"].as_string()
    component_drops = tuple(
        (str(name), int(n))
        for name, n in session.execute(
            select(component, func.count())
            .select_from(SignalRecord)
            .join(Administration, Administration.id == SignalRecord.administration_id)
            .join(Episode, Episode.id == SignalRecord.episode_id)
            .where(SignalRecord.kind == COMPONENT_DROP, in_month, component.is_not(None), *scoped)
            .group_by(component)
            .order_by(component)
        )
    )

    # Unrepaired: alliance alerts open at month end after at least the repair window of rated sessions.
    end = literal(month.end, UTCDateTime())
    open_at_end = and_(Alert.opened_at < end, or_(Alert.resolved_at.is_(None), Alert.resolved_at >= end))
    later = aliased(Administration, name="later")
    sessions_since = (
        select(func.count())
        .select_from(later)
        .where(
            later.episode_id == Alert.episode_id,
            later.instrument_code == PARTNERSHIP,
            later.respondent == "client",
            later.completed_at > raised_at,
            later.completed_at < end,
        )
        .scalar_subquery()
    )
    unrepaired_open = session.scalar(
        select(func.count())
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .outerjoin(opening, opening.id == Alert.opened_by_administration_id)
        .where(Alert.kind == "alliance", open_at_end, sessions_since >= settings.repair_window, *scoped)
    )

    repaired_at = func.coalesce(Alert.repaired_at, Alert.resolved_at)
    repairs = (
        select(hours_between(repaired_at, Alert.opened_at).label("hours"))
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(
            Alert.kind == "alliance",
            Alert.resolved_at.is_not(None),
            _within(Alert.resolved_at, months),
            or_(Alert.resolution_reason == "repaired", Alert.repaired_at.is_not(None)),
            *scoped,
        )
        .subquery("repairs")
    )
    (repair_median,) = grouped_percentiles(
        session, select().select_from(repairs), keys=[], value=repairs.c.hours, fractions=(0.5,)
    ).get((), (None,))

    escalations = session.scalar(
        select(func.count())
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(Alert.escalated_at.is_not(None), _within(Alert.escalated_at, months), *scoped)
    )

    risk = (
        select(
            case(
                (Alert.acknowledged_at.is_not(None), hours_between(Alert.acknowledged_at, Alert.opened_at) * 60.0)
            ).label("minutes")
        )
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .outerjoin(opening, opening.id == Alert.opened_by_administration_id)
        .where(Alert.kind == "risk", _within(raised_at, months), *scoped)
        .subquery("risk")
    )
    risk_alerts, risk_within = session.execute(
        select(func.count(), _count_if(risk.c.minutes <= risk_window_minutes)).select_from(risk)
    ).one()
    risk_median, risk_p90 = grouped_percentiles(
        session, select().select_from(risk), keys=[], value=risk.c.minutes, fractions=(0.5, 0.9)
    ).get((), (None, None))

    review_end = literal(month.end, UTCDateTime())
    completed_in_month = and_(Review.completed_at.is_not(None), _within(Review.completed_at, months))
    reviews = session.execute(
        select(
            _count_if(_within(Review.created_at, months)),
            _count_if(and_(completed_in_month, Review.completed_at <= Review.due_at)),
            _count_if(and_(completed_in_month, Review.completed_at > Review.due_at)),
            _count_if(
                and_(
                    Review.created_at < review_end,
                    Review.status != "cancelled",
                    or_(Review.completed_at.is_(None), Review.completed_at >= review_end),
                    Review.due_at < review_end,
                )
            ),
        )
        .select_from(Review)
        .join(Episode, Episode.id == Review.episode_id)
        .where(*scoped)
    ).one()

    return MonthDetail(
        checkpoint_episodes=int(checkpoint_episodes),
        checkpoint_flagged=int(checkpoint_flagged),
        clients_rated=int(clients_rated),
        clients_with_rupture=int(clients_with_rupture),
        unrepaired_open=int(unrepaired_open or 0),
        repair_days_median=None if repair_median is None else max(0.0, repair_median / 24.0),
        tension_reports=int(tension_reports),
        therapist_rated_sessions=int(therapist_rated),
        perspective_gaps=int(perspective_gaps),
        component_drops=component_drops,
        escalations=int(escalations or 0),
        risk_alerts=int(risk_alerts),
        risk_within_window=int(risk_within),
        risk_ack_median_minutes=None if risk_median is None else max(0.0, risk_median),
        risk_ack_p90_minutes=None if risk_p90 is None else max(0.0, risk_p90),
        reviews_opened=int(reviews[0]),
        reviews_completed_on_time=int(reviews[1]),
        reviews_completed_late=int(reviews[2]),
        reviews_overdue=int(reviews[3]),
    )


def not_on_track_rows(session: Session, scope: ReportScope, month: Month) -> list[NotOnTrackRow]:
    """Outcome alerts open at month end on episodes still open then: client code, clinician and the numbers."""
    end = literal(month.end, UTCDateTime())
    opening = aliased(Administration, name="opening")
    alerts = session.execute(
        select(
            Alert.id,
            Alert.episode_id,
            Alert.opened_at,
            Alert.acknowledged_at,
            Alert.opened_by_administration_id,
            opening.instrument_code,
            Client.code,
            User.name,
            User.id.label("clinician_id"),
        )
        .select_from(Alert)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(User, User.id == Episode.clinician_id)
        .outerjoin(opening, opening.id == Alert.opened_by_administration_id)
        .where(
            Alert.kind == "outcome",
            Alert.opened_at < end,
            or_(Alert.resolved_at.is_(None), Alert.resolved_at >= end),
            Episode.started_on <= literal(month.last_day, Date()),
            or_(Episode.ended_on.is_(None), Episode.ended_on > literal(month.last_day, Date())),
            *_scope_clauses(scope),
        )
        .order_by(Alert.id)
    ).all()
    if not alerts:
        return []
    opening_ids = [row.opened_by_administration_id for row in alerts if row.opened_by_administration_id]
    kinds: dict[int, list[str]] = {}
    firsts: dict[int, float] = {}
    for administration_id, kind, evidence in session.execute(
        select(SignalRecord.administration_id, SignalRecord.kind, SignalRecord.evidence)
        .where(SignalRecord.administration_id.in_(opening_ids), SignalRecord.kind.in_(OUTCOME_OPENING))
        .order_by(SignalRecord.administration_id, SignalRecord.id)
    ):
        kinds.setdefault(int(administration_id), []).append(str(kind))
        first = evidence.get("first") if isinstance(evidence, dict) else None
        if isinstance(first, int | float) and not isinstance(first, bool):
            firsts.setdefault(int(administration_id), float(first))
    # First score, latest score and number of scored sessions up to month end, per episode and measure.
    episode_ids = sorted({int(row.episode_id) for row in alerts})
    partition = (Administration.episode_id, Administration.instrument_code)
    series = (
        select(
            Administration.episode_id.label("episode_id"),
            Administration.instrument_code.label("code"),
            Administration.total.label("total"),
            func.row_number()
            .over(partition_by=partition, order_by=(Administration.completed_at, Administration.id))
            .label("rn_first"),
            func.row_number()
            .over(partition_by=partition, order_by=(Administration.completed_at.desc(), Administration.id.desc()))
            .label("rn_last"),
        )
        .where(
            *_client_scored((PHQ9, GAD7)),
            Administration.episode_id.in_(episode_ids),
            Administration.completed_at < end,
        )
        .subquery("series")
    )
    numbers: dict[tuple[int, str], tuple[float | None, float | None, int]] = {}
    for episode_id, code, first, last, n in session.execute(
        select(
            series.c.episode_id,
            series.c.code,
            func.max(case((series.c.rn_first == 1, series.c.total))),
            func.max(case((series.c.rn_last == 1, series.c.total))),
            func.count(),
        ).group_by(series.c.episode_id, series.c.code)
    ):
        numbers[(int(episode_id), str(code))] = (
            None if first is None else float(first),
            None if last is None else float(last),
            int(n),
        )
    out = []
    for row in alerts:
        measure = row.instrument_code if row.instrument_code in (PHQ9, GAD7) else PHQ9
        first, latest, n = numbers.get((int(row.episode_id), measure), (None, None, 0))
        opened_by = row.opened_by_administration_id
        if opened_by is not None and opened_by in firsts:
            first = firsts[opened_by]
        out.append(
            NotOnTrackRow(
                alert_id=int(row.id),
                client_code=str(row.code),
                clinician=str(row.name),
                measure=measure,
                first_score=first,
                latest_score=latest,
                sessions=n,
                flagged_at=row.opened_at,
                rule_kinds=tuple(kinds.get(int(opened_by), ())) if opened_by is not None else (),
                acknowledged=row.acknowledged_at is not None and row.acknowledged_at < month.end,
                clinician_id=int(row.clinician_id),
            )
        )
    return out


def clinician_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Staff names by id."""
    if not ids:
        return {}
    return {int(i): str(n) for i, n in session.execute(select(User.id, User.name).where(User.id.in_(sorted(ids))))}


def clinician_teams(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """The current team's name of each clinician that has one."""
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, Team.name).join(Team, Team.id == User.team_id).where(User.id.in_(sorted(ids)))
    )
    return {int(i): str(n) for i, n in rows}


def team_names(session: Session) -> tuple[str, ...]:
    """Every team's name, sorted."""
    return tuple(str(n) for n in session.scalars(select(Team.name).order_by(Team.name, Team.id)))


def monthly_aggregates(
    session: Session,
    scope: ReportScope,
    months: Sequence[Month],
    *,
    settings: SignalSettings,
    risk_window_minutes: int,
) -> MonthlyAggregates:
    """Every figure of a monthly report for scope over months (oldest first; the last is the report's month)."""
    if not months:
        raise ValueError("a report needs at least one month")
    timings: dict[str, float] = {}
    tune_for_reporting(session)

    def timed(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - started
        return result

    label = timed("scope", scope_label, session, scope)
    activity = timed("activity", activity_counts, session, scope, months)
    sessions = timed("sessions", session_counts, session, scope, months)
    engagement = timed("engagement", engagement_counts, session, scope, months)
    outcomes = timed("outcomes", outcome_counts, session, scope, months, settings=settings)
    partnership = timed("partnership", partnership_counts, session, scope, months)
    alerts = timed("alerts", alert_counts, session, scope, months)
    acknowledgements = timed("acknowledgements", acknowledgement_figures, session, scope, months)
    detail = timed(
        "detail", month_detail, session, scope, months[-1], settings=settings, risk_window_minutes=risk_window_minutes
    )
    not_on_track = timed("not_on_track", not_on_track_rows, session, scope, months[-1])
    ids = {
        c.clinician_id
        for rows in (activity, sessions, engagement, outcomes, partnership, alerts)
        for c in rows
        if c.clinician_id is not None
    }
    names = clinician_names(session, sorted(ids))
    teams = clinician_teams(session, sorted(ids)) if scope.kind == "practice" else {}
    all_teams = team_names(session) if scope.kind == "practice" else ()
    return MonthlyAggregates(
        scope=scope,
        scope_label=label,
        months=tuple(months),
        clinician_names=names,
        activity=tuple(activity),
        sessions=tuple(sessions),
        engagement=tuple(engagement),
        outcomes=tuple(outcomes),
        partnership=tuple(partnership),
        alerts=tuple(alerts),
        acknowledgements=tuple(acknowledgements),
        detail=detail,
        not_on_track=tuple(not_on_track),
        timings=timings,
        clinician_teams=teams,
        team_names=all_teams,
    )


# ---------------------------------------------------------------------------------------------------------------
# Report rows


def list_reports(session: Session, *, limit: int = 60, period: str | None = None) -> list[Report]:
    """Stored reports, newest period first (then by scope)."""
    stmt = select(Report).order_by(Report.period.desc(), Report.scope).limit(limit)
    if period is not None:
        stmt = stmt.where(Report.period == period)
    return list(session.scalars(stmt))


def get_report(session: Session, report_id: int) -> Report | None:
    """One report row."""
    return session.get(Report, report_id)


def find_report(session: Session, *, scope: ReportScope, period: str) -> Report | None:
    """The report of a scope and period, if one was ever requested."""
    return session.scalar(select(Report).where(Report.scope == str(scope), Report.period == period))


def list_stale_reports(session: Session, *, older_than: datetime, limit: int = 100) -> list[int]:
    """Ids of reports still pending (or running but untouched) since before older_than: for the re-drive."""
    return list(
        session.scalars(
            select(Report.id)
            .where(Report.status.in_(("pending", "running")), Report.updated_at < older_than)
            .order_by(Report.updated_at)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class ScopeChoice:
    """A scope a manager can ask a report for, with its label."""

    scope: str
    label: str


def scope_choices(session: Session) -> list[ScopeChoice]:
    """The practice, every team, and every clinician with an episode (sorted by name), for the request form."""
    choices = [ScopeChoice("practice", "Whole practice")]
    for team_id, name in session.execute(select(Team.id, Team.name).order_by(Team.name, Team.id)):
        choices.append(ScopeChoice(f"team:{team_id}", f"Team: {name}"))
    with_episodes = select(Episode.clinician_id).distinct()
    for user_id, name in session.execute(
        select(User.id, User.name).where(User.id.in_(with_episodes)).order_by(User.name, User.id)
    ):
        choices.append(ScopeChoice(f"clinician:{user_id}", f"Clinician: {name}"))
    return choices


def scope_labels(session: Session, scopes: Sequence[str]) -> dict[str, str]:
    """Labels for stored scope strings (unknown or removed teams and staff keep their raw scope)."""
    labels: dict[str, str] = {}
    team_ids, user_ids = set(), set()
    for raw in scopes:
        try:
            parsed = ReportScope.parse(raw)
        except ValueError:
            continue
        if parsed.kind == "team" and parsed.id is not None:
            team_ids.add(parsed.id)
        elif parsed.kind == "clinician" and parsed.id is not None:
            user_ids.add(parsed.id)
    teams = {int(i): str(n) for i, n in session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids)))}
    users = {int(i): str(n) for i, n in session.execute(select(User.id, User.name).where(User.id.in_(user_ids)))}
    for raw in scopes:
        if raw == "practice":
            labels[raw] = "Whole practice"
            continue
        kind, _, ident = raw.partition(":")
        name = (teams if kind == "team" else users).get(int(ident)) if ident.isdigit() else None
        labels[raw] = f"{'Team' if kind == 'team' else 'Clinician'}: {name}" if name else raw
    return labels


def first_activity_day(session: Session) -> date | None:
    """The day the first episode started (reports do not chart months before the practice had any)."""
    return session.scalar(select(func.min(Episode.started_on)))
