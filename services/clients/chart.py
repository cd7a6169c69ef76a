"""A client's chart as plain data: every score of one episode by session, the signals that fired, the sessions the
clinician can still rate, and the open alerts. A fixed number of queries, however many sessions there are.

Scoped like every clinical read (`episode_scope`): a client or episode outside the viewer's scope is None. The web
layer turns this into SVG with `reports.charts`; this module knows nothing of drawing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert, SignalRecord
from services.clients.models import Appointment, Client, Episode
from services.clients.queries import episode_scope
from services.db import utcnow
from services.measures import Instrument, UnknownInstrumentError, load_instrument
from services.signals import TrajectoryModel
from services.surveys.models import Administration

THERAPIST_CHECK = "THERAPIST-PARTNERSHIP-CHECK"
# Appointments that did not take place cannot be rated.
RATEABLE_STATUSES = ("scheduled", "completed")
# How many recent sessions the chart offers to rate.
RATEABLE_SHOWN = 6
# A session can be rated from the moment it starts (the form is filled in just after it).
RATE_FROM_START = timedelta(minutes=0)
# The chart offers the sessions of the last two weeks (older ones stay rateable by their link).
RATE_WITHIN = timedelta(days=14)


@dataclass(frozen=True)
class ChartPoint:
    """One administration of an instrument: its session number in the series, total, components and tension."""

    administration_id: int
    session: int
    appointment_id: int | None
    completed_at: datetime
    total: float | None
    complete: bool
    components: Mapping[str, float | None]
    tension: int | None
    items: Mapping[str, float | None]


@dataclass(frozen=True)
class ChartSignal:
    """A signal that fired, placed on the series and the point where it shows."""

    kind: str
    administration_id: int
    index: int
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class InstrumentSeries:
    """The client's answers to one instrument in session order, and the signals placed on them."""

    instrument: Instrument
    points: list[ChartPoint]
    signals: list[ChartSignal] = field(default_factory=list)

    @property
    def code(self) -> str:
        """The instrument's code."""
        return self.instrument.code

    @property
    def first_total(self) -> float | None:
        """The first scored total (the reliable-change band is drawn around it)."""
        return next((point.total for point in self.points if point.total is not None), None)


@dataclass(frozen=True)
class RateableSession:
    """A recent session of the episode and whether the clinician has rated the partnership for it."""

    appointment_id: int
    starts_at: datetime
    rated: bool


@dataclass(frozen=True)
class ClientChart:
    """Everything the chart page draws for one episode of one client."""

    client: Client
    episode: Episode
    episodes: list[Episode]
    outcome: list[InstrumentSeries]
    alliance: list[InstrumentSeries]
    goals: InstrumentSeries | None
    # The clinician's own Partnership Check, by appointment (the latest rating of each).
    therapist: Mapping[int, ChartPoint]
    open_alerts: list[Alert]
    sessions_to_rate: list[RateableSession]

    @property
    def empty(self) -> bool:
        """True when the episode has no answered instrument yet."""
        return not (self.outcome or self.alliance or self.goals)

    def therapist_totals(self, series: InstrumentSeries) -> list[float | None]:
        """The clinician's totals aligned with a client alliance series (None where there is no rating)."""
        return [
            self.therapist[point.appointment_id].total
            if point.appointment_id is not None and point.appointment_id in self.therapist
            else None
            for point in series.points
        ]


def expected_band(
    model: TrajectoryModel, first: float, sessions: int, *, z: float = 1.2816
) -> list[tuple[float, float] | None]:
    """The expected range per session from a fitted trajectory model: yhat_t plus or minus z sigma.

    Its worse edge is the off-track boundary of CLINICAL.md section 4 (one-sided 90%); session 1 is the first score.
    """
    margin = z * model.sigma_pred
    band: list[tuple[float, float] | None] = []
    for t in range(sessions):
        centre = model.expected(first, t)
        band.append((centre - margin, centre + margin) if math.isfinite(centre) else None)
    return band


def get_client_chart(
    session: Session,
    user: User,
    client_id: int,
    *,
    episode_id: int | None = None,
    now: datetime | None = None,
) -> ClientChart | None:
    """The chart data of a client's episode (the latest visible one unless episode_id is given), or None (404)."""
    now = now or utcnow()
    rows = session.execute(
        select(Episode, Client)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.client_id == client_id, episode_scope(user))
        .order_by(Episode.ended_on.is_not(None), Episode.started_on.desc(), Episode.id.desc())
    ).all()
    if not rows:
        return None
    episodes = [episode for episode, _ in rows]
    client = rows[0][1]
    episode = episodes[0] if episode_id is None else next((e for e in episodes if e.id == episode_id), None)
    if episode is None:
        return None
    administrations = list(
        session.scalars(
            select(Administration)
            .where(Administration.episode_id == episode.id)
            .order_by(Administration.completed_at, Administration.id)
        )
    )
    signals = list(
        session.scalars(
            select(SignalRecord)
            .where(SignalRecord.episode_id == episode.id)
            .order_by(SignalRecord.session, SignalRecord.id)
        )
    )
    open_alerts = list(
        session.scalars(
            select(Alert).where(Alert.episode_id == episode.id, Alert.status != "resolved").order_by(Alert.opened_at)
        )
    )
    appointments = list(
        session.execute(
            select(Appointment.id, Appointment.starts_at)
            .where(
                Appointment.episode_id == episode.id,
                Appointment.status.in_(RATEABLE_STATUSES),
                Appointment.starts_at <= now - RATE_FROM_START,
                Appointment.starts_at >= now - RATE_WITHIN,
            )
            .order_by(Appointment.starts_at.desc(), Appointment.id.desc())
            .limit(RATEABLE_SHOWN)
        )
    )
    return _assemble(client, episode, episodes, administrations, signals, open_alerts, appointments)


def _assemble(
    client: Client,
    episode: Episode,
    episodes: list[Episode],
    administrations: Sequence[Administration],
    signals: Sequence[SignalRecord],
    open_alerts: list[Alert],
    appointments: Sequence[Any],
) -> ClientChart:
    by_code: dict[str, list[Administration]] = {}
    for row in administrations:
        by_code.setdefault(row.instrument_code, []).append(row)
    series: dict[str, InstrumentSeries] = {}
    therapist: dict[int, ChartPoint] = {}
    where: dict[int, tuple[str, int]] = {}  # administration id -> (series code, index)
    for code, rows in by_code.items():
        try:
            instrument = load_instrument(code)
        except UnknownInstrumentError:
            continue  # an instrument the practice has since removed: nothing to draw it with
        points = [_point(instrument, row, index) for index, row in enumerate(rows)]
        if instrument.kind == "therapist_alliance":
            for point in points:
                if point.appointment_id is not None:
                    therapist[point.appointment_id] = point  # rows are in time order: the latest wins
            continue
        series[code] = InstrumentSeries(instrument=instrument, points=points)
        for index, row in enumerate(rows):
            where[row.id] = (code, index)
    for signal in signals:
        # The clinician's rating carries PERSPECTIVE_GAP: it belongs on the client's session it compares with.
        target = signal.evidence.get("client_administration_id") if signal.kind == "PERSPECTIVE_GAP" else None
        place = where.get(int(target)) if isinstance(target, int) else where.get(signal.administration_id)
        if place is None:
            continue
        code, index = place
        series[code].signals.append(
            ChartSignal(
                kind=signal.kind, administration_id=signal.administration_id, index=index, evidence=signal.evidence
            )
        )
    ordered = sorted(series.values(), key=lambda s: s.code)
    rated = set(therapist)
    return ClientChart(
        client=client,
        episode=episode,
        episodes=episodes,
        outcome=[s for s in ordered if s.instrument.kind == "outcome"],
        alliance=[s for s in ordered if s.instrument.kind == "alliance"],
        goals=next((s for s in ordered if s.instrument.kind == "goals"), None),
        therapist=therapist,
        open_alerts=open_alerts,
        sessions_to_rate=[
            RateableSession(appointment_id=appointment_id, starts_at=starts_at, rated=appointment_id in rated)
            for appointment_id, starts_at in appointments
        ],
    )


def _point(instrument: Instrument, row: Administration, index: int) -> ChartPoint:
    scores = row.scores or {}
    raw_components = scores.get("components") or {}
    components = {name: _number(raw_components.get(name)) for name in instrument.components}
    tension_items = instrument.items_with_role("tension")
    tension_value = _number(row.answers.get(tension_items[0].id)) if tension_items else None
    tension = int(tension_value) if tension_value is not None and 0 <= tension_value <= 3 else None
    items = {
        item.id: _number(row.answers.get(item.id)) for item in instrument.items if item.type != "text" and item.scored
    }
    return ChartPoint(
        administration_id=row.id,
        session=index + 1,
        appointment_id=row.appointment_id,
        completed_at=row.completed_at,
        total=float(row.total) if row.complete and row.total is not None else None,
        complete=row.complete,
        components=components,
        tension=tension,
        items=items,
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class SessionToRate:
    """A session the clinician may rate the partnership for: their own client's, already held, and not cancelled."""

    appointment: Appointment
    episode: Episode
    client: Client
    rated: bool


def get_session_to_rate(
    session: Session, user: User, appointment_id: int, *, now: datetime | None = None
) -> SessionToRate | None:
    """The appointment if user is its episode's clinician (else None: a 404), with whether they already rated it.

    Only the clinician who held the session rates it: a supervisor sees the rating but does not give it.
    """
    now = now or utcnow()
    row = session.execute(
        select(Appointment, Episode, Client)
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Appointment.id == appointment_id, Episode.clinician_id == user.id, episode_scope(user))
    ).one_or_none()
    if row is None:
        return None
    appointment, episode, client = row
    rated = session.scalar(
        select(Administration.id)
        .where(Administration.appointment_id == appointment.id, Administration.instrument_code == THERAPIST_CHECK)
        .limit(1)
    )
    return SessionToRate(appointment=appointment, episode=episode, client=client, rated=rated is not None)


def can_be_rated(appointment: Appointment, *, now: datetime | None = None) -> bool:
    """True once the session has started, unless it was cancelled or missed."""
    return appointment.status in RATEABLE_STATUSES and appointment.starts_at <= (now or utcnow()) - RATE_FROM_START
