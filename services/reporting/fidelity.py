"""Was the feedback used? Per clinician and month, from the audit trail, the brief discussions and the alert actions.

The figures (each defined on the monthly report's Methods page):

- **Feedback viewed before the next session**: of the client's completed administrations in the month (the
  clinician's own episodes) that have a next session (the episode's first scheduled or completed appointment
  starting after the answer), the share the clinician opened between the answer and that session: a view of the
  brief, the chart or an alert of that client in the audit trail. Until the next session begins an answer counts
  only once it has been opened (it is undecided until then); an answer with no later session (an ended episode) is
  left out of both counts; a session with no answers adds nothing.
- **Briefs discussed**: of the clinician's sessions that began in the month with at least one answer of the
  client's before them, the share marked "discussed with the client".
- **Alerts acted on, and the median hours to the first action, by kind**: of the alerts opened in the month, those
  with an action by a person (acknowledged, a note, a step, resolved; an escalation by the system is no action).
- **Risk alerts acknowledged within the risk window**: of the risk alerts opened in the month, those acknowledged
  within the practice's risk window (default 60 minutes).

A fixed number of queries: one per figure, grouped by clinician on the database server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from services.alerts.models import Alert, AlertAction
from services.audit.models import AuditEvent
from services.briefs.models import BriefDiscussion
from services.briefs.queries import HELD_STATUSES, feedback_view
from services.clients.models import Appointment, Episode
from services.db import UTCDateTime, utcnow
from services.reporting.periods import Month, ReportScope
from services.reporting.queries import _scope_clauses
from services.reporting.sql import grouped_percentiles, hours_between
from services.surveys.models import Administration

ALERT_KINDS = ("risk", "alliance", "outcome")


@dataclass(frozen=True)
class AlertUse:
    """One kind of alert opened in the month: how many, how many acted on, median hours to the first action."""

    opened: int = 0
    acted_on: int = 0
    median_hours: float | None = None


@dataclass(frozen=True)
class Fidelity:
    """The month's figures: one row per clinician, their sum, and the median hours to act by kind over the scope."""

    rows: list[FidelityRow]
    total: FidelityRow
    median_hours: dict[str, float | None]


@dataclass(frozen=True)
class FidelityRow:
    """One clinician's month."""

    clinician_id: int
    administrations: int = 0
    viewed_before_next: int = 0
    briefs: int = 0
    briefs_discussed: int = 0
    alerts: dict[str, AlertUse] = field(default_factory=dict)
    risk_alerts: int = 0
    risk_in_window: int = 0

    @property
    def alerts_opened(self) -> int:
        """Alerts of every kind opened in the month."""
        return sum(use.opened for use in self.alerts.values())

    @property
    def alerts_acted_on(self) -> int:
        """Alerts of every kind opened in the month that someone acted on."""
        return sum(use.acted_on for use in self.alerts.values())


def _scope(scope: ReportScope) -> list[ColumnElement[bool]]:
    return _scope_clauses(scope)


def _in_month(ts: Any, month: Month) -> ColumnElement[bool]:
    return and_(ts >= literal(month.start, UTCDateTime()), ts < literal(month.end, UTCDateTime()))


def viewed_counts(
    session: Session, scope: ReportScope, month: Month, *, now: datetime | None = None
) -> dict[int, tuple[int, int]]:
    """Per clinician: (administrations decided: next session begun or already opened; those opened before it)."""
    now = now or utcnow()
    later = aliased(Appointment, name="next_session")
    next_start = (
        select(func.min(later.starts_at))
        .where(
            later.episode_id == Administration.episode_id,
            later.starts_at > Administration.completed_at,
            later.status.in_(HELD_STATUSES),
        )
        .correlate(Administration)
        .scalar_subquery()
    )
    answered = (
        select(
            Episode.clinician_id.label("clinician_id"),
            Episode.client_id.label("client_id"),
            Administration.completed_at.label("completed_at"),
            next_start.label("next_start"),
        )
        .join(Episode, Episode.id == Administration.episode_id)
        .where(
            Administration.respondent == "client",
            _in_month(Administration.completed_at, month),
            *_scope(scope),
        )
        .subquery("answered")
    )
    opened = exists(
        select(AuditEvent.id).where(
            AuditEvent.actor_id == answered.c.clinician_id,
            AuditEvent.client_id == answered.c.client_id,
            AuditEvent.at >= answered.c.completed_at,
            AuditEvent.at < answered.c.next_start,
            feedback_view(),
        )
    )
    rows = session.execute(
        select(answered.c.clinician_id, func.count(), func.coalesce(func.sum(case((opened, 1), else_=0)), 0))
        .where(
            answered.c.next_start.is_not(None),
            or_(answered.c.next_start <= literal(now, UTCDateTime()), opened),
        )
        .group_by(answered.c.clinician_id)
    )
    return {int(c): (int(n), int(v)) for c, n, v in rows}


def discussed_counts(
    session: Session, scope: ReportScope, month: Month, *, now: datetime | None = None
) -> dict[int, tuple[int, int]]:
    """Per clinician: (sessions begun in the month with answers before them, those marked discussed)."""
    now = now or utcnow()
    had_feedback = exists(
        select(Administration.id).where(
            Administration.episode_id == Appointment.episode_id,
            Administration.respondent == "client",
            Administration.completed_at < Appointment.starts_at,
        )
    )
    discussed = exists(select(BriefDiscussion.id).where(BriefDiscussion.appointment_id == Appointment.id))
    rows = session.execute(
        select(Episode.clinician_id, func.count(), func.coalesce(func.sum(case((discussed, 1), else_=0)), 0))
        .select_from(Appointment)
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(
            Appointment.status.in_(HELD_STATUSES),
            _in_month(Appointment.starts_at, month),
            Appointment.starts_at <= literal(now, UTCDateTime()),
            had_feedback,
            *_scope(scope),
        )
        .group_by(Episode.clinician_id)
    )
    return {int(c): (int(n), int(d)) for c, n, d in rows}


def alert_use(
    session: Session, scope: ReportScope, month: Month, *, risk_window_minutes: int
) -> tuple[dict[int, dict[str, AlertUse]], dict[int, tuple[int, int]], dict[str, float | None]]:
    """Per clinician and kind, the alerts opened in the month and how they were acted on; per clinician the risk
    alerts with those acknowledged within the risk window; and the median hours to the first action by kind over
    the whole scope."""
    first_action = (
        select(func.min(AlertAction.at))
        .where(AlertAction.alert_id == Alert.id, AlertAction.actor_id.is_not(None), AlertAction.action != "escalated")
        .correlate(Alert)
        .scalar_subquery()
    )
    opened = (
        select(
            Episode.clinician_id.label("clinician_id"),
            Alert.kind.label("kind"),
            Alert.opened_at.label("opened_at"),
            Alert.acknowledged_at.label("acknowledged_at"),
            hours_between(first_action, Alert.opened_at).label("hours"),
        )
        .join(Episode, Episode.id == Alert.episode_id)
        .where(_in_month(Alert.opened_at, month), *_scope(scope))
        .subquery("opened")
    )
    window = timedelta(minutes=risk_window_minutes) / timedelta(hours=1)
    in_window = and_(
        opened.c.kind == "risk",
        opened.c.acknowledged_at.is_not(None),
        hours_between(opened.c.acknowledged_at, opened.c.opened_at) <= window,
    )
    counts = session.execute(
        select(
            opened.c.clinician_id,
            opened.c.kind,
            func.count(),
            func.count(opened.c.hours),
            func.coalesce(func.sum(case((in_window, 1), else_=0)), 0),
        ).group_by(opened.c.clinician_id, opened.c.kind)
    ).all()
    medians = grouped_percentiles(
        session,
        select().select_from(opened),
        keys=[opened.c.clinician_id, opened.c.kind],
        value=opened.c.hours,
        fractions=(0.5,),
    )
    overall = grouped_percentiles(
        session, select().select_from(opened), keys=[opened.c.kind], value=opened.c.hours, fractions=(0.5,)
    )
    kind_medians = {str(k[0]): None if v[0] is None else max(0.0, float(v[0])) for k, v in overall.items()}
    by_clinician: dict[int, dict[str, AlertUse]] = {}
    risk: dict[int, tuple[int, int]] = {}
    for clinician_id, kind, n, acted, within in counts:
        median = medians.get((clinician_id, kind), (None,))[0]
        by_clinician.setdefault(int(clinician_id), {})[str(kind)] = AlertUse(
            opened=int(n), acted_on=int(acted), median_hours=None if median is None else max(0.0, float(median))
        )
        if kind == "risk":
            risk[int(clinician_id)] = (int(n), int(within))
    return by_clinician, risk, kind_medians


def fidelity(
    session: Session,
    scope: ReportScope,
    month: Month,
    *,
    risk_window_minutes: int,
    now: datetime | None = None,
    clinician_ids: Sequence[int] | None = None,
) -> Fidelity:
    """Every figure for each clinician with anything to count in the month (or each of clinician_ids), by id."""
    now = now or utcnow()
    viewed = viewed_counts(session, scope, month, now=now)
    discussed = discussed_counts(session, scope, month, now=now)
    alerts, risk, medians = alert_use(session, scope, month, risk_window_minutes=risk_window_minutes)
    ids = set(viewed) | set(discussed) | set(alerts) if clinician_ids is None else set(clinician_ids)
    rows = [
        FidelityRow(
            clinician_id=c,
            administrations=viewed.get(c, (0, 0))[0],
            viewed_before_next=viewed.get(c, (0, 0))[1],
            briefs=discussed.get(c, (0, 0))[0],
            briefs_discussed=discussed.get(c, (0, 0))[1],
            alerts=alerts.get(c, {}),
            risk_alerts=risk.get(c, (0, 0))[0],
            risk_in_window=risk.get(c, (0, 0))[1],
        )
        for c in sorted(ids)
    ]
    return Fidelity(rows=rows, total=total(rows), median_hours=medians)


def total(rows: Sequence[FidelityRow], clinician_id: int = 0) -> FidelityRow:
    """The rows summed into one (a practice or team line); medians do not add up (Fidelity.median_hours has them)."""
    kinds: dict[str, AlertUse] = {}
    for row in rows:
        for kind, use in row.alerts.items():
            was = kinds.get(kind, AlertUse())
            kinds[kind] = AlertUse(opened=was.opened + use.opened, acted_on=was.acted_on + use.acted_on)
    return FidelityRow(
        clinician_id=clinician_id,
        administrations=sum(r.administrations for r in rows),
        viewed_before_next=sum(r.viewed_before_next for r in rows),
        briefs=sum(r.briefs for r in rows),
        briefs_discussed=sum(r.briefs_discussed for r in rows),
        alerts=kinds,
        risk_alerts=sum(r.risk_alerts for r in rows),
        risk_in_window=sum(r.risk_in_window for r in rows),
    )
