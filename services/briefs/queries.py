"""Reads for the room: today's sessions, a session's brief, and the view shared with the client.

Every read is scoped like the chart (`episode_scope`): outside the viewer's scope the answer is None (a 404). Each
function costs a fixed number of queries however long the episode is; the web layer names the readings in the
reader's language and this module only says what changed and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from services.accounts.models import User
from services.alerts.models import Alert, AlertAction
from services.audit.models import AuditEvent
from services.briefs.models import BriefDiscussion, GoalRevision
from services.clients.models import Appointment, Client, Episode
from services.clients.queries import episode_scope
from services.db import utcnow
from services.measures import Instrument, UnknownInstrumentError, load_instrument
from services.signals import DEFAULT_SETTINGS
from services.surveys.models import Administration

# Sessions that took place or are still to come (a cancelled or missed one is no "last session").
HELD_STATUSES = ("scheduled", "completed")
PARTNERSHIP = "PARTNERSHIP-CHECK"
# How far one part of the partnership may sit below the client's own usual rating before the brief says so: the
# COMPONENT_DROP rule's threshold (CLINICAL.md section 3).
COMPONENT_BELOW = DEFAULT_SETTINGS.component_threshold
# What a brief view writes in the audit trail: client_viewed with detail.what = "brief:<appointment id>".
BRIEF_VIEW = "brief"


# The audit trail's `what` of the views that show a client's feedback: the chart, an alert, a session's brief.
FEEDBACK_VIEWS = ("chart",)
FEEDBACK_VIEW_PREFIXES = ("alert:", f"{BRIEF_VIEW}:")


def brief_view_label(appointment_id: int | None) -> str:
    """The audit trail's `what` for a view of a session's brief."""
    return f"{BRIEF_VIEW}:{appointment_id}" if appointment_id is not None else BRIEF_VIEW


def feedback_view() -> ColumnElement[bool]:
    """The audit rows that are a view of a client's feedback (chart, alert, brief)."""
    what = AuditEvent.detail["what"].as_string()
    return and_(
        AuditEvent.action == "client_viewed",
        or_(what.in_(FEEDBACK_VIEWS), *[what.like(f"{prefix}%") for prefix in FEEDBACK_VIEW_PREFIXES]),
    )


# ---------------------------------------------------------------------------------------------------------------
# Plain data


@dataclass(frozen=True)
class ItemAnswer:
    """One answer beside a total: the item's number on the form, its id, the answer, and whether it is a risk item."""

    number: int
    item_id: str
    value: float | None
    risk: bool


@dataclass(frozen=True)
class ScorePoint:
    """One administration's total, with its session number in the series and its phase."""

    administration_id: int
    completed_at: datetime
    total: float | None
    complete: bool
    session: int
    phase: str  # intake, review, discharge or session (services.briefs.queries.phase_of)
    items: tuple[ItemAnswer, ...]


@dataclass(frozen=True)
class ScoreChange:
    """An outcome instrument: its latest score against the previous and the first, with the reliable-change reading."""

    instrument: Instrument
    points: tuple[ScorePoint, ...]
    new: bool  # the latest answer came in since the last session

    @property
    def latest(self) -> ScorePoint | None:
        """The latest administration with a score."""
        return next((p for p in reversed(self.points) if p.total is not None), None)

    @property
    def previous(self) -> ScorePoint | None:
        """The scored administration before the latest."""
        scored = [p for p in self.points if p.total is not None]
        return scored[-2] if len(scored) > 1 else None

    @property
    def first(self) -> ScorePoint | None:
        """The first scored administration of the episode."""
        return next((p for p in self.points if p.total is not None), None)

    @property
    def rc(self) -> float | None:
        """The instrument's reliable-change value."""
        return self.instrument.reliable_change.value if self.instrument.reliable_change else None

    def reading(self, earlier: ScorePoint | None) -> str:
        """Against earlier: better or worse by at least the reliable change, "same" (less), "none" (no comparison)."""
        latest = self.latest
        if latest is None or earlier is None or earlier is latest or latest.total is None or earlier.total is None:
            return "none"
        worse_by = self.instrument.worsening(earlier.total, latest.total)
        rc = self.rc
        if rc is None:
            return "same" if worse_by == 0 else ("worse" if worse_by > 0 else "better")
        if worse_by >= rc:
            return "worse"
        if -worse_by >= rc:
            return "better"
        return "same"

    @property
    def since_last(self) -> str:
        """The reading against the previous score."""
        return self.reading(self.previous)

    @property
    def since_start(self) -> str:
        """The reading against the first score."""
        return self.reading(self.first)


@dataclass(frozen=True)
class ComponentReading:
    """One part of the partnership: the latest rating against the client's own usual level (mean of earlier ones)."""

    component: str
    latest: float | None
    usual: float | None

    @property
    def difference(self) -> float | None:
        """Latest minus usual."""
        if self.latest is None or self.usual is None:
            return None
        return self.latest - self.usual

    @property
    def reading(self) -> str:
        """ "below" (at least the component threshold under the usual level), "above", "usual", or "none"."""
        diff = self.difference
        if diff is None:
            return "none"
        if diff <= -COMPONENT_BELOW:
            return "below"
        if diff >= COMPONENT_BELOW:
            return "above"
        return "usual"


@dataclass(frozen=True)
class PartnershipReading:
    """The latest Partnership Check: total, its four parts against the usual level, tension and the comment."""

    instrument: Instrument
    completed_at: datetime
    total: float | None
    usual_total: float | None
    components: tuple[ComponentReading, ...]
    tension: int | None
    comment: str | None
    new: bool
    history: tuple[ScorePoint, ...]


@dataclass(frozen=True)
class GoalRating:
    """One goal in the client's words with its latest and previous ratings (0-10)."""

    number: int
    words: str
    latest: float | None
    previous: float | None
    first: float | None
    ratings: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True)
class RepairTried:
    """The repair step last recorded on one of the episode's partnership alerts."""

    at: datetime
    suggestion: str | None
    component: str | None
    text: str | None


@dataclass(frozen=True)
class SessionBrief:
    """Everything a one-screen brief shows for one session of one episode."""

    client: Client
    episode: Episode
    appointment: Appointment | None
    previous_session_at: datetime | None
    scores: list[ScoreChange]
    partnership: PartnershipReading | None
    goals: list[GoalRating]
    open_alerts: list[Alert]
    repair: RepairTried | None
    discussion: BriefDiscussion | None
    own: bool  # the viewer is the episode's clinician (only they mark it discussed)

    @property
    def has_new_feedback(self) -> bool:
        """True when any answer came in since the last session."""
        return any(s.new for s in self.scores) or bool(self.partnership and self.partnership.new)

    @property
    def empty(self) -> bool:
        """True when the episode has no answers yet."""
        return not self.scores and self.partnership is None and not any(g.ratings for g in self.goals)


@dataclass(frozen=True)
class TodayRow:
    """One of today's sessions on the clinician's home: who, when, and where its brief stands."""

    appointment: Appointment
    client_id: int
    client_name: str
    episode_id: int
    new_answers: int
    opened: bool
    discussed: bool
    open_alerts: int


# ---------------------------------------------------------------------------------------------------------------
# Phases (item-level and timepoints)


def phase_of(index: int, count: int, *, episode_ended: bool, checkpoint: int) -> str:
    """An administration's phase in its series: intake (first), review (the checkpoint), discharge (the last of an
    ended episode), else session."""
    if index == 0:
        return "intake"
    if episode_ended and index == count - 1:
        return "discharge"
    if index == checkpoint - 1:
        return "review"
    return "session"


# ---------------------------------------------------------------------------------------------------------------
# Today


def _previous_session_start() -> ScalarSelect[Any]:
    """The start of the session held before Appointment in its episode (correlated; NULL for the first)."""
    earlier = aliased(Appointment)
    return (
        select(func.max(earlier.starts_at))
        .where(
            earlier.episode_id == Appointment.episode_id,
            earlier.starts_at < Appointment.starts_at,
            earlier.status.in_(HELD_STATUSES),
        )
        .correlate(Appointment)
        .scalar_subquery()
    )


def list_today(session: Session, user: User, *, start: datetime, end: datetime) -> list[TodayRow]:
    """The viewer's own sessions between start and end (a practice-local day), by time, with their brief's state.

    One query: the sessions with their new answers and open alerts counted, and whether the brief was opened by
    the viewer and marked discussed.
    """
    previous_start = _previous_session_start()
    new_answers = (
        select(func.count(Administration.id))
        .where(
            Administration.episode_id == Appointment.episode_id,
            Administration.respondent == "client",
            Administration.completed_at <= func.coalesce(Appointment.ends_at, Appointment.starts_at),
            or_(previous_start.is_(None), Administration.completed_at >= previous_start),
        )
        .correlate(Appointment)
        .scalar_subquery()
    )
    open_alerts = (
        select(func.count(Alert.id))
        .where(Alert.episode_id == Appointment.episode_id, Alert.status != "resolved")
        .correlate(Appointment)
        .scalar_subquery()
    )
    label = literal(f"{BRIEF_VIEW}:", String()) + cast(Appointment.id, String())
    opened = exists(
        select(AuditEvent.id).where(
            AuditEvent.actor_id == user.id,
            AuditEvent.client_id == Client.id,
            AuditEvent.action == "client_viewed",
            AuditEvent.detail["what"].as_string() == label,
        )
    )
    discussed = exists(select(BriefDiscussion.id).where(BriefDiscussion.appointment_id == Appointment.id))
    rows = session.execute(
        select(
            Appointment,
            Client.id,
            Client.first_name,
            Client.last_name,
            Episode.id,
            new_answers,
            open_alerts,
            opened,
            discussed,
        )
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(
            Episode.clinician_id == user.id,
            episode_scope(user),
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
            Appointment.status.in_(HELD_STATUSES),
        )
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    return [
        TodayRow(
            appointment=appointment,
            client_id=client_id,
            client_name=f"{first} {last}",
            episode_id=episode_id,
            new_answers=int(new or 0),
            opened=bool(was_opened),
            discussed=bool(was_discussed),
            open_alerts=int(alerts or 0),
        )
        for appointment, client_id, first, last, episode_id, new, alerts, was_opened, was_discussed in rows
    ]


# ---------------------------------------------------------------------------------------------------------------
# The brief


def get_brief(session: Session, user: User, appointment_id: int, *, now: datetime | None = None) -> SessionBrief | None:
    """The brief for one session the viewer may see (else None)."""
    row = session.execute(
        select(Appointment, Episode, Client)
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Appointment.id == appointment_id, episode_scope(user))
    ).one_or_none()
    if row is None:
        return None
    appointment, episode, client = row
    return _brief(session, user, client, episode, appointment, now=now or utcnow())


def get_episode_brief(
    session: Session, user: User, episode_id: int, *, today_start: datetime, now: datetime | None = None
) -> SessionBrief | None:
    """The brief for an episode's next session (today or later), else its latest one, else with no session."""
    row = session.execute(
        select(Episode, Client)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.id == episode_id, episode_scope(user))
    ).one_or_none()
    if row is None:
        return None
    episode, client = row
    upcoming = session.scalars(
        select(Appointment)
        .where(
            Appointment.episode_id == episode.id,
            Appointment.status.in_(HELD_STATUSES),
        )
        .order_by((Appointment.starts_at < today_start), Appointment.starts_at.desc())
    ).all()
    later = [a for a in upcoming if a.starts_at >= today_start]
    appointment = min(later, key=lambda a: a.starts_at) if later else (upcoming[0] if upcoming else None)
    return _brief(session, user, client, episode, appointment, now=now or utcnow())


def _brief(
    session: Session,
    user: User,
    client: Client,
    episode: Episode,
    appointment: Appointment | None,
    *,
    now: datetime,
) -> SessionBrief:
    reference = appointment.starts_at if appointment is not None else now
    previous_at = (
        session.scalar(
            select(func.max(Appointment.starts_at)).where(
                Appointment.episode_id == episode.id,
                Appointment.starts_at < reference,
                Appointment.status.in_(HELD_STATUSES),
            )
        )
        if appointment is not None
        else None
    )
    cutoff = appointment.ends_at if appointment is not None else now
    administrations = list(
        session.scalars(
            select(Administration)
            .where(
                Administration.episode_id == episode.id,
                Administration.respondent == "client",
                Administration.completed_at <= max(cutoff, reference),
            )
            .order_by(Administration.completed_at, Administration.id)
        )
    )
    open_alerts = list(
        session.scalars(
            select(Alert).where(Alert.episode_id == episode.id, Alert.status != "resolved").order_by(Alert.opened_at)
        )
    )
    repair_row = session.scalars(
        select(AlertAction)
        .join(Alert, Alert.id == AlertAction.alert_id)
        .where(Alert.episode_id == episode.id, AlertAction.action == "repair_step")
        .order_by(AlertAction.at.desc(), AlertAction.id.desc())
        .limit(1)
    ).first()
    discussion = (
        session.scalar(select(BriefDiscussion).where(BriefDiscussion.appointment_id == appointment.id))
        if appointment is not None
        else None
    )
    series = assemble_series(administrations, episode_ended=episode.ended_on is not None)
    scores, partnership, goals = _readings(series, episode, previous_at)
    repair = (
        RepairTried(
            at=repair_row.at,
            suggestion=(repair_row.detail or {}).get("suggestion"),
            component=repair_row.component,
            text=repair_row.text,
        )
        if repair_row is not None
        else None
    )
    return SessionBrief(
        client=client,
        episode=episode,
        appointment=appointment,
        previous_session_at=previous_at,
        scores=scores,
        partnership=partnership,
        goals=goals,
        open_alerts=open_alerts,
        repair=repair,
        discussion=discussion,
        own=episode.clinician_id == user.id,
    )


@dataclass(frozen=True)
class Series:
    """One instrument's administrations in order, as score points, with the rows they came from."""

    instrument: Instrument
    rows: list[Administration]
    points: list[ScorePoint] = field(default_factory=list)


def assemble_series(administrations: Sequence[Administration], *, episode_ended: bool) -> dict[str, Series]:
    """The administrations by instrument, each as score points with its phase and item answers."""
    by_code: dict[str, list[Administration]] = {}
    for row in administrations:
        by_code.setdefault(row.instrument_code, []).append(row)
    out: dict[str, Series] = {}
    checkpoint = DEFAULT_SETTINGS.not_on_track_checkpoint
    for code, rows in by_code.items():
        try:
            instrument = load_instrument(code)
        except UnknownInstrumentError:
            continue
        if instrument.kind == "therapist_alliance":
            continue
        items = [item for item in instrument.items if item.type != "text" and (item.scored or item.risk)]
        points = [
            ScorePoint(
                administration_id=row.id,
                completed_at=row.completed_at,
                total=float(row.total) if row.complete and row.total is not None else None,
                complete=row.complete,
                session=index + 1,
                phase=phase_of(index, len(rows), episode_ended=episode_ended, checkpoint=checkpoint),
                items=tuple(
                    ItemAnswer(number=n + 1, item_id=item.id, value=_number(row.answers.get(item.id)), risk=item.risk)
                    for n, item in enumerate(items)
                ),
            )
            for index, row in enumerate(rows)
        ]
        out[code] = Series(instrument=instrument, rows=rows, points=points)
    return out


def _readings(
    series: dict[str, Series], episode: Episode, previous_at: datetime | None
) -> tuple[list[ScoreChange], PartnershipReading | None, list[GoalRating]]:
    def is_new(at: datetime) -> bool:
        return previous_at is None or at >= previous_at

    scores: list[ScoreChange] = []
    partnership: PartnershipReading | None = None
    goals: list[GoalRating] = []
    for code in sorted(series):
        one = series[code]
        kind = one.instrument.kind
        if kind == "outcome":
            scores.append(
                ScoreChange(instrument=one.instrument, points=tuple(one.points), new=is_new(one.rows[-1].completed_at))
            )
        elif kind == "alliance" and code == PARTNERSHIP:
            partnership = _partnership(one, is_new(one.rows[-1].completed_at))
    goal_series = next((s for s in series.values() if s.instrument.kind == "goals"), None)
    for index, words in enumerate(episode.goals or []):
        item_id = f"goal_{index + 1}"
        ratings: list[tuple[datetime, float]] = []
        if goal_series is not None:
            for row in goal_series.rows:
                value = _number(row.answers.get(item_id))
                if value is not None:
                    ratings.append((row.completed_at, value))
        goals.append(
            GoalRating(
                number=index + 1,
                words=str(words),
                latest=ratings[-1][1] if ratings else None,
                previous=ratings[-2][1] if len(ratings) > 1 else None,
                first=ratings[0][1] if ratings else None,
                ratings=tuple(ratings),
            )
        )
    return scores, partnership, goals


def _partnership(one: Series, new: bool) -> PartnershipReading:
    instrument = one.instrument
    latest = one.rows[-1]
    earlier = [row for row in one.rows[:-1] if row.complete]
    components = []
    for component in instrument.components:
        item = instrument.component_item(component)
        usual_values = [v for v in (_number(row.answers.get(item.id)) for row in earlier) if v is not None]
        components.append(
            ComponentReading(
                component=component,
                latest=_number(latest.answers.get(item.id)),
                usual=fmean(usual_values) if usual_values else None,
            )
        )
    totals = [float(row.total) for row in earlier if row.total is not None]
    tension_items = instrument.items_with_role("tension")
    tension_value = _number(latest.answers.get(tension_items[0].id)) if tension_items else None
    comment_items = instrument.items_with_role("comment")
    comment = latest.answers.get(comment_items[0].id) if comment_items else None
    return PartnershipReading(
        instrument=instrument,
        completed_at=latest.completed_at,
        total=float(latest.total) if latest.complete and latest.total is not None else None,
        usual_total=fmean(totals) if totals else None,
        components=tuple(components),
        tension=int(tension_value) if tension_value is not None and 0 <= tension_value <= 3 else None,
        comment=str(comment).strip() if isinstance(comment, str) and comment.strip() else None,
        new=new,
        history=tuple(one.points),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------------------------------------------
# The view shared with the client


@dataclass(frozen=True)
class PartOverTime:
    """One part of the partnership as the client rated it, session by session."""

    component: str
    ratings: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True)
class TogetherView:
    """What the page turned towards the client shows: only their own scores, goals and partnership ratings."""

    client_id: int
    first_name: str
    language: str
    episode_id: int
    episode_open: bool
    scores: list[ScoreChange]
    goals: list[GoalRating]
    parts: list[PartOverTime]
    revisions: list[GoalRevision]
    own: bool


def get_together_view(session: Session, user: User, client_id: int) -> TogetherView | None:
    """The client's latest visible episode as the shared view shows it (None outside the viewer's scope).

    Three queries: the episode and client, the client's own answers, the goal revisions. Nothing staff-only is read.
    """
    row = session.execute(
        select(Episode, Client.first_name, Client.language)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.client_id == client_id, episode_scope(user))
        .order_by(Episode.ended_on.is_not(None), Episode.started_on.desc(), Episode.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    episode, first_name, language = row
    administrations = list(
        session.scalars(
            select(Administration)
            .where(Administration.episode_id == episode.id, Administration.respondent == "client")
            .order_by(Administration.completed_at, Administration.id)
        )
    )
    revisions = list(
        session.scalars(
            select(GoalRevision).where(GoalRevision.episode_id == episode.id).order_by(GoalRevision.version.desc())
        )
    )
    series = assemble_series(administrations, episode_ended=episode.ended_on is not None)
    scores, _partnership, goals = _readings(series, episode, None)
    parts: list[PartOverTime] = []
    check = series.get(PARTNERSHIP)
    if check is not None:
        for component in check.instrument.components:
            item = check.instrument.component_item(component)
            ratings = tuple(
                (r.completed_at, v) for r in check.rows if (v := _number(r.answers.get(item.id))) is not None
            )
            parts.append(PartOverTime(component=component, ratings=ratings))
    return TogetherView(
        client_id=client_id,
        first_name=first_name,
        language=language or "en",
        episode_id=episode.id,
        episode_open=episode.ended_on is None,
        scores=scores,
        goals=goals,
        parts=parts,
        revisions=revisions,
        own=episode.clinician_id == user.id,
    )


def waiting_briefs(session: Session, *, start: datetime, end: datetime, before: datetime) -> dict[int, int]:
    """Per clinician: their sessions between start and end whose brief has answers (since the session before it,
    up to `before`) that nobody has opened since (no view of the client's brief, chart or alert). One query."""
    previous_start = _previous_session_start()
    latest_answer = (
        select(func.max(Administration.completed_at))
        .where(
            Administration.episode_id == Appointment.episode_id,
            Administration.respondent == "client",
            Administration.completed_at < before,
            or_(previous_start.is_(None), Administration.completed_at >= previous_start),
        )
        .correlate(Appointment)
        .scalar_subquery()
    )
    sessions = (
        select(
            Episode.clinician_id.label("clinician_id"), Episode.client_id.label("client_id"), latest_answer.label("at")
        )
        .select_from(Appointment)
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
            Appointment.status.in_(HELD_STATUSES),
            Episode.ended_on.is_(None),
        )
        .subquery("today")
    )
    opened = exists(
        select(AuditEvent.id).where(
            AuditEvent.client_id == sessions.c.client_id, AuditEvent.at >= sessions.c.at, feedback_view()
        )
    )
    rows = session.execute(
        select(sessions.c.clinician_id, func.count())
        .where(sessions.c.at.is_not(None), ~opened)
        .group_by(sessions.c.clinician_id)
    )
    return {int(c): int(n) for c, n in rows}
