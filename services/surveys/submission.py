"""The client's side of an invitation: open it by its link, answer it step by step, submit it once, or opt out.

Flask-free: the web layer parses the request, calls these, commits once and enqueues after the commit.
Single use is a conditional UPDATE (open status -> completed) in the same transaction as the answers: of two
racing submits exactly one updates a row, and the other writes nothing. Opening (GET) never consumes a link.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

from sqlalchemy import JSON, CursorResult, Table, bindparam, func, insert, literal_column, select, update
from sqlalchemy.orm import Session

from services.audit.operations import record_event
from services.clients.models import Client, Episode
from services.db import UTCDateTime
from services.measures import AnswerError, Instrument, Item, load_instrument, score_administration
from services.measures.scoring import ScoreResult
from services.surveys.administrations import score_to_json
from services.surveys.invitations import ANSWERABLE_STATUSES, cancel_invitations
from services.surveys.models import Administration, Invitation, InvitationToken
from services.surveys.tokens import looks_like_token, token_hash

PARTNERSHIP_CHECK = "PARTNERSHIP-CHECK"
ROTATION_GROUP = "elements"
KIOSK = "kiosk"
LANGUAGES = ("en", "es")

_EXEC = {"synchronize_session": False}

# Plain tables for the hot path: statements built once, cached compiled, executed on the session's connection.
_invitations = cast(Table, Invitation.__table__)
_tokens = cast(Table, InvitationToken.__table__)
_episodes = cast(Table, Episode.__table__)
_clients = cast(Table, Client.__table__)
_administrations = cast(Table, Administration.__table__)


def _now() -> Any:
    return bindparam("now", type_=UTCDateTime())


def _answerable() -> Any:
    # Constants written into the SQL (an expanding IN parameter makes SQLAlchemy re-render it on every execution).
    return _invitations.c.status.in_([literal_column(f"'{status}'") for status in ANSWERABLE_STATUSES])


class _PgStatement:
    """A Core statement compiled once for PostgreSQL and run on the session's own psycopg connection.

    Only for the statements every survey submission runs (the link look-up and the complete-and-store): SQLAlchemy's
    per-execution work on them (cache key, parameter and result processing) was a fifth of a submission's CPU. The
    SQL is SQLAlchemy's rendering of the same statement, so there is still one definition; it runs inside the
    session's transaction (same connection), and psycopg prepares it server-side after a few executions. Parameters
    arrive as the database wants them (JSON as text, timestamps aware), results come back as plain rows.
    """

    def __init__(self, statement: Any) -> None:
        from sqlalchemy.dialects import postgresql

        compiled = statement.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("a statement for the raw path must render to fixed SQL")
        self.constants = {name: value for name, value in compiled.params.items() if value is not None}

    def run(self, session: Session, params: Mapping[str, Any]) -> Any:
        from psycopg.rows import namedtuple_row

        driver = session.connection().connection.driver_connection
        assert driver is not None
        cursor = driver.cursor(row_factory=namedtuple_row)
        return cursor.execute(self.sql, {**self.constants, **params})


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class LinkState(enum.StrEnum):
    """What a survey link leads to right now."""

    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    CANCELLED = "cancelled"


class SurveyClosedError(Exception):
    """The invitation can no longer be answered (used, expired, cancelled or not live)."""

    def __init__(self, state: LinkState) -> None:
        super().__init__(f"the survey is {state.value}")
        self.state = state


class HasStatus(Protocol):
    """An invitation, or what a survey page read of one."""

    @property
    def status(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...


def link_state(invitation: HasStatus | None, now: datetime) -> LinkState:
    """Classify an invitation (None: no such link) for the page the client should see."""
    if invitation is None:
        return LinkState.UNKNOWN
    if invitation.status == "completed":
        return LinkState.USED
    if invitation.status == "cancelled":
        return LinkState.CANCELLED
    if invitation.status == "expired" or invitation.expires_at <= now:
        return LinkState.EXPIRED
    if invitation.status in ANSWERABLE_STATUSES:
        return LinkState.OPEN
    # scheduled or failed: the link was never delivered as far as we know.
    return LinkState.UNKNOWN


@dataclass(frozen=True, slots=True)
class SurveyContext:
    """What the survey pages need about an invitation, its episode and its client (read once per request)."""

    invitation_id: int
    episode_id: int
    appointment_id: int | None
    client_id: int
    first_name: str
    language: str
    goals: tuple[str, ...]
    instruments: tuple[str, ...]
    channel: str


@dataclass(frozen=True, slots=True)
class SurveyLink:
    """An invitation as a survey page sees it: where it stands, and the context to show it."""

    context: SurveyContext
    status: str
    expires_at: datetime
    opened_at: datetime | None

    @property
    def invitation_id(self) -> int:
        """The invitation's id."""
        return self.context.invitation_id

    def state(self, now: datetime) -> LinkState:
        """What the link leads to now."""
        return link_state(self, now)


_LINK_COLUMNS = (
    _invitations.c.id,
    _invitations.c.episode_id,
    _invitations.c.appointment_id,
    _invitations.c.instruments,
    _invitations.c.channel,
    _invitations.c.status,
    _invitations.c.expires_at,
    _invitations.c.opened_at,
    _clients.c.id.label("client_id"),
    _clients.c.first_name,
    _clients.c.language,
    _episodes.c.goals,
)
_LINK_FROM = _invitations.join(_episodes, _episodes.c.id == _invitations.c.episode_id).join(
    _clients, _clients.c.id == _episodes.c.client_id
)
_LINK_BY_TOKEN = (
    select(*_LINK_COLUMNS)
    .select_from(_LINK_FROM.join(_tokens, _tokens.c.invitation_id == _invitations.c.id))
    .where(_tokens.c.token_hash == bindparam("token_hash"))
)
_LINK_BY_ID = select(*_LINK_COLUMNS).select_from(_LINK_FROM).where(_invitations.c.id == bindparam("invitation_id"))
_PG_LINK_BY_TOKEN = _PgStatement(_LINK_BY_TOKEN)


def _link(row: Any, *, utc: bool = False) -> SurveyLink | None:
    if row is None:
        return None
    expires_at, opened_at = row.expires_at, row.opened_at
    if utc:  # straight from psycopg: in the connection's time zone (UTCDateTime does this on the Core path)
        expires_at = expires_at.astimezone(UTC)
        opened_at = opened_at.astimezone(UTC) if opened_at is not None else None
    goals = tuple(str(goal) for goal in (row.goals or []) if str(goal).strip())
    context = SurveyContext(
        invitation_id=row.id,
        episode_id=row.episode_id,
        appointment_id=row.appointment_id,
        client_id=row.client_id,
        first_name=row.first_name,
        language=row.language if row.language in LANGUAGES else "en",
        goals=goals,
        instruments=tuple(row.instruments or ()),
        channel=row.channel,
    )
    return SurveyLink(context=context, status=row.status, expires_at=expires_at, opened_at=opened_at)


def find_survey_link(session: Session, raw: str) -> SurveyLink | None:
    """What a raw link token opens, in one query, or None (malformed or tampered tokens never reach the database).

    The same lookup as invitations.find_invitation_by_token (the token's hash in invitation_tokens), joined with the
    episode and client the pages need, so a request reads its invitation once.
    """
    if not looks_like_token(raw):
        return None
    params = {"token_hash": token_hash(raw)}
    if _on_postgresql(session):
        return _link(_PG_LINK_BY_TOKEN.run(session, params).fetchone(), utc=True)
    return _link(session.connection().execute(_LINK_BY_TOKEN, params).first())


def find_survey_by_id(session: Session, invitation_id: int) -> SurveyLink | None:
    """The same, for an invitation a kiosk claimed (the tablet's signed cookie names it)."""
    return _link(session.connection().execute(_LINK_BY_ID, {"invitation_id": invitation_id}).first())


_MARK_OPENED = (
    update(_invitations)
    .where(
        _invitations.c.id == bindparam("invitation_id"),
        _invitations.c.opened_at.is_(None),
        _answerable(),
    )
    .values(opened_at=_now(), status="opened")
)
_MARK_STARTED = (
    update(_invitations)
    .where(_invitations.c.id == bindparam("invitation_id"), _invitations.c.status.in_(("sent", "opened")))
    .values(
        status="started",
        started_at=func.coalesce(_invitations.c.started_at, _now()),
        opened_at=func.coalesce(_invitations.c.opened_at, _now()),
    )
)
_COMPLETE = (
    update(_invitations)
    .where(
        _invitations.c.id == bindparam("invitation_id"),
        _answerable(),
        _invitations.c.expires_at > _now(),
    )
    .values(
        status="completed",
        completed_at=_now(),
        opened_at=func.coalesce(_invitations.c.opened_at, _now()),
        started_at=func.coalesce(_invitations.c.started_at, _now()),
    )
)
_STORE = insert(_administrations).returning(_administrations.c.id, sort_by_parameter_order=True)


def _changed(session: Session, stmt: Any, params: Mapping[str, Any]) -> int:
    result = cast(CursorResult[Any], session.connection().execute(stmt, params))
    return int(result.rowcount)


def mark_opened(session: Session, invitation_id: int, now: datetime) -> bool:
    """Record the first opening of a link (a mail scanner's prefetch counts too); never consumes it."""
    # status is "sent" whenever opened_at is null, so the status move is safe inside the same condition.
    return _changed(session, _MARK_OPENED, {"invitation_id": invitation_id, "now": now}) == 1


def mark_started(session: Session, invitation_id: int, now: datetime) -> bool:
    """Record that the client answered a first step (for the funnel); a no-op after that."""
    return _changed(session, _MARK_STARTED, {"invitation_id": invitation_id, "now": now}) == 1


def current_state(session: Session, invitation_id: int, now: datetime) -> LinkState:
    """Re-read an invitation's state (after a conditional update found nothing to change)."""
    return link_state(find_survey_by_id(session, invitation_id), now)


# --- the survey's steps --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    """One item as the client sees it: its number on the page and, for goals, the client's own words."""

    item: Item
    number: int
    goal_text: str | None = None

    @property
    def id(self) -> str:
        """The item id (also the form field's name)."""
        return self.item.id

    def text(self, language: str) -> str:
        """The question in a language (English when the item has no text in it)."""
        if self.goal_text is not None:
            return self.goal_text
        return self.item.text.get(language) or self.item.text.get("en") or next(iter(self.item.text.values()))

    @property
    def required(self) -> bool:
        """Whether the page insists on an answer."""
        return self.item.required


@dataclass(frozen=True, slots=True)
class Step:
    """One instrument on one page, with the items it asks and the ones it does not (unset goals, other elements)."""

    instrument: Instrument
    questions: tuple[Question, ...]
    not_applicable: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The instrument's code."""
        return self.instrument.code

    def question(self, item_id: str) -> Question | None:
        """The question for an item id, if this step asks it."""
        return next((q for q in self.questions if q.id == item_id), None)


def rotating_element_for(session: Session, episode_id: int) -> str | None:
    """The Partnership Check element asked this time: each of the five in turn over the episode's sessions."""
    instrument = load_instrument(PARTNERSHIP_CHECK)
    asked_before = session.scalar(
        select(func.count())
        .select_from(Administration)
        .where(Administration.episode_id == episode_id, Administration.instrument_code == PARTNERSHIP_CHECK)
    )
    try:
        return instrument.rotating_item(ROTATION_GROUP, int(asked_before or 0) + 1).id
    except KeyError:
        return None


def plan_survey(instruments: Sequence[str], goals: Sequence[str], *, rotating_item: str | None) -> tuple[Step, ...]:
    """The steps of a survey: one per instrument, goals in the client's words, one rotating element at most.

    A goals instrument with no goals set is left out (there is nothing to rate).
    """
    steps: list[Step] = []
    for code in instruments:
        instrument = load_instrument(code)
        questions: list[Question] = []
        skipped: list[str] = []
        goal_index = 0
        for item in instrument.items:
            if item.text_source == "episode_goal":
                goal = goals[goal_index] if goal_index < len(goals) else None
                goal_index += 1
                if goal is None:
                    skipped.append(item.id)
                    continue
                questions.append(Question(item=item, number=len(questions) + 1, goal_text=goal))
                continue
            if item.rotation is not None and item.id != rotating_item:
                continue  # not asked this time; unscored, so nothing to mark
            questions.append(Question(item=item, number=len(questions) + 1))
        if not any(q.item.scored for q in questions):
            continue
        # Free-text questions ("anything we could do differently?") come last on the page.
        ordered = sorted(questions, key=lambda q: q.item.type == "text")
        numbered = tuple(Question(item=q.item, number=n, goal_text=q.goal_text) for n, q in enumerate(ordered, 1))
        steps.append(Step(instrument=instrument, questions=numbered, not_applicable=tuple(skipped)))
    return tuple(steps)


ProblemKind = Literal["missing", "invalid", "too_long"]


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one answer on a page (the web layer words it)."""

    question: Question
    kind: ProblemKind


@dataclass(frozen=True, slots=True)
class StepAnswers:
    """A page's answers read from its form: the ones that are usable, and what is missing or wrong."""

    answers: dict[str, float | str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)


def read_step(step: Step, form: Mapping[str, str]) -> StepAnswers:
    """Read one page's answers from form fields named by item id; only the questions the page asked count."""
    answers: dict[str, float | str] = {}
    raw: dict[str, str] = {}
    problems: list[Problem] = []
    for question in step.questions:
        value = form.get(question.id)
        text = value.strip() if isinstance(value, str) else ""
        if text:
            raw[question.id] = text
        checked = _check(question, text)
        if isinstance(checked, Problem):
            problems.append(checked)
        elif checked is not None:
            answers[question.id] = checked
    return StepAnswers(answers=answers, problems=tuple(problems), raw=raw)


def check_kept_answers(step: Step, answers: Mapping[str, object]) -> dict[str, float | str]:
    """Validate a step's answers carried from an earlier page (raises AnswerError naming the item)."""
    unknown = sorted(set(answers) - {q.id for q in step.questions})
    if unknown:
        raise AnswerError(step.code, unknown[0], "was not asked")
    checked: dict[str, float | str] = {}
    for question in step.questions:
        value = answers.get(question.id)
        if isinstance(value, bool) or not isinstance(value, str | int | float | None):
            raise AnswerError(step.code, question.id, f"answer {value!r} is not allowed")
        text = value.strip() if isinstance(value, str) else ("" if value is None else repr(float(value)))
        result = _check(question, text)
        if isinstance(result, Problem):
            problem = "was not answered" if result.kind == "missing" else f"answer {value!r} is not allowed"
            raise AnswerError(step.code, question.id, problem)
        if result is not None:
            checked[question.id] = result
    return checked


def _check(question: Question, text: str) -> float | str | Problem | None:
    """One answer as stored, None when left blank (and allowed to be), or the problem with it."""
    item = question.item
    if not text:
        return Problem(question, "missing") if question.required else None
    if item.type == "text":
        if item.max_length is not None and len(text) > item.max_length:
            return Problem(question, "too_long")
        return text
    number = _number(text)
    if number is None or not item.allows(number):
        return Problem(question, "invalid")
    return number


def _number(value: str) -> float | None:
    if len(value) > 24:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# --- submission ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submitted:
    """The stored administrations and whether any risk item was answered above 0 (crisis information)."""

    administration_ids: tuple[int, ...]
    risk: bool


def submit_survey(
    session: Session,
    context: SurveyContext,
    steps: Sequence[Step],
    answers: Mapping[str, Mapping[str, object]],
    *,
    language: str,
    now: datetime,
) -> Submitted:
    """Validate and score every step, complete the invitation once, and store one administration per step.

    Raises AnswerError (nothing written) for bad answers and SurveyClosedError (nothing written) when the
    invitation was already used, has expired or was cancelled. Executes, never commits: the caller commits.
    """
    scored: list[tuple[Step, ScoreResult]] = []
    for step in steps:
        given = check_kept_answers(step, answers.get(step.code, {}))
        scored.append((step, score_administration(step.instrument, given, not_applicable=step.not_applicable)))
    rows = [administration_row(context, step.instrument, result, language=language, now=now) for step, result in scored]
    ids = _complete_and_store(session, context.invitation_id, rows, now)
    if ids is None:
        raise SurveyClosedError(current_state(session, context.invitation_id, now))
    return Submitted(administration_ids=ids, risk=any(result.risk_positive for _, result in scored))


def _complete_and_store(
    session: Session, invitation_id: int, rows: Sequence[dict[str, Any]], now: datetime
) -> tuple[int, ...] | None:
    """Complete the invitation if it is still answerable and store its rows; None (nothing written) if it is not.

    The conditional UPDATE is what makes this the only submit, so the rows go in as one INSERT (rather than
    record_administration's look-up-then-insert per instrument); the (invitation, instrument) unique key stays.
    On PostgreSQL both are one statement (the INSERT selects from the UPDATE's RETURNING, so it writes rows only
    when the UPDATE completed the invitation): one round trip fewer on the busiest write of the service.
    """
    params: dict[str, Any] = {"invitation_id": invitation_id, "now": now}
    if _on_postgresql(session) and rows:
        # The rows travel as one JSON array (one parameter, not fourteen per row) and become typed rows in SQL.
        params["rows"] = json.dumps([_json_row(row) for row in rows])
        stored = _PG_COMPLETE_AND_INSERT.run(session, params).fetchall()
        if not stored:
            return None
        by_code = {str(code): int(i) for i, code in stored}
        return tuple(by_code[row["instrument_code"]] for row in rows)
    if _changed(session, _COMPLETE, params) != 1:
        return None
    return tuple(int(i) for i in session.connection().execute(_STORE, list(rows)).scalars())


_STORED_COLUMNS = (
    "invitation_id",
    "episode_id",
    "appointment_id",
    "instrument_code",
    "instrument_version",
    "respondent",
    "answers",
    "scores",
    "total",
    "complete",
    "free_text",
    "language",
    "completed_at",
    "eval_attempts",
)


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # What json_populate_recordset reads: the stored columns but the invitation (the UPDATE supplies it), times as
    # ISO 8601 with their offset. JSON columns go in as nested JSON, written as the JSON column type writes them.
    out = {name: row[name] for name in _STORED_COLUMNS[1:]}
    out["completed_at"] = row["completed_at"].isoformat()
    return out


def _pg_complete_and_insert() -> _PgStatement:
    """WITH done AS (UPDATE invitations ... RETURNING id) INSERT INTO administrations SELECT ... FROM done, rows."""
    done = _COMPLETE.returning(_invitations.c.id).cte("done")
    rows = func.json_populate_recordset(
        literal_column(f"NULL::{_administrations.name}"), bindparam("rows", type_=JSON)
    ).table_valued(*(_administrations.c[name] for name in _STORED_COLUMNS[1:]), name="r")
    source = select(done.c.id, *(rows.c[name] for name in _STORED_COLUMNS[1:])).select_from(done).select_from(rows)
    return _PgStatement(
        insert(_administrations)
        .from_select(list(_STORED_COLUMNS), source)
        .add_cte(done)
        .returning(_administrations.c.id, _administrations.c.instrument_code)
    )


_PG_COMPLETE_AND_INSERT = _pg_complete_and_insert()


def administration_row(
    context: SurveyContext, instrument: Instrument, result: ScoreResult, *, language: str, now: datetime
) -> dict[str, Any]:
    """The administrations row of one scored instrument (the columns record_administration fills)."""
    free_text = next(
        (v for k, v in result.answers.items() if isinstance(v, str) and instrument.item(k).type == "text"), None
    )
    return {
        "invitation_id": context.invitation_id,
        "episode_id": context.episode_id,
        "appointment_id": context.appointment_id,
        "instrument_code": instrument.code,
        "instrument_version": instrument.version,
        "respondent": "client",
        "answers": dict(result.answers),
        "scores": score_to_json(result),
        "total": result.total,
        "complete": result.status != "incomplete",
        "free_text": free_text,
        "language": language,
        "completed_at": now,
        "eval_attempts": 0,
    }


def risk_in_answers(steps: Sequence[Step], answers: Mapping[str, Mapping[str, object]]) -> bool:
    """Whether answers held so far put any risk item of these steps above 0 (the survey then shows crisis help)."""
    for step in steps:
        given = answers.get(step.code, {})
        for item in step.instrument.risk_items:
            value = given.get(item.id)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return True
    return False


# --- kiosk ---------------------------------------------------------------------------------------------------
#
# The front desk hands an invitation to the kiosk by minting a token of purpose "kiosk" for it. A tablet claims
# the oldest such hand-out by starting the invitation: a hand-out is waiting while the invitation is answerable
# and was not started since the hand-out was made (so a client who began on their phone can still finish on the
# tablet once the front desk hands it over).


@dataclass(frozen=True, slots=True)
class KioskHandout:
    """An invitation waiting on the kiosk, and when the front desk handed it over."""

    invitation_id: int
    handed_out_at: datetime


def _waiting() -> Any:
    return (Invitation.started_at.is_(None)) | (Invitation.started_at < InvitationToken.created_at)


def next_kiosk_handout(session: Session, now: datetime) -> KioskHandout | None:
    """The oldest kiosk hand-out no tablet has picked up yet (what the locked start screen offers)."""
    row = session.execute(
        select(Invitation.id, InvitationToken.created_at)
        .join(InvitationToken, InvitationToken.invitation_id == Invitation.id)
        .where(
            InvitationToken.purpose == KIOSK,
            Invitation.status.in_(ANSWERABLE_STATUSES),
            Invitation.expires_at > now,
            _waiting(),
        )
        .order_by(InvitationToken.created_at, InvitationToken.id)
        .limit(1)
    ).first()
    return None if row is None else KioskHandout(invitation_id=row[0], handed_out_at=row[1])


def claim_kiosk_handout(session: Session, handout: KioskHandout, now: datetime) -> bool:
    """Start a handed-out invitation on one tablet; of two tablets racing for it, exactly one wins."""
    stmt = (
        update(Invitation)
        .where(
            Invitation.id == handout.invitation_id,
            Invitation.status.in_(ANSWERABLE_STATUSES),
            Invitation.expires_at > now,
            (Invitation.started_at.is_(None)) | (Invitation.started_at < handout.handed_out_at),
        )
        .values(status="started", started_at=now, opened_at=func.coalesce(Invitation.opened_at, now))
        .execution_options(**_EXEC)
    )
    return _rowcount(session, stmt) == 1


def release_kiosk_handout(session: Session, invitation_id: int, claimed_at: datetime) -> bool:
    """Give a claimed invitation back to the kiosk queue ("this is not me"), if nothing happened to it since."""
    stmt = (
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == "started", Invitation.started_at == claimed_at)
        .values(status="opened", started_at=None)
        .execution_options(**_EXEC)
    )
    return _rowcount(session, stmt) == 1


# --- opting out ----------------------------------------------------------------------------------------------


def opt_out(session: Session, context: SurveyContext, now: datetime, *, ip: str | None = None) -> int:
    """Stop all messages to a link's client and cancel their pending invitations; returns how many.

    Works from any link the client was sent, used or expired, and a second time changes nothing.
    """
    first = _rowcount(
        session,
        update(Client)
        .where(Client.id == context.client_id, Client.opted_out_at.is_(None))
        .values(opted_out_at=now)
        .execution_options(**_EXEC),
    )
    cancelled = cancel_invitations(session, client_id=context.client_id, reason="client opted out", now=now)
    if first or cancelled:
        record_event(
            session,
            action="client_opted_out",
            actor_label="client (survey link)",
            subject_type="client",
            subject_id=context.client_id,
            client_id=context.client_id,
            ip=ip,
            detail={"invitation_id": context.invitation_id, "cancelled_invitations": cancelled},
        )
    return cancelled


def _rowcount(session: Session, stmt: Any) -> int:
    result = cast(CursorResult[Any], session.execute(stmt))
    return int(result.rowcount)
