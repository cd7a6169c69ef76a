"""The demo practice: synthetic staff, clients, episodes, appointments, invitations and answers.

Clients are seeded in batches of BATCH_CLIENTS, one transaction each. On PostgreSQL a batch's rows are written with
COPY (ids reserved from the table's sequence first, so they are the ids plain INSERTs in the same order would get);
elsewhere with executemany INSERTs. Each batch's history is then evaluated in bulk, as the workers would have
evaluated it session by session (signals and alerts, without emails about the past).
"""

from __future__ import annotations

import gc
import json
import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, ColumnDefault, Table, func, insert, select
from sqlalchemy.orm import Session

from services.accounts.models import Role, Team, User
from services.accounts.passwords import hash_password
from services.alerts.escalation import settle_history
from services.alerts.evaluation import evaluate_episode_histories
from services.alerts.operations import close_alerts_of_ended_episodes
from services.calibration.operations import fit_expected_recovery
from services.clients.models import Appointment, Client, Episode
from services.clients.operations import CHECK_IN_AFTER
from services.config import Settings
from services.db import Database
from services.demo.names import client_code, synthetic_name
from services.demo.room import seed_feedback_use
from services.demo.trajectories import ClientCourse, client_course, outcome_items
from services.measures import load_instrument, score_administration
from services.practice.crisis import seed_demo_crisis_info
from services.practice.rules import rule_settings
from services.reporting.operations import request_report
from services.reporting.periods import PRACTICE, month_just_ended
from services.surveys.administrations import score_to_json
from services.surveys.invitations import dispatch_invitations
from services.surveys.models import Administration, Invitation
from services.surveys.policy import InvitationPolicy
from services.surveys.protocols import ensure_default_protocols

DEMO_PASSWORD = "rapport-demo"  # noqa: S105 - the published password of the local demo accounts
DEMO_DOMAIN = "demo.rapport.test"
DEMO_LOGINS = {
    "front_desk": f"frontdesk@{DEMO_DOMAIN}",
    "clinician": f"clinician1@{DEMO_DOMAIN}",
    "supervisor": f"supervisor1@{DEMO_DOMAIN}",
    "manager": f"manager@{DEMO_DOMAIN}",
    "admin": f"admin@{DEMO_DOMAIN}",
}
PHQ9, GAD7, PARTNERSHIP, GOALS = "PHQ-9", "GAD-7", "PARTNERSHIP-CHECK", "GOAL-PROGRESS"
PARTNERSHIP_ITEMS = ("pc_rapport", "pc_mutual_goals", "pc_realistic_goals", "pc_shared_responsibility")
CLIENTS_PER_CLINICIAN = 12
CLINICIANS_PER_TEAM = 8
COMPLETION_RATE = 0.78
BATCH_CLIENTS = 500
# Today's sessions, so check-in and the kiosk can be tried at once: at most this many per clinician, on the hour in
# the practice's day (evening sessions included), only at times that can still be checked in.
TODAY_PER_CLINICIAN = 3
# The demo's expected-recovery fit: a synthetic reference cohort, labelled as such wherever the fit is shown.
REFERENCE_EPISODES = 400
REFERENCE_SESSIONS = 12
REFERENCE_SEED_OFFSET = 1000
# Names the cohort a fit came from when it is not the practice's own episodes (charts then say so, in words).
REFERENCE_LABEL = "demo-synthetic-cohort-400"
TODAY_HOURS = range(8, 21)
SESSION_MINUTES = 50
# Scored administrations remembered by their answers (goal and partnership answers repeat often); bounded.
SCORE_MEMO_SIZE = 10_000


class DemoError(RuntimeError):
    """The demo cannot be seeded here (for example, the database already holds clients)."""


@dataclass(frozen=True)
class SeedSummary:
    """What the seed created."""

    teams: int
    staff: int
    clients: int
    episodes: int
    appointments: int
    invitations: int
    administrations: int

    def __str__(self) -> str:
        return (
            f"demo practice: {self.teams} teams, {self.staff} staff, {self.clients} clients, "
            f"{self.appointments} appointments, {self.invitations} invitations, "
            f"{self.administrations} administrations"
        )


def _staff(session: Session, rng: random.Random, clinicians: int) -> tuple[list[User], int]:
    password_hash = hash_password(DEMO_PASSWORD)  # one hash for every demo account keeps seeding quick
    n_teams = max(1, math.ceil(clinicians / CLINICIANS_PER_TEAM))
    teams = [Team(name=f"Team {i + 1}", supervision_weekday=3, supervision_time="13:00") for i in range(n_teams)]
    session.add_all(teams)
    session.flush()
    users: list[User] = []

    def add(role: Role, email: str, team: Team | None, **extra: Any) -> User:
        first, last = synthetic_name(rng)
        user = User(
            email=email,
            name=f"{first} {last}",
            role=role.value,
            team_id=team.id if team else None,
            password_hash=password_hash,
            **extra,
        )
        session.add(user)
        users.append(user)
        return user

    add(Role.ADMIN, DEMO_LOGINS["admin"], None)
    add(Role.MANAGER, DEMO_LOGINS["manager"], None)
    add(Role.FRONT_DESK, DEMO_LOGINS["front_desk"], None)
    add(Role.FRONT_DESK, f"frontdesk2@{DEMO_DOMAIN}", None)
    for i, team in enumerate(teams):
        add(Role.SUPERVISOR, f"supervisor{i + 1}@{DEMO_DOMAIN}", team, on_call=(i == 0))
    clinician_users = [
        add(Role.CLINICIAN, f"clinician{i + 1}@{DEMO_DOMAIN}", teams[i // CLINICIANS_PER_TEAM])
        for i in range(clinicians)
    ]
    session.flush()
    return clinician_users, len(teams)


def _session_times(start: date, count: int, tz: ZoneInfo, rng: random.Random) -> list[datetime]:
    hour = rng.choice([9, 10, 11, 13, 14, 15, 16, 17])
    first = datetime.combine(start, time(hour, 0), tzinfo=tz)
    return [(first + timedelta(weeks=w)).astimezone(UTC) for w in range(count)]


def _today_slots(today: date, tz: ZoneInfo, now: datetime) -> list[datetime]:
    """Today's session starts (UTC) that can still be checked in: upcoming ones first, then ones under way."""
    starts = [datetime.combine(today, time(hour, 0), tzinfo=tz).astimezone(UTC) for hour in TODAY_HOURS]
    open_ = [at for at in starts if at + timedelta(minutes=SESSION_MINUTES) + CHECK_IN_AFTER > now]
    return [at for at in open_ if at > now] + [at for at in open_ if at <= now][::-1]


def _answers(code: str, course: ClientCourse, t: int, rng: random.Random) -> dict[str, Any]:
    if code == PHQ9:
        risk = 1 if course.risk_session == t else 0
        items = [*outcome_items(rng, min(24, course.phq9[t] - risk), 8), risk]
        return {f"phq9_{i + 1}": v for i, v in enumerate(items)}
    if code == GAD7:
        return {f"gad7_{i + 1}": v for i, v in enumerate(outcome_items(rng, course.gad7[t], 7))}
    if code == GOALS:
        return {f"goal_{i + 1}": g[t] for i, g in enumerate(course.goals)}
    answers: dict[str, Any] = dict(zip(PARTNERSHIP_ITEMS, course.alliance_items[t], strict=True))
    answers["pc_tension"] = course.tension[t]
    return answers


def _administration_row(
    code: str, answers: dict[str, Any], memo: dict[tuple[Any, ...], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The stored columns of one scored administration (the same answers always score the same)."""
    key = (code, *answers.items())
    if memo is not None and (known := memo.get(key)) is not None:
        return known
    instrument = load_instrument(code)
    result = score_administration(instrument, answers)
    row = {
        "instrument_code": instrument.code,
        "instrument_version": instrument.version,
        "answers": dict(result.answers),
        "scores": score_to_json(result),
        "total": result.total,
        "complete": result.status != "incomplete",
    }
    if memo is not None and len(memo) < SCORE_MEMO_SIZE:
        memo[key] = row
    return row


def seed_demo(
    database: Database,
    *,
    clients: int = 60,
    months: int = 6,
    clinicians: int | None = None,
    seed: int = 7,
    today: date | None = None,
    timezone: str = "Europe/London",
) -> SeedSummary:
    """Create a reproducible synthetic practice; refuses a database that already has clients."""
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    now = datetime.now(UTC) if today is None else datetime.combine(today, time(12), tzinfo=UTC)
    today = now.astimezone(tz).date()
    n_clinicians = clinicians or max(2, math.ceil(clients / CLIENTS_PER_CLINICIAN))
    window_start = today - timedelta(days=30 * months)
    with database.unit_of_work() as session:
        if session.scalar(select(func.count()).select_from(Client)):
            raise DemoError("this database already has clients; the demo seeds only an empty practice")
        if session.scalar(select(func.count()).select_from(User).where(User.email.like(f"%@{DEMO_DOMAIN}"))):
            raise DemoError("demo accounts already exist in this database")
        ensure_default_protocols(session)
        seed_demo_crisis_info(session)  # synthetic numbers, in English and Spanish
        clinician_users, n_teams = _staff(session, rng, n_clinicians)
        staff_count = session.scalar(select(func.count()).select_from(User)) or 0
        # Too few closed episodes for the practice's own expected-recovery fit: fit it on a labelled synthetic
        # reference cohort (its own generator, so the practice's data stays as it was), so the charts show the
        # expected range and OFF_TRACK can fire. The monthly task replaces it once the practice has 300 episodes.
        _fit_reference_cohort(session, random.Random(seed + REFERENCE_SEED_OFFSET), period=month_just_ended(now, tz))
    clinician_ids = [u.id for u in clinician_users]
    totals = {"episodes": 0, "appointments": 0, "invitations": 0, "administrations": 0}
    taken_codes: set[str] = set()
    booked_today: dict[int, list[datetime]] = {}
    score_memo: dict[tuple[Any, ...], dict[str, Any]] = {}
    for batch_start in range(0, clients, BATCH_CLIENTS):
        batch = range(batch_start, min(clients, batch_start + BATCH_CLIENTS))
        with _collector_paused(), database.unit_of_work() as session:
            counts = _seed_batch(
                session,
                rng,
                batch,
                clinician_ids,
                taken_codes,
                booked_today=booked_today,
                window_start=window_start,
                today=today,
                tz=tz,
                now=now,
                score_memo=score_memo,
            )
        for key, value in counts.items():
            totals[key] += value
    with database.unit_of_work() as session:
        # The history's alerts are history: those of ended episodes are closed, and those past their escalation
        # deadline count as escalated at the time, so the first scheduler pass does not escalate months at once.
        close_alerts_of_ended_episodes(session, today=today, now=now)
        defaults = Settings()
        settle_history(
            session,
            now=now,
            ack_window=timedelta(hours=defaults.ack_window_hours),
            risk_window=timedelta(minutes=defaults.risk_window_minutes),
        )
        # Some briefs opened before their sessions and marked discussed, differently by clinician (issue 15).
        seed_feedback_use(session, random.Random(seed + 15), now=now)
        # Upcoming sessions get their invitations now, as the every-minute job would (sent by the worker).
        dispatch_invitations(session, policy=InvitationPolicy(), now=now)
        # Last month's practice report, so the manager's reports page has one: a pending row the worker renders as
        # soon as it starts (reconcile re-drives it), through the same path as the monthly job's reports.
        request_report(session, scope=PRACTICE, period=month_just_ended(now, tz), now=now)
    return SeedSummary(teams=n_teams, staff=staff_count, clients=clients, **totals)


def _fit_reference_cohort(session: Session, rng: random.Random, *, period: str) -> None:
    courses = [client_course(rng, max_sessions=REFERENCE_SESSIONS) for _ in range(REFERENCE_EPISODES)]
    for code, scores in (("PHQ-9", [c.phq9 for c in courses]), ("GAD-7", [c.gad7 for c in courses])):
        fit_expected_recovery(
            session,
            instrument_code=code,
            period=period,
            episodes=[[float(value) for value in series] for series in scores],
            reference=REFERENCE_LABEL,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one batch (the memory is reclaimed once it runs again).

    A batch allocates hundreds of thousands of objects that live until it ends (rows, ORM instances, signals);
    each automatic collection would rescan them all, which costs about a third of the batch's time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _insert_returning_ids(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(stmt, list(rows)))


def _insert_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]], *, ids: bool = True) -> list[int]:
    """Insert rows in order; return their ids in the same order (with ids=False, none outside PostgreSQL)."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _copy_rows(session, model.__table__, rows)
    if ids:
        return _insert_returning_ids(session, model, rows)
    session.execute(insert(model), list(rows))
    return []


def _copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """PostgreSQL: reserve len(rows) ids from the table's sequence, then COPY the rows in with those ids.

    Columns the rows leave out get their Python-side defaults, as an INSERT through SQLAlchemy would; JSON columns
    are written as the text json.dumps gives, which is what SQLAlchemy sends for them.
    """
    given = list(rows[0])
    if any(len(row) != len(given) for row in rows):
        raise ValueError(f"rows for {table.name} do not all have the same columns")
    columns = {column.name: column for column in table.columns}
    defaults: list[tuple[str, ColumnDefault]] = []
    for name, column in columns.items():
        if name == "id" or name in given or column.default is None:
            continue
        default = column.default
        if not isinstance(default, ColumnDefault) or default.is_clause_element:
            raise ValueError(f"COPY cannot apply the default of {table.name}.{name}; give it in the rows")
        defaults.append((name, default))
    given_json = [(name, isinstance(columns[name].type, JSON)) for name in given]
    defaults_json = [(default, isinstance(columns[name].type, JSON)) for name, default in defaults]
    # JSON text by object: scored answers are shared between rows (the rows keep them alive, so ids stay unique).
    texts: dict[int, str] = {}

    def as_json(value: Any) -> str:
        text = texts.get(id(value))
        if text is None:
            text = texts[id(value)] = json.dumps(value)
        return text

    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (table.name, len(rows))
        )
        ids = sorted(int(value) for (value,) in cursor.fetchall())
        column_list = ", ".join(f'"{name}"' for name in ["id", *given, *(name for name, _ in defaults)])
        with cursor.copy(f'COPY "{table.name}" ({column_list}) FROM STDIN') as copy:
            for row_id, row in zip(ids, rows, strict=True):
                values: list[Any] = [row_id]
                for name, is_json in given_json:
                    value = row[name]
                    values.append(as_json(value) if is_json else value)
                for default, is_json in defaults_json:
                    value = default.arg(None) if default.is_callable else default.arg
                    values.append(json.dumps(value) if is_json else value)
                copy.write_row(values)
    return ids


def _seed_batch(
    session: Session,
    rng: random.Random,
    batch: range,
    clinician_ids: list[int],
    taken_codes: set[str],
    *,
    booked_today: dict[int, list[datetime]] | None = None,
    window_start: date,
    today: date,
    tz: ZoneInfo,
    now: datetime,
    score_memo: dict[tuple[Any, ...], dict[str, Any]] | None = None,
) -> dict[str, int]:
    client_rows, courses, starts = [], [], []
    span = max(7, (today - window_start).days - 7)
    for _ in batch:
        first, last = synthetic_name(rng)
        consent_sms = rng.random() < 0.45
        client_rows.append(
            {
                "code": client_code(rng, taken_codes),
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.test",
                "phone": f"+447700900{rng.randint(0, 999):03d}" if consent_sms else None,  # Ofcom drama range, E.164
                "language": "es" if rng.random() < 0.15 else "en",
                "consent_email": True,
                "consent_sms": consent_sms,
            }
        )
        start = window_start + timedelta(days=rng.randint(0, span))
        weeks_elapsed = max(0, (today - start).days // 7)
        courses.append(client_course(rng, max_sessions=max(1, weeks_elapsed)))
        starts.append(start)
    client_ids = _insert_rows(session, Client, client_rows)

    clinician_of = [clinician_ids[(batch.start + i) % len(clinician_ids)] for i in range(len(client_ids))]
    episode_rows = []
    for i, cid in enumerate(client_ids):
        course, start = courses[i], starts[i]
        last_session = start + timedelta(weeks=course.sessions - 1)
        # A course cut short by today is still running; one that reached its planned length has ended.
        finished = course.course == "drop_out" or course.sessions >= course.planned
        episode_rows.append(
            {
                "client_id": cid,
                "clinician_id": clinician_of[i],
                "protocol_code": "standard",
                "started_on": start,
                "ended_on": (last_session + timedelta(days=7)) if finished and last_session < today else None,
                "end_reason": ("dropped_out" if course.course == "drop_out" else "completed") if finished else None,
                "goals": ["Feel less on edge at work", "Sleep better"],
            }
        )
    episode_ids = _insert_rows(session, Episode, episode_rows)

    appt_rows: list[dict[str, Any]] = []
    appt_meta: list[tuple[int, int, bool]] = []  # (client index, session index, in the past)
    booked_today = {} if booked_today is None else booked_today
    slots = _today_slots(today, tz, now)
    day_start = datetime.combine(today, time(0), tzinfo=tz).astimezone(UTC)
    schedules: list[list[datetime]] = []
    for i in range(len(episode_ids)):
        times = _session_times(starts[i], courses[i].sessions, tz, rng)
        if episode_rows[i]["ended_on"] is None:
            nxt = times[-1] + timedelta(weeks=1)
            while nxt < now:
                nxt += timedelta(weeks=1)
            times += [nxt, nxt + timedelta(weeks=1)]  # the next two sessions
        schedules.append(times)
    # Sessions that fall today anyway keep their clinician busy at that hour.
    busy: dict[int, set[datetime]] = {}
    for i, times in enumerate(schedules):
        busy.setdefault(clinician_of[i], set()).update(
            at for at in times if day_start <= at < day_start + timedelta(days=1)
        )
    moved: list[datetime | None] = []
    for i, times in enumerate(schedules):
        clinician_id = clinician_of[i]
        booked = booked_today.setdefault(clinician_id, [])
        free = [at for at in slots if at not in booked and at not in busy[clinician_id]]
        upcoming = len(times) - courses[i].sessions == 2  # an open episode, its next two sessions at the end
        # The next session moves to today when the clinician has room and the last one was days ago.
        if upcoming and free and len(booked) < TODAY_PER_CLINICIAN and times[-3] < day_start - timedelta(days=2):
            times[-2:] = [free[0], free[0] + timedelta(weeks=1)]
            booked.append(free[0])
            moved.append(free[0])
        else:
            moved.append(None)
    for i, eid in enumerate(episode_ids):
        times, today_at = schedules[i], moved[i]
        for t, at in enumerate(times):
            past = at + timedelta(minutes=SESSION_MINUTES) < now and at != today_at
            appt_rows.append(
                {
                    "episode_id": eid,
                    "starts_at": at,
                    "ends_at": at + timedelta(minutes=SESSION_MINUTES),
                    "status": "completed" if past else "scheduled",
                    "source": "demo",
                }
            )
            appt_meta.append((i, t, past))
    appt_ids = _insert_rows(session, Appointment, appt_rows)

    inv_rows: list[dict[str, Any]] = []
    inv_meta: list[tuple[int, int, str, bool]] = []
    for appt_id, row, (i, t, past) in zip(appt_ids, appt_rows, appt_meta, strict=True):
        if not past or t >= courses[i].sessions:
            continue
        channel = "sms" if client_rows[i]["consent_sms"] and rng.random() < 0.5 else "email"
        for phase in ("pre", "post"):
            completed = rng.random() < COMPLETION_RATE
            sent_at = row["starts_at"] - timedelta(hours=2) if phase == "pre" else row["ends_at"]
            done_at = sent_at + timedelta(minutes=rng.randint(3, 90))
            opened = completed or rng.random() < 0.4
            inv_rows.append(
                {
                    "episode_id": episode_ids[i],
                    "appointment_id": appt_id,
                    "phase": phase,
                    "instruments": [PHQ9, GAD7, GOALS] if phase == "pre" else [PARTNERSHIP],
                    "channel": channel,
                    "status": "completed" if completed else "expired",
                    "due_at": sent_at,
                    "expires_at": sent_at + timedelta(days=3),
                    "sent_at": sent_at,
                    "opened_at": done_at - timedelta(minutes=2) if opened else None,
                    "started_at": done_at - timedelta(minutes=1) if completed else None,
                    "completed_at": done_at if completed else None,
                }
            )
            inv_meta.append((i, t, phase, completed))
    inv_ids = _insert_rows(session, Invitation, inv_rows)

    adm_rows: list[dict[str, Any]] = []
    for inv_id, inv, (i, t, _phase, completed) in zip(inv_ids, inv_rows, inv_meta, strict=True):
        if not completed:
            continue
        for code in inv["instruments"]:
            adm_rows.append(
                {
                    **_administration_row(code, _answers(code, courses[i], t, rng), score_memo),
                    "invitation_id": inv_id,
                    "episode_id": inv["episode_id"],
                    "appointment_id": inv["appointment_id"],
                    "language": client_rows[i]["language"],
                    "completed_at": inv["completed_at"],
                    "evaluated_at": None,
                }
            )
    _insert_rows(session, Administration, adm_rows, ids=False)
    # Evaluate the history as the workers would have, without sending anyone an email about the past.
    evaluate_episode_histories(session, episode_ids, settings=rule_settings(session))
    return {
        "episodes": len(episode_ids),
        "appointments": len(appt_ids),
        "invitations": len(inv_ids),
        "administrations": len(adm_rows),
    }
