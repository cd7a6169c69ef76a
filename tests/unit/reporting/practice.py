"""A synthetic practice built in the test, and an independent computation of the report's figures from it.

The builder writes rows and keeps the values it wrote; `expected_*` recompute the report's definitions in plain
Python from those values (zoneinfo for the months, services.signals.episode_outcome for outcomes, numpy for the
percentiles), never through the SQL under test.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.orm import Session

from services.accounts.models import Team, User
from services.alerts.models import Alert, AlertAction, SignalRecord
from services.clients.models import Appointment, Client, Episode
from services.practice.rules import change_rules, rule_settings
from services.reviews.models import Review
from services.signals import episode_outcome
from services.surveys.models import Administration, Invitation

TZ = ZoneInfo("Europe/London")
PERIOD = "2026-10"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
PHQ9, GAD7, PC, TPC = "PHQ-9", "GAD-7", "PARTNERSHIP-CHECK", "THERAPIST-PARTNERSHIP-CHECK"


def local_period(at: datetime | date) -> str:
    """The practice-local month of an instant or a date."""
    if isinstance(at, datetime):
        at = at.astimezone(TZ)
    return f"{at.year:04d}-{at.month:02d}"


def month_days(period: str) -> tuple[date, date]:
    year, month = int(period[:4]), int(period[5:])
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def local(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """A practice-local wall-clock time as a UTC instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


@dataclass
class Texts:
    """Free text written into every free-text field of the data model (plain, or hostile in the hostile test)."""

    practice: str = "Riverside Test Practice"
    team: str = ""
    clinician: str = ""
    client_name: str = ""
    client_code: str = ""
    goal: str = ""
    free_text: str = ""
    action: str = ""
    review_note: str = ""
    component: str = ""


@dataclass
class Practice:
    """The rows the builder wrote, with the values it gave them."""

    teams: dict[str, Team] = field(default_factory=dict)
    clinicians: list[User] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    appointments: list[Appointment] = field(default_factory=list)
    invitations: list[Invitation] = field(default_factory=list)
    administrations: list[Administration] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    actions: list[AlertAction] = field(default_factory=list)
    team_of: dict[int, str] = field(default_factory=dict)  # clinician id -> team name

    def episodes_in(self, scope: str) -> set[int]:
        """Ids of the episodes a scope covers."""
        if scope == "practice":
            return {e.id for e in self.episodes}
        kind, _, ident = scope.partition(":")
        if kind == "clinician":
            return {e.id for e in self.episodes if e.clinician_id == int(ident)}
        team = next(name for name, t in self.teams.items() if t.id == int(ident))
        return {e.id for e in self.episodes if self.team_of[e.clinician_id] == team}


CLINICIANS = (  # name, team, clients
    ("Avery Lindqvist", "North", 16),
    ("Blake Okafor", "North", 14),
    ("Casey Moreau", "South", 13),
    ("Drew Small", "South", 2),
)


CHECKPOINT = 4
TENSION = 2


def build_practice(session: Session, *, seed: int = 11, texts: Texts | None = None) -> Practice:
    """Write a practice of four clinicians in two teams, about 45 clients over August to November 2026."""
    texts = texts or Texts()
    rng = random.Random(seed)
    # The fixture's signals are written with CLINICAL.md's values (NOT_ON_TRACK at the 4th score, tension from 2),
    # so the practice runs with them rather than Rapport's defaults.
    in_force = rule_settings(session)
    if (in_force.not_on_track_checkpoint, in_force.tension_threshold) != (CHECKPOINT, TENSION):
        change_rules(
            session,
            {"not_on_track_checkpoint": CHECKPOINT, "tension_threshold": TENSION},
            user_id=None,
            reason="the fixture practice runs CLINICAL.md's values",
        )
    p = Practice()
    for name in ("North", "South"):
        team = Team(name=f"Team {name}{texts.team}")
        session.add(team)
        p.teams[name] = team
    session.flush()
    for i, (name, team_name, _) in enumerate(CLINICIANS):
        user = User(
            email=f"clin{i}@example.test",
            name=f"{name}{texts.clinician}",
            role="clinician",
            team_id=p.teams[team_name].id,
            password_hash="x",
        )
        session.add(user)
        p.clinicians.append(user)
    session.flush()
    for user, (_, team_name, _) in zip(p.clinicians, CLINICIANS, strict=True):
        p.team_of[user.id] = team_name

    n = 0
    for user, (_, _, count) in zip(p.clinicians, CLINICIANS, strict=True):
        for k in range(count):
            n += 1
            client = Client(
                code=f"R{n:04d}{texts.client_code}",
                first_name=f"Testa{n}{texts.client_name}",
                last_name=f"Person{n}{texts.client_name}",
                email=f"c{n}@example.test",
                consent_email=True,
            )
            session.add(client)
            session.flush()
            p.clients.append(client)
            # A third start in August with 8 to 10 sessions, so some episodes close in October.
            if k % 3 == 0:
                start = date(2026, 8, 3) + timedelta(days=rng.randint(0, 20))
                planned = rng.randint(8, 10)
            else:
                start = date(2026, 8, 10) + timedelta(days=rng.randint(0, 80))
                planned = rng.randint(4, 14)
            _episode(session, p, rng, client, user, start, planned, texts)
    _boundary_events(session, p, texts)
    _reviews(session, p, rng, texts)
    session.flush()
    return p


def _episode(
    session: Session,
    p: Practice,
    rng: random.Random,
    client: Client,
    clinician: User,
    start: date,
    planned: int,
    texts: Texts,
) -> None:
    days = [start + timedelta(weeks=w) for w in range(planned)]
    held_days = [d for d in days if local(d) + timedelta(minutes=50) < NOW]
    finished = len(held_days) == planned
    episode = Episode(
        client_id=client.id,
        clinician_id=clinician.id,
        started_on=start,
        ended_on=(days[-1] + timedelta(days=7)) if finished and days[-1] + timedelta(days=7) < NOW.date() else None,
        goals=[f"Sleep better{texts.goal}", "Go back to work"],
    )
    session.add(episode)
    session.flush()
    p.episodes.append(episode)
    channel = rng.choice(("email", "email", "sms", "kiosk"))
    phq = float(rng.randint(8, 22))
    gad = float(rng.randint(4, 18))
    drift = rng.choice((-2.0, -1.5, -1.0, -0.5, 0.0, 0.8))
    pc_mean = rng.uniform(30, 38)
    phq_series: list[Administration] = []
    pc_series: list[Administration] = []
    for t, day in enumerate(days):
        starts = local(day, 10)
        status = "completed" if starts + timedelta(minutes=50) < NOW else "scheduled"
        roll = rng.random()
        if status == "completed" and roll < 0.05:
            status = "cancelled"
        elif status == "completed" and roll < 0.08:
            status = "no_show"
        appointment = Appointment(
            episode_id=episode.id, starts_at=starts, ends_at=starts + timedelta(minutes=50), status=status
        )
        session.add(appointment)
        session.flush()
        p.appointments.append(appointment)
        if status != "completed":
            continue
        for phase in ("pre", "post"):
            sent = starts - timedelta(hours=2) if phase == "pre" else starts + timedelta(minutes=50)
            completed = rng.random() < 0.8
            opened = completed or rng.random() < 0.4
            done = sent + timedelta(minutes=rng.randint(3, 90))
            invitation = Invitation(
                episode_id=episode.id,
                appointment_id=appointment.id,
                phase=phase,
                instruments=[PHQ9, GAD7] if phase == "pre" else [PC],
                channel=channel,
                status="completed" if completed else "expired",
                due_at=sent,
                expires_at=sent + timedelta(days=3),
                sent_at=None if channel == "kiosk" else sent,
                opened_at=done - timedelta(minutes=2) if opened else None,
                started_at=done - timedelta(minutes=1) if completed else None,
                completed_at=done if completed else None,
            )
            session.add(invitation)
            session.flush()
            p.invitations.append(invitation)
            if not completed:
                continue
            if phase == "pre":
                phq = min(27.0, max(0.0, phq + drift + rng.choice((-1, 0, 0, 1))))
                gad = min(21.0, max(0.0, gad + drift * 0.7 + rng.choice((-1, 0, 1))))
                incomplete = rng.random() < 0.04
                for code, value in ((PHQ9, phq), (GAD7, gad)):
                    row = _administration(
                        session, p, episode, invitation, appointment, code, None if incomplete else round(value), done
                    )
                    if code == PHQ9:
                        phq_series.append(row)
            else:
                dip = 9 if rng.random() < 0.12 and t >= 2 else 0
                total = float(max(0, min(40, round(pc_mean + rng.uniform(-2, 2) - dip))))
                tension = 2 if dip and rng.random() < 0.5 else rng.choice((0, 0, 0, 1))
                row = _administration(
                    session,
                    p,
                    episode,
                    invitation,
                    appointment,
                    PC,
                    total,
                    done,
                    answers={"pc_tension": tension},
                    free_text=f"More time please{texts.free_text}" if rng.random() < 0.2 else None,
                )
                pc_series.append(row)
                if rng.random() < 0.5:
                    therapist = _administration(
                        session,
                        p,
                        episode,
                        None,
                        appointment,
                        TPC,
                        float(min(40.0, total + rng.choice((0, 2, 7)))),
                        done + timedelta(hours=1),
                        respondent="therapist",
                    )
                    if therapist.total is not None and therapist.total - total >= 6:
                        _signal(session, p, therapist, "PERSPECTIVE_GAP", {"gap": therapist.total - total})
                if dip:
                    _alliance_alert(session, p, rng, episode, row, texts)
    # The checkpoint: a NOT_ON_TRACK signal and an outcome alert on the 4th PHQ-9 when it barely improved.
    if len(phq_series) >= 4:
        first, fourth = phq_series[0], phq_series[3]
        if (
            first.total is not None
            and fourth.total is not None
            and fourth.total >= 10
            and first.total - fourth.total < 3
        ):
            _signal(session, p, fourth, "NOT_ON_TRACK", {"first": first.total, "score": fourth.total})
            _outcome_alert(session, p, rng, episode, fourth)
    if rng.random() < 0.08 and phq_series:
        _risk_alert(session, p, rng, episode, phq_series[-1])


def _administration(
    session: Session,
    p: Practice,
    episode: Episode,
    invitation: Invitation | None,
    appointment: Appointment,
    code: str,
    total: float | None,
    at: datetime,
    *,
    answers: dict[str, Any] | None = None,
    respondent: str = "client",
    free_text: str | None = None,
) -> Administration:
    row = Administration(
        invitation_id=invitation.id if invitation is not None else None,
        episode_id=episode.id,
        appointment_id=appointment.id,
        instrument_code=code,
        instrument_version="1.0.0",
        respondent=respondent,
        answers=answers or {},
        scores={},
        total=total,
        complete=total is not None,
        free_text=free_text,
        completed_at=at,
        evaluated_at=at,
    )
    session.add(row)
    session.flush()
    p.administrations.append(row)
    return row


def _signal(session: Session, p: Practice, row: Administration, kind: str, evidence: dict[str, Any]) -> None:
    signal = SignalRecord(administration_id=row.id, episode_id=row.episode_id, kind=kind, session=1, evidence=evidence)
    session.add(signal)
    session.flush()
    p.signals.append(signal)


def _alert(session: Session, p: Practice, **values: Any) -> Alert:
    alert = Alert(**values)
    session.add(alert)
    session.flush()
    p.alerts.append(alert)
    return alert


def _alliance_alert(
    session: Session, p: Practice, rng: random.Random, episode: Episode, row: Administration, texts: Texts
) -> None:
    if any(a.episode_id == episode.id and a.kind == "alliance" and a.resolved_at is None for a in p.alerts):
        return
    opened = row.completed_at + timedelta(minutes=3)
    acknowledged = opened + timedelta(hours=rng.uniform(0.5, 60)) if rng.random() < 0.85 else None
    resolved = opened + timedelta(days=rng.uniform(3, 30)) if rng.random() < 0.7 else None
    reason = rng.choice(("repaired", "repaired", "not_a_rupture")) if resolved else None
    alert = _alert(
        session,
        p,
        episode_id=episode.id,
        kind="alliance",
        status="resolved" if resolved else ("acknowledged" if acknowledged else "open"),
        opened_at=opened,
        opened_by_administration_id=row.id,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
        resolution_reason=reason,
        repaired_at=resolved if reason == "repaired" else None,
        escalated_at=opened + timedelta(hours=48) if acknowledged is None else None,
    )
    _signal(session, p, row, "COMPONENT_DROP", {"component": "mutual_goals" + texts.component, "drop": 4})
    action = AlertAction(alert_id=alert.id, at=opened, action="note", text=f"Talked it through{texts.action}")
    session.add(action)
    p.actions.append(action)


def _outcome_alert(session: Session, p: Practice, rng: random.Random, episode: Episode, row: Administration) -> None:
    opened = row.completed_at + timedelta(minutes=1)
    acknowledged = opened + timedelta(hours=rng.uniform(1, 30)) if rng.random() < 0.8 else None
    resolved = opened + timedelta(days=rng.uniform(10, 40)) if rng.random() < 0.4 else None
    _alert(
        session,
        p,
        episode_id=episode.id,
        kind="outcome",
        status="resolved" if resolved else ("acknowledged" if acknowledged else "open"),
        opened_at=opened,
        opened_by_administration_id=row.id,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
        resolution_reason="other" if resolved else None,
    )


def _risk_alert(session: Session, p: Practice, rng: random.Random, episode: Episode, row: Administration) -> None:
    opened = row.completed_at + timedelta(seconds=30)
    minutes = rng.choice((5, 20, 45, 90, 200))
    _alert(
        session,
        p,
        episode_id=episode.id,
        kind="risk",
        status="acknowledged",
        severity="risk",
        opened_at=opened,
        opened_by_administration_id=row.id,
        acknowledged_at=opened + timedelta(minutes=minutes),
        escalated_at=opened + timedelta(minutes=60) if minutes > 60 else None,
    )


def _boundary_events(session: Session, p: Practice, texts: Texts) -> None:
    """Events at the edges of October in the practice's zone (BST until 25 October, GMT after)."""
    episode = p.episodes[0]
    for sent in (
        datetime(2026, 9, 30, 23, 30, tzinfo=UTC),  # 00:30 on 1 October, BST: October
        datetime(2026, 9, 30, 22, 30, tzinfo=UTC),  # 23:30 on 30 September, BST: September
        datetime(2026, 10, 31, 23, 30, tzinfo=UTC),  # 23:30 on 31 October, GMT: October
        datetime(2026, 11, 1, 0, 30, tzinfo=UTC),  # 00:30 on 1 November, GMT: November
    ):
        invitation = Invitation(
            episode_id=episode.id,
            phase="adhoc",
            instruments=[PC],
            channel="link",
            status="completed",
            due_at=sent,
            expires_at=sent + timedelta(days=3),
            sent_at=sent,
            opened_at=sent + timedelta(minutes=5),
            completed_at=sent + timedelta(minutes=6),
        )
        session.add(invitation)
        session.flush()
        p.invitations.append(invitation)
    # An answer at 23:59 on 30 September whose alert was opened after midnight: the alert counts in September.
    late = p.episodes[1]
    appointment = next(a for a in p.appointments if a.episode_id == late.id)
    row = _administration(
        session, p, late, None, appointment, PC, 20.0, datetime(2026, 9, 30, 22, 59, tzinfo=UTC), answers={}
    )
    if not any(a.episode_id == late.id and a.kind == "alliance" and a.resolved_at is None for a in p.alerts):
        _alert(
            session,
            p,
            episode_id=late.id,
            kind="alliance",
            status="open",
            opened_at=datetime(2026, 9, 30, 23, 1, tzinfo=UTC),
            opened_by_administration_id=row.id,
        )


def _reviews(session: Session, p: Practice, rng: random.Random, texts: Texts) -> None:
    for i, alert in enumerate(a for a in p.alerts if a.kind == "alliance"):
        created = alert.opened_at + timedelta(days=rng.randint(7, 20))
        due = created + timedelta(days=7)
        completed = created + timedelta(days=rng.choice((3, 6, 9, 12))) if rng.random() < 0.7 else None
        review = Review(
            key=f"test:{alert.id}",
            alert_id=alert.id,
            episode_id=alert.episode_id,
            reason="UNREPAIRED",
            status="completed" if completed else ("cancelled" if i % 9 == 8 else "open"),
            created_at=created,
            due_at=due,
            completed_at=completed,
            form={"notes": f"Discussed in supervision{texts.review_note}"},
        )
        session.add(review)
        p.reviews.append(review)


# ---------------------------------------------------------------------------------------------------------------
# The independent computation


def _within(p: Practice, scope: str) -> set[int]:
    return p.episodes_in(scope)


def _opened_month(p: Practice, alert: Alert) -> str:
    by_id = {a.id: a for a in p.administrations}
    opening = by_id.get(alert.opened_by_administration_id) if alert.opened_by_administration_id else None
    return local_period(opening.completed_at if opening is not None else alert.opened_at)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q * 100, method="linear")) if values else None


@dataclass
class Expected:
    """The figures of one month and scope, computed from the rows' values."""

    active_clients: int = 0
    clients_flagged: int = 0
    sessions: int = 0
    channels: dict[str, list[int]] = field(default_factory=dict)  # channel -> [sent, opened, completed]
    closed: int = 0
    assessed: int = 0
    reliable_improvement: int = 0
    reliable_deterioration: int = 0
    recovery_eligible: int = 0
    recovered: int = 0
    reliable_recovery: int = 0
    partnership_sessions: int = 0
    partnership_mean: float | None = None
    clients_rated: int = 0
    clients_with_rupture: int = 0
    tension_reports: int = 0
    therapist_rated: int = 0
    perspective_gaps: int = 0
    raised: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    repaired: int = 0
    acknowledged: int = 0
    ack_median: float | None = None
    ack_p90: float | None = None
    escalations: int = 0
    risk_alerts: int = 0
    risk_within: int = 0
    unrepaired_open: int = 0
    repair_days_median: float | None = None
    risk_median_minutes: float | None = None
    risk_p90_minutes: float | None = None
    component_drops: dict[str, int] = field(default_factory=dict)
    reviews_opened: int = 0
    reviews_on_time: int = 0
    reviews_late: int = 0
    reviews_overdue: int = 0
    checkpoint_episodes: int = 0
    checkpoint_flagged: int = 0
    not_on_track_codes: set[str] = field(default_factory=set)
    not_on_track_by_clinician: dict[int, int] = field(default_factory=dict)
    per_clinician: dict[int, dict[str, int]] = field(default_factory=dict)


def expected(p: Practice, period: str, scope: str = "practice") -> Expected:
    """Every figure the report shows for period and scope, from the values written."""
    first_day, last_day = month_days(period)
    year, month = int(period[:4]), int(period[5:])
    month_end = local(date(year + (month == 12), month % 12 + 1, 1), 0)
    eps = _within(p, scope)
    episodes = {e.id: e for e in p.episodes if e.id in eps}
    out = Expected()

    def active(e: Episode) -> bool:
        return e.started_on <= last_day and (e.ended_on is None or e.ended_on >= first_day)

    raised_here = {a.episode_id for a in p.alerts if a.episode_id in eps and _opened_month(p, a) == period}
    active_eps = [e for e in episodes.values() if active(e)]
    out.active_clients = len({e.client_id for e in active_eps})
    out.clients_flagged = len({e.client_id for e in active_eps if e.id in raised_here})
    per: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in {e.clinician_id for e in active_eps}:
        mine = [e for e in active_eps if e.clinician_id == c]
        per[c]["caseload"] = len({e.client_id for e in mine})
        per[c]["flagged"] = len({e.client_id for e in mine if e.id in raised_here})

    for a in p.appointments:
        if a.episode_id in eps and a.status == "completed" and local_period(a.starts_at) == period:
            out.sessions += 1
    for inv in p.invitations:
        if inv.episode_id not in eps:
            continue
        offered = next((t for t in (inv.sent_at, inv.opened_at, inv.started_at, inv.completed_at) if t), None)
        if offered is None or local_period(offered) != period:
            continue
        entry = out.channels.setdefault(inv.channel, [0, 0, 0])
        entry[0] += 1
        entry[1] += any(t is not None for t in (inv.opened_at, inv.started_at, inv.completed_at))
        entry[2] += inv.completed_at is not None
        c = episodes[inv.episode_id].clinician_id
        per[c]["sent"] += 1
        per[c]["completed"] += inv.completed_at is not None

    scored: dict[tuple[int, str], list[Administration]] = defaultdict(list)
    for row in sorted(p.administrations, key=lambda r: (r.completed_at, r.id)):
        if row.respondent == "client" and row.complete and row.total is not None:
            scored[(row.episode_id, row.instrument_code)].append(row)
    for e in episodes.values():
        if e.ended_on is None or local_period(e.ended_on) != period:
            continue
        out.closed += 1
        phq, gad = scored[(e.id, PHQ9)], scored[(e.id, GAD7)]
        if len(phq) < 2 or len(gad) < 2:
            continue
        result = episode_outcome(phq[0].total, phq[-1].total, gad[0].total, gad[-1].total)  # type: ignore[arg-type]
        c = e.clinician_id
        out.assessed += 1
        per[c]["assessed"] += 1
        for name, hit in (
            ("reliable_improvement", result.reliable_improvement),
            ("reliable_deterioration", result.reliable_deterioration),
            ("recovery_eligible", result.caseness_start),
            ("recovered", result.recovery),
            ("reliable_recovery", result.reliable_recovery),
        ):
            setattr(out, name, getattr(out, name) + int(hit))
            per[c][name] += int(hit)

    rated = [
        r
        for r in p.administrations
        if r.episode_id in eps
        and r.instrument_code == PC
        and r.respondent == "client"
        and r.total is not None
        and local_period(r.completed_at) == period
    ]
    out.partnership_sessions = len(rated)
    out.partnership_mean = sum(r.total for r in rated) / len(rated) if rated else None  # type: ignore[misc]
    out.clients_rated = len({episodes[r.episode_id].client_id for r in rated})
    out.tension_reports = sum(1 for r in rated if (r.answers.get("pc_tension") or 0) >= 2)
    for r in rated:
        per[episodes[r.episode_id].clinician_id]["partnership"] += 1
    therapist = [
        r
        for r in p.administrations
        if r.episode_id in eps
        and r.instrument_code == TPC
        and r.total is not None
        and local_period(r.completed_at) == period
    ]
    out.therapist_rated = len(therapist)
    gap_admins = {s.administration_id for s in p.signals if s.kind == "PERSPECTIVE_GAP"}
    out.perspective_gaps = sum(1 for r in therapist if r.id in gap_admins)

    ruptured_clients = set()
    for a in p.alerts:
        if a.episode_id not in eps:
            continue
        c = episodes[a.episode_id].clinician_id
        if _opened_month(p, a) == period:
            out.raised[a.kind] = out.raised.get(a.kind, 0) + 1
            if a.kind == "alliance":
                per[c]["ruptures"] += 1
                ruptured_clients.add(episodes[a.episode_id].client_id)
            if a.kind == "risk":
                out.risk_alerts += 1
                minutes = (a.acknowledged_at - a.opened_at).total_seconds() / 60 if a.acknowledged_at else None
                out.risk_within += minutes is not None and minutes <= 60
        if a.resolved_at is not None and local_period(a.resolved_at) == period:
            out.resolved[a.kind] = out.resolved.get(a.kind, 0) + 1
            if a.kind == "alliance":
                per[c]["closed"] += 1
                if a.resolution_reason == "repaired" or a.repaired_at is not None:
                    out.repaired += 1
                    per[c]["repaired"] += 1
        if a.escalated_at is not None and local_period(a.escalated_at) == period:
            out.escalations += 1
    out.clients_with_rupture = len(ruptured_clients & {episodes[r.episode_id].client_id for r in rated})
    by_id = {r.id: r for r in p.administrations}
    repair_days, risk_minutes = [], []
    for a in p.alerts:
        if a.episode_id not in eps:
            continue
        if a.kind == "alliance" and a.opened_at < month_end and (a.resolved_at is None or a.resolved_at >= month_end):
            opening = by_id.get(a.opened_by_administration_id or 0)
            since = opening.completed_at if opening is not None else a.opened_at
            later = [
                r
                for r in p.administrations
                if r.episode_id == a.episode_id
                and r.instrument_code == PC
                and r.respondent == "client"
                and since < r.completed_at < month_end
            ]
            out.unrepaired_open += len(later) >= 3
        repaired = a.resolution_reason == "repaired" or a.repaired_at is not None
        if a.kind == "alliance" and a.resolved_at and local_period(a.resolved_at) == period and repaired:
            repair_days.append(((a.repaired_at or a.resolved_at) - a.opened_at).total_seconds() / 86400)
        if a.kind == "risk" and _opened_month(p, a) == period and a.acknowledged_at is not None:
            risk_minutes.append((a.acknowledged_at - a.opened_at).total_seconds() / 60)
    out.repair_days_median = _pct(repair_days, 0.5)
    out.risk_median_minutes, out.risk_p90_minutes = _pct(risk_minutes, 0.5), _pct(risk_minutes, 0.9)
    for signal in p.signals:
        row = by_id[signal.administration_id]
        if signal.kind == "COMPONENT_DROP" and row.episode_id in eps and local_period(row.completed_at) == period:
            name = str(signal.evidence["component"])
            out.component_drops[name] = out.component_drops.get(name, 0) + 1
    hours = [
        (a.acknowledged_at - a.opened_at).total_seconds() / 3600
        for a in p.alerts
        if a.episode_id in eps and a.acknowledged_at is not None and local_period(a.acknowledged_at) == period
    ]
    out.acknowledged = len(hours)
    out.ack_median, out.ack_p90 = _pct(hours, 0.5), _pct(hours, 0.9)

    for r in p.reviews:
        if r.episode_id not in eps:
            continue
        out.reviews_opened += local_period(r.created_at) == period
        if r.completed_at is not None and local_period(r.completed_at) == period:
            if r.completed_at <= r.due_at:
                out.reviews_on_time += 1
            else:
                out.reviews_late += 1
        open_at_end = r.created_at < month_end and (r.completed_at is None or r.completed_at >= month_end)
        out.reviews_overdue += open_at_end and r.status != "cancelled" and r.due_at < month_end

    # Checkpoint: the 4th PHQ-9 or GAD-7 (any, in completion order) answered this month.
    series: dict[tuple[int, str], list[Administration]] = defaultdict(list)
    for row in sorted(p.administrations, key=lambda r: (r.completed_at, r.id)):
        if row.instrument_code in (PHQ9, GAD7):
            series[(row.episode_id, row.instrument_code)].append(row)
    reached, flagged = set(), set()
    not_on_track = {s.administration_id for s in p.signals if s.kind == "NOT_ON_TRACK"}
    for (episode_id, _), rows in series.items():
        if episode_id in eps and len(rows) >= 4 and local_period(rows[3].completed_at) == period:
            reached.add(episode_id)
            if rows[3].id in not_on_track:
                flagged.add(episode_id)
    out.checkpoint_episodes, out.checkpoint_flagged = len(reached), len(flagged)

    codes = {c.id: c.code for c in p.clients}
    for a in p.alerts:
        e = episodes.get(a.episode_id)
        if e is None or a.kind != "outcome":
            continue
        open_at_end = a.opened_at < month_end and (a.resolved_at is None or a.resolved_at >= month_end)
        still_open = e.started_on <= last_day and (e.ended_on is None or e.ended_on > last_day)
        if open_at_end and still_open:
            out.not_on_track_codes.add(codes[e.client_id])
            out.not_on_track_by_clinician[e.clinician_id] = out.not_on_track_by_clinician.get(e.clinician_id, 0) + 1
    out.per_clinician = {c: dict(v) for c, v in per.items()}
    return out


def trend_periods(p: Practice, period: str) -> list[str]:
    """The months the trend shows: from the first episode's month to period, at most twelve."""
    first = min(e.started_on for e in p.episodes)
    out = []
    year, month = int(period[:4]), int(period[5:])
    for _ in range(12):
        out.append(f"{year:04d}-{month:02d}")
        if (year, month) == (first.year, first.month):
            break
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def all_rows(p: Practice) -> Iterable[Any]:
    """Every row the builder wrote."""
    yield from (*p.clinicians, *p.clients, *p.episodes, *p.alerts, *p.reviews)
