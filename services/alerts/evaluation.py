"""Evaluating administrations: run the pure rules on the episode's series, store the signals, open or update alerts
and queue their notifications, all in the caller's transaction (flush only; the caller commits).

Idempotency and concurrency:

- The episode row is locked first (SELECT ... FOR UPDATE on PostgreSQL; on SQLite a no-op UPDATE takes the
  database's write lock before anything is read, because a read-then-write SQLite transaction cannot wait for it).
  Every writer of an episode's signals and alerts goes through this lock, so evaluations of one episode run one
  after another, each seeing the previous one's commit.
- Under the lock the administration is re-read: if `evaluated_at` is set, nothing happens. Its signals, alert
  changes and notifications were committed together with `evaluated_at`, so a repeat, a redelivered task or a
  second worker adds nothing.
- The unique keys back this up if the lock were ever bypassed: one signal per (administration, kind), one
  non-resolved alert per (episode, kind), one notification per dedupe key. An IntegrityError is answered by
  re-reading the row that won.

Order: an administration is evaluated after every earlier administration of its series (same episode and
instrument, ordered by completed_at, id). Earlier ones still waiting are evaluated first in the same transaction,
so a delayed or re-driven task gives the same alerts as evaluation in order would.

History in bulk (`evaluate_episode_histories`, used by `evaluate_episode_history` and the demo seed): the episodes
are locked in one statement (in id order), their administrations and non-resolved alerts are read with one query
each (on SQLite, per 1,000 episodes), and the pure rules run once per series rather than once per administration
(they are causal: a session's signals depend only on the sessions up to it, so one run over the series gives each
session what a run over its prefix would). As the episodes are locked and every administration handled was
waiting, nothing can clash, so there are no savepoints: a new alert gets its id at once (on PostgreSQL from its
sequence, the row following at the next flush), the signals are written with one executemany at the end, and the
administrations are marked evaluated in memory and then with one UPDATE (on SQLite, per 1,000). The stored
signals and alerts, ids included, are those of evaluating the administrations one at a time in order.

The alliance alert follows the state machine of `services.signals.evaluate_alliance` (a test checks that the
stored alerts match it on many series), driven by the stored alert rather than a replay, so that a clinician's
resolution counts: once an alert is resolved by hand, the next opening signal opens a new alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Integer, Table, any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from services.accounts.models import User
from services.accounts.queries import supervisor_for
from services.alerts.models import Alert, SignalRecord
from services.alerts.summary import summarize_alert
from services.clients.models import Episode
from services.config import Settings
from services.db import utcnow
from services.measures import Instrument, all_instruments, load_instrument
from services.notifications.operations import queue_notification
from services.signals import (
    ALLIANCE_KINDS,
    NOT_ON_TRACK,
    OFF_TRACK,
    OPENING_KINDS,
    OUTCOME_KINDS,
    PARTNERSHIP_COMPONENTS,
    PERSPECTIVE_GAP,
    RELIABLE_DETERIORATION,
    REPAIRED,
    RISK,
    UNREPAIRED,
    Signal,
    SignalSettings,
    evaluate_alliance,
    outcome_signals,
)
from services.surveys.models import Administration

ALLIANCE = "alliance"
OUTCOME = "outcome"
RISK_ALERT = "risk"
ALERT_KINDS = (RISK_ALERT, ALLIANCE, OUTCOME)
OUTCOME_OPENING = (RELIABLE_DETERIORATION, OFF_TRACK, NOT_ON_TRACK)
SEVERITY_RANK = {"info": 0, "amber": 1, "red": 2, "risk": 3}

# Keys the pure engine adds to evidence from its own view of the alert; replaced with the stored alert's view.
_STATE_KEYS = ("alert", "opened_session", "baseline")
_NEXT_ALERT_ID = "SELECT nextval(pg_get_serial_sequence('alerts', 'id'))"
_KIND_ORDER = {kind: position for position, kind in enumerate((*ALLIANCE_KINDS, *OUTCOME_KINDS))}

Status = Literal["evaluated", "already_evaluated", "missing"]
# Ids per IN list on SQLite (well under its limit on bound parameters); PostgreSQL gets one array.
CHUNK = 1000


@dataclass
class EvaluationResult:
    """What one evaluation did: administrations evaluated, signals stored, alerts touched, notifications queued."""

    administration_id: int | None
    status: Status
    evaluated: list[int] = field(default_factory=list)
    signals: dict[int, list[str]] = field(default_factory=dict)
    alerts_opened: list[int] = field(default_factory=list)
    alerts_updated: list[int] = field(default_factory=list)
    alerts_repaired: list[int] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)


@dataclass
class _Run:
    session: Session
    settings: SignalSettings
    now: datetime
    base_url: str
    notify: bool
    # History mode dates alerts by the administrations' completion times (a back-fill, not news).
    historical: bool
    result: EvaluationResult
    series_cache: dict[tuple[int, str], list[Administration]] = field(default_factory=dict)
    # Bulk history mode: the episodes below are locked, and every administration and non-resolved alert of theirs
    # was read at the start (series_cache holds all their series; current_alerts their open alerts, kept up to
    # date as alerts open and close). Signals wait in pending_signals; evaluated_at is written at the end.
    bulk: bool = False
    preloaded: set[int] = field(default_factory=set)
    current_alerts: dict[tuple[int, str], Alert | None] = field(default_factory=dict)
    # Per series: the pure rules over the series up to its last waiting administration.
    rules_cache: dict[tuple[int, str], list[list[Signal]]] = field(default_factory=dict)
    rules_end: dict[tuple[int, str], int] = field(default_factory=dict)
    pending_signals: list[dict[str, Any]] = field(default_factory=list)

    def at(self, administration: Administration) -> datetime:
        return administration.completed_at if self.historical else self.now


def signal_settings_from(settings: Settings) -> SignalSettings:
    """Return the rule thresholds for this practice (defaults, with the practice's risk window)."""
    return SignalSettings(risk_window_minutes=settings.risk_window_minutes)


def alert_link(base_url: str, alert_id: int) -> str:
    """Return the link a notification carries: the alert's page, and nothing about the client."""
    return f"{base_url.rstrip('/')}/clinician/alerts/{alert_id}"


def evaluate_administration(
    session: Session,
    administration_id: int,
    *,
    settings: SignalSettings,
    now: datetime | None = None,
    base_url: str = "",
    notify: bool = True,
) -> EvaluationResult:
    """Evaluate one administration (and any earlier one of its series still waiting); a repeat changes nothing."""
    run = _Run(
        session=session,
        settings=settings,
        now=now or utcnow(),
        base_url=base_url,
        notify=notify,
        historical=False,
        result=EvaluationResult(administration_id, "evaluated"),
    )
    episode_id = _lock_episode_of(session, administration_id)
    if episode_id is None:
        run.result.status = "missing"
        return run.result
    administration = session.get(Administration, administration_id, populate_existing=True)
    if administration is None:
        run.result.status = "missing"
        return run.result
    if administration.evaluated_at is not None:
        run.result.status = "already_evaluated"
        return run.result
    _evaluate_through(run, administration)
    session.flush()
    return run.result


def evaluate_episode_history(
    session: Session,
    episode_id: int,
    *,
    settings: SignalSettings,
    notify: bool = False,
    base_url: str = "",
    now: datetime | None = None,
) -> EvaluationResult:
    """Evaluate every waiting administration of an episode in order; alerts are dated by the sessions themselves."""
    return evaluate_episode_histories(
        session, [episode_id], settings=settings, notify=notify, base_url=base_url, now=now
    )


def evaluate_episode_histories(
    session: Session,
    episode_ids: Iterable[int],
    *,
    settings: SignalSettings,
    notify: bool = False,
    base_url: str = "",
    now: datetime | None = None,
) -> EvaluationResult:
    """Evaluate every waiting administration of these episodes, episode by episode in the order given, each in
    order: what `evaluate_episode_history` on each episode would store, with a few statements for all of them
    (and one per alert opened)."""
    run = _Run(
        session=session,
        settings=settings,
        now=now or utcnow(),
        base_url=base_url,
        notify=notify,
        historical=True,
        result=EvaluationResult(None, "evaluated"),
        bulk=True,
    )
    ids = list(dict.fromkeys(episode_ids))
    if not ids:
        return run.result
    _lock_episodes(session, ids)
    waiting = _preload(run, ids)
    for episode_id in ids:
        for administration in waiting.get(episode_id, ()):
            if administration.evaluated_at is None:
                _evaluate_through(run, administration)
    _write_pending_signals(run)
    _write_evaluated(run)
    session.flush()
    return run.result


def _id_sets(session: Session, column: Any, ids: Sequence[int]) -> Iterable[ColumnElement[bool]]:
    """Conditions that together select ids: one `= ANY(array)` on PostgreSQL, IN lists of CHUNK ids elsewhere."""
    if not ids:
        return
    if not _is_sqlite(session):
        yield column == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
        return
    for start in range(0, len(ids), CHUNK):
        yield column.in_(ids[start : start + CHUNK])


def _preload(run: _Run, episode_ids: Sequence[int]) -> dict[int, list[Administration]]:
    """Read the episodes' administrations (into the series cache) and current alerts; return the waiting ones."""
    session = run.session
    waiting: dict[int, list[Administration]] = {}
    for episodes in _id_sets(session, Administration.episode_id, episode_ids):
        rows = session.scalars(
            select(Administration)
            .where(episodes)
            .order_by(Administration.episode_id, Administration.completed_at, Administration.id)
            .execution_options(populate_existing=True)
        )
        for row in rows:
            key = (row.episode_id, row.instrument_code)
            series = run.series_cache.setdefault(key, [])
            series.append(row)
            if row.evaluated_at is None:
                waiting.setdefault(row.episode_id, []).append(row)
                # The rules need each series only up to its last waiting administration.
                run.rules_end[key] = len(series)
    for episodes in _id_sets(session, Alert.episode_id, episode_ids):
        alerts = session.scalars(
            select(Alert)
            .where(episodes, Alert.status != "resolved")
            .order_by(Alert.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for alert in alerts:
            run.current_alerts.setdefault((alert.episode_id, alert.kind), alert)
    run.preloaded.update(episode_ids)
    return waiting


# Locking ---------------------------------------------------------------------------------------------------------


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _lock_episode_of(session: Session, administration_id: int) -> int | None:
    episode_of = select(Administration.episode_id).where(Administration.id == administration_id)
    if _is_sqlite(session):
        session.execute(
            update(Episode)
            .where(Episode.id == episode_of.scalar_subquery())
            .values(id=Episode.id)
            .execution_options(synchronize_session=False)
        )
        return session.scalar(episode_of)
    episode_id = session.scalar(episode_of)
    if episode_id is not None:
        session.execute(select(Episode.id).where(Episode.id == episode_id).with_for_update())
    return episode_id


def _lock_episodes(session: Session, episode_ids: Sequence[int]) -> None:
    ordered = sorted(episode_ids)
    for episodes in _id_sets(session, Episode.id, ordered):
        if _is_sqlite(session):
            session.execute(
                update(Episode).where(episodes).values(id=Episode.id).execution_options(synchronize_session=False)
            )
        else:
            # In id order, so that two bulk evaluations never wait for each other crosswise.
            session.execute(select(Episode.id).where(episodes).order_by(Episode.id).with_for_update())


# Evaluation ------------------------------------------------------------------------------------------------------


def _evaluate_through(run: _Run, administration: Administration) -> None:
    instrument = load_instrument(administration.instrument_code)
    if instrument.kind == "therapist_alliance":
        _evaluate_therapist_view(run, administration, instrument)
        _mark_evaluated(run, administration)
        return
    if instrument.kind not in ("alliance", "outcome"):
        _mark_evaluated(run, administration)
        return
    series = _series(run, administration.episode_id, administration.instrument_code)
    position = next(i for i, row in enumerate(series) if row.id == administration.id)
    prefix = series[: position + 1]
    already = [row.evaluated_at is not None for row in series]
    per_session = _series_rules(run, instrument, series) if run.bulk else _rules(run, instrument, prefix)
    for index, row in enumerate(prefix):
        if row.evaluated_at is not None:
            continue
        # A later administration already evaluated means this one arrived late (entered afterwards with an
        # earlier completion time): its signals are stored, but it cannot move the alliance state machine back.
        late = any(already[index + 1 :])
        _apply(run, instrument, prefix, index, per_session[index], late=late)
        _mark_evaluated(run, row)


def _series(run: _Run, episode_id: int, instrument_code: str) -> list[Administration]:
    key = (episode_id, instrument_code)
    cached = run.series_cache.get(key)
    if cached is None:
        cached = list(
            run.session.scalars(
                select(Administration)
                .where(Administration.episode_id == episode_id, Administration.instrument_code == instrument_code)
                .order_by(Administration.completed_at, Administration.id)
            )
        )
        run.series_cache[key] = cached
    return cached


def _series_rules(run: _Run, instrument: Instrument, series: Sequence[Administration]) -> list[list[Signal]]:
    """Bulk mode: the rules once over the series up to its last waiting administration (they are causal)."""
    key = (series[0].episode_id, series[0].instrument_code)
    cached = run.rules_cache.get(key)
    if cached is None:
        cached = run.rules_cache[key] = _rules(run, instrument, series[: run.rules_end.get(key, len(series))])
    return cached


def _rules(run: _Run, instrument: Instrument, prefix: Sequence[Administration]) -> list[list[Signal]]:
    totals = [_total(row) for row in prefix]
    if instrument.kind == "alliance":
        components = instrument.components
        items = [[_component(row, name) for name in components] for row in prefix] if components else None
        tension_items = instrument.items_with_role("tension")
        tension = [_number(row.answers.get(tension_items[0].id)) for row in prefix] if tension_items else None
        return evaluate_alliance(
            totals,
            items=items,
            tension=tension,
            therapist_totals=_therapist_totals(run, instrument, prefix),
            settings=run.settings,
            components=components or PARTNERSHIP_COMPONENTS,
        ).signals
    risk_ids = [item.id for item in instrument.risk_items]
    risk_answers = [{item_id: _number(row.answers.get(item_id)) for item_id in risk_ids} for row in prefix]
    return outcome_signals(
        totals, instrument=instrument, settings=run.settings, risk_answers=risk_answers if risk_ids else None
    )


def _apply(
    run: _Run,
    instrument: Instrument,
    prefix: Sequence[Administration],
    index: int,
    signals: Sequence[Signal],
    *,
    late: bool,
) -> None:
    found = {signal.kind: _clean(signal.evidence) for signal in signals if signal.kind not in (REPAIRED, UNREPAIRED)}
    if instrument.kind == "alliance":
        _alliance_step(run, instrument, prefix, index, found, late=late)
    else:
        _outcome_step(run, instrument, prefix[index], index + 1, found)
    _store_signals(run, prefix[index], index + 1, found)


def _alliance_step(
    run: _Run,
    instrument: Instrument,
    prefix: Sequence[Administration],
    index: int,
    found: dict[str, dict[str, Any]],
    *,
    late: bool,
) -> None:
    row = prefix[index]
    session_no = index + 1
    if late:
        for evidence in found.values():
            evidence["late"] = True
        return
    opening = [kind for kind in ALLIANCE_KINDS if kind in found and kind in OPENING_KINDS]
    extras = _largest_drop(instrument, prefix, index)
    alert = _current_alert(run, row.episode_id, ALLIANCE)
    if alert is not None and _alert_series(alert) in (None, instrument.code):
        since = session_no - (alert.opened_session or session_no)
        _tag(found, alert, "added")
        total = _total(row)
        if total is not None and alert.baseline is not None and not opening and total >= alert.baseline:
            found[REPAIRED] = {
                "score": total,
                "baseline": alert.baseline,
                "opened_session": alert.opened_session,
                "alert_id": alert.id,
            }
            alert.status = "resolved"
            alert.resolution_reason = "repaired"
            alert.repaired_at = alert.resolved_at = run.at(row)
            _forget_alert(run, alert)
            run.result.alerts_repaired.append(alert.id)
        elif since == run.settings.repair_window and not _has_kind(alert, UNREPAIRED):
            found[UNREPAIRED] = {
                "score": total,
                "baseline": alert.baseline,
                "opened_session": alert.opened_session,
                "sessions_open": since,
                "alert_id": alert.id,
            }
        alert.sessions_open = since
        if found:
            _append(run, alert, row, instrument.code, instrument.code, session_no, found, extras)
    elif alert is not None:
        # Open on another alliance instrument's series: that series runs its state machine; this adds evidence.
        if opening:
            _tag(found, alert, "added")
            _append(run, alert, row, instrument.code, instrument.code, session_no, found, extras)
    elif opening:
        alert = _open_alert(
            run,
            kind=ALLIANCE,
            severity="amber",
            baseline=_baseline(prefix, index),
            opened_session=session_no,
            administration=row,
        )
        _tag(found, alert, "opened" if alert.opened_by_administration_id == row.id else "added", opening=opening)
        _append(run, alert, row, instrument.code, instrument.code, session_no, found, extras)
        _notify(run, alert, dedupe_key=f"alert:{alert.id}:opened")


def _outcome_step(
    run: _Run, instrument: Instrument, row: Administration, session_no: int, found: dict[str, dict[str, Any]]
) -> None:
    groups = (
        (RISK_ALERT, [RISK] if RISK in found else []),
        (OUTCOME, [kind for kind in OUTCOME_OPENING if kind in found]),
    )
    for alert_kind, kinds in groups:
        if not kinds:
            continue
        subset = {kind: found[kind] for kind in kinds}
        severity = "risk" if alert_kind == RISK_ALERT else ("red" if RELIABLE_DETERIORATION in kinds else "amber")
        alert = _current_alert(run, row.episode_id, alert_kind)
        if alert is None:
            alert = _open_alert(
                run,
                kind=alert_kind,
                severity=severity,
                baseline=None,
                opened_session=session_no,
                administration=row,
            )
            opened_here = alert.opened_by_administration_id == row.id
            _tag(subset, alert, "opened" if opened_here else "added")
            _append(run, alert, row, instrument.code, instrument.code, session_no, subset, {})
            _notify(run, alert, dedupe_key=f"alert:{alert.id}:opened")
        else:
            _tag(subset, alert, "added")
            if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(alert.severity, 0):
                alert.severity = severity
            _append(run, alert, row, instrument.code, instrument.code, session_no, subset, {})
            if alert_kind == RISK_ALERT:
                # A new positive risk answer is news even while the alert is open: never batched, never dropped.
                _notify(run, alert, dedupe_key=f"alert:{alert.id}:risk:{row.id}")


def _evaluate_therapist_view(run: _Run, row: Administration, instrument: Instrument) -> None:
    """The clinician's own rating arrived after the client's: check the perspective gap for that session now."""
    therapist_total = _total(row)
    if row.appointment_id is None or therapist_total is None or not instrument.components:
        return
    client_codes = [
        candidate.code
        for candidate in all_instruments()
        if candidate.kind == "alliance" and candidate.components == instrument.components
    ]
    client = run.session.scalar(
        select(Administration)
        .where(
            Administration.episode_id == row.episode_id,
            Administration.appointment_id == row.appointment_id,
            Administration.instrument_code.in_(client_codes),
        )
        .order_by(Administration.completed_at.desc(), Administration.id.desc())
        .limit(1)
    )
    # Not evaluated yet: the client's own evaluation reads this rating as the session's therapist total.
    if client is None or client.evaluated_at is None or _total(client) is None:
        return
    _write_pending_signals(run)
    already = run.session.scalar(
        select(SignalRecord.id).where(
            SignalRecord.kind == PERSPECTIVE_GAP, SignalRecord.administration_id.in_((client.id, row.id))
        )
    )
    if already is not None:
        return
    client_total = _total(client)
    assert client_total is not None
    gap = therapist_total - client_total
    if gap < run.settings.perspective_gap:
        return
    series = _series(run, client.episode_id, client.instrument_code)
    index = next(i for i, item in enumerate(series) if item.id == client.id)
    session_no = index + 1
    found: dict[str, dict[str, Any]] = {
        PERSPECTIVE_GAP: {
            "therapist_total": therapist_total,
            "client_total": client_total,
            "gap": gap,
            "threshold": run.settings.perspective_gap,
            "client_administration_id": client.id,
        }
    }
    if any(item.evaluated_at is not None for item in series[index + 1 :]):
        found[PERSPECTIVE_GAP]["late"] = True
    else:
        alert = _current_alert(run, row.episode_id, ALLIANCE)
        if alert is not None:
            _tag(found, alert, "added")
            _append(run, alert, row, instrument.code, client.instrument_code, session_no, found, {})
        else:
            alert = _open_alert(
                run,
                kind=ALLIANCE,
                severity="amber",
                baseline=_baseline(series, index),
                opened_session=session_no,
                administration=row,
            )
            _tag(found, alert, "opened" if alert.opened_by_administration_id == row.id else "added")
            _append(run, alert, row, instrument.code, client.instrument_code, session_no, found, {})
            _notify(run, alert, dedupe_key=f"alert:{alert.id}:opened")
    _store_signals(run, row, session_no, found)


# Alerts ----------------------------------------------------------------------------------------------------------


def _current_alert(run: _Run, episode_id: int, kind: str) -> Alert | None:
    if episode_id in run.preloaded:
        # Read (and locked) at the start; kept up to date as alerts open and close under the episode lock.
        return run.current_alerts.get((episode_id, kind))
    # Locked (PostgreSQL) so that a clinician resolving it at this moment is not overwritten, nor overwrites us.
    return run.session.scalar(
        select(Alert)
        .where(Alert.episode_id == episode_id, Alert.kind == kind, Alert.status != "resolved")
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _open_alert(
    run: _Run,
    *,
    kind: str,
    severity: str,
    baseline: float | None,
    opened_session: int,
    administration: Administration,
) -> Alert:
    alert = Alert(
        episode_id=administration.episode_id,
        kind=kind,
        status="open",
        severity=severity,
        summary="",
        baseline=baseline,
        evidence=[],
        opened_at=run.at(administration),
        opened_by_administration_id=administration.id,
        opened_session=opened_session,
        sessions_open=0,
    )
    if administration.episode_id in run.preloaded:
        # The episode is locked and its current alert of this kind known to be none: no clash is possible.
        _assign_id(run, alert)
        run.current_alerts[(alert.episode_id, kind)] = alert
        run.result.alerts_opened.append(alert.id)
        return alert
    try:
        with run.session.begin_nested():
            run.session.add(alert)
    except IntegrityError:
        # Another transaction opened this kind of alert first (the lock was bypassed): add to theirs.
        existing = _current_alert(run, administration.episode_id, kind)
        if existing is None:
            raise
        return existing
    run.result.alerts_opened.append(alert.id)
    return alert


def _assign_id(run: _Run, alert: Alert) -> None:
    """Bulk mode: give a new alert its id now (its evidence and links carry it); the INSERT may wait.

    On PostgreSQL the id is taken from the table's sequence, the one an INSERT would have taken, and the row is
    written with the others at the next flush; elsewhere the row is flushed at once.
    """
    session = run.session
    if not _is_sqlite(session):
        # On the connection, not the session: no autoflush of every alert touched since the last one.
        alert.id = session.connection().exec_driver_sql(_NEXT_ALERT_ID).scalar_one()
        session.add(alert)
    else:
        session.add(alert)
        session.flush()


def _forget_alert(run: _Run, alert: Alert) -> None:
    """The alert is resolved: the episode has no current alert of its kind any more."""
    key = (alert.episode_id, alert.kind)
    if run.current_alerts.get(key) is alert:
        run.current_alerts[key] = None


def _tag(found: Mapping[str, dict[str, Any]], alert: Alert, how: str, *, opening: Sequence[str] | None = None) -> None:
    for kind, evidence in found.items():
        opened = how == "opened" and (opening is None or kind in opening)
        evidence["alert"] = "opened" if opened else "added"
        evidence["opened_session"] = alert.opened_session
        evidence["baseline"] = alert.baseline
        evidence["alert_id"] = alert.id


def _append(
    run: _Run,
    alert: Alert,
    row: Administration,
    instrument_code: str,
    series_code: str,
    session_no: int,
    found: Mapping[str, dict[str, Any]],
    extras: Mapping[str, Any],
) -> None:
    entries = [
        {
            "kind": kind,
            "session": session_no,
            "administration_id": row.id,
            "instrument": instrument_code,
            "series": series_code,
            "at": row.completed_at.isoformat(),
            "evidence": found[kind],
            **extras,
        }
        for kind in sorted(found, key=lambda name: _KIND_ORDER.get(name, len(_KIND_ORDER)))
    ]
    alert.evidence = [*alert.evidence, *entries]
    alert.summary = summarize_alert(alert.kind, alert.evidence)
    if alert.id not in run.result.alerts_opened and alert.id not in run.result.alerts_updated:
        run.result.alerts_updated.append(alert.id)


def _alert_series(alert: Alert) -> str | None:
    if not alert.evidence:
        return None
    series = alert.evidence[0].get("series")
    return str(series) if series is not None else None


def _has_kind(alert: Alert, kind: str) -> bool:
    return any(entry.get("kind") == kind for entry in alert.evidence)


def _notify(run: _Run, alert: Alert, *, dedupe_key: str) -> None:
    if not run.notify:
        return
    session = run.session
    episode = session.get(Episode, alert.episode_id)
    if episode is None:
        return
    clinician = session.get(User, episode.clinician_id)
    recipient = clinician if clinician is not None and clinician.active else None
    if recipient is None and clinician is not None:
        # Nobody reads a departed clinician's mail: the supervisor hears instead.
        recipient = supervisor_for(session, clinician)
    if recipient is None or not recipient.email:
        return
    if alert.kind != RISK_ALERT and recipient.notify_mode == "digest":
        return
    row = queue_notification(
        session,
        channel="email",
        template="alert",
        to_address=recipient.email,
        recipient_user_id=recipient.id,
        context={"link": alert_link(run.base_url, alert.id), "language": recipient.language},
        dedupe_key=dedupe_key,
    )
    if row.id not in run.result.notification_ids:
        run.result.notification_ids.append(row.id)


# Signals and bookkeeping -----------------------------------------------------------------------------------------


def _store_signals(run: _Run, row: Administration, session_no: int, found: Mapping[str, dict[str, Any]]) -> None:
    kinds = sorted(found, key=lambda name: _KIND_ORDER.get(name, len(_KIND_ORDER)))
    if not kinds:
        return
    if run.bulk:
        # Every administration handled was waiting under the episode lock: nobody else stores its signals.
        run.pending_signals.extend(
            {
                "administration_id": row.id,
                "episode_id": row.episode_id,
                "kind": kind,
                "session": session_no,
                "evidence": found[kind],
            }
            for kind in kinds
        )
        run.result.signals.setdefault(row.id, []).extend(kinds)
        return

    def records(wanted: Sequence[str]) -> list[SignalRecord]:
        return [
            SignalRecord(
                administration_id=row.id,
                episode_id=row.episode_id,
                kind=kind,
                session=session_no,
                evidence=found[kind],
            )
            for kind in wanted
        ]

    try:
        with run.session.begin_nested():
            run.session.add_all(records(kinds))
    except IntegrityError:
        # Someone stored some of these first: keep theirs, add only what is missing.
        stored = set(run.session.scalars(select(SignalRecord.kind).where(SignalRecord.administration_id == row.id)))
        missing = [kind for kind in kinds if kind not in stored]
        if missing:
            with run.session.begin_nested():
                run.session.add_all(records(missing))
    run.result.signals.setdefault(row.id, []).extend(kinds)


def _mark_evaluated(run: _Run, row: Administration) -> None:
    if run.bulk:
        # Readable at once (the late-entry checks look at it); written by one UPDATE at the end.
        set_committed_value(row, "evaluated_at", run.now)
        set_committed_value(row, "eval_failed_at", None)
    else:
        row.evaluated_at = run.now
        # A success after an earlier give-up wins: the row is no longer failed.
        row.eval_failed_at = None
    run.result.evaluated.append(row.id)


def _write_pending_signals(run: _Run) -> None:
    """Bulk mode: insert the signals gathered so far (in the order they were found, so ids follow it)."""
    if run.pending_signals:
        # A Core INSERT (executemany): the rows need no ORM bookkeeping.
        run.session.execute(insert(cast(Table, SignalRecord.__table__)), run.pending_signals)
        run.pending_signals = []


def _write_evaluated(run: _Run) -> None:
    """Bulk mode: store evaluated_at (and clear eval_failed_at) for every administration evaluated."""
    for administrations in _id_sets(run.session, Administration.id, run.result.evaluated):
        run.session.execute(
            update(Administration)
            .where(administrations)
            .values(evaluated_at=run.now, eval_failed_at=None)
            .execution_options(synchronize_session=False)
        )


# Plain data from rows --------------------------------------------------------------------------------------------


def _total(row: Administration) -> float | None:
    # Incomplete administrations count as sessions without a score (the rules' convention for None).
    if not row.complete or row.total is None:
        return None
    return float(row.total)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _component(row: Administration, name: str) -> float | None:
    components = (row.scores or {}).get("components") or {}
    return _number(components.get(name)) if isinstance(components, Mapping) else None


def _clean(evidence: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in evidence.items() if key not in _STATE_KEYS}


def _therapist_totals(run: _Run, instrument: Instrument, prefix: Sequence[Administration]) -> list[float | None] | None:
    appointments = {row.appointment_id for row in prefix if row.appointment_id is not None}
    if not appointments or not instrument.components:
        return None
    codes = [
        candidate.code
        for candidate in all_instruments()
        if candidate.kind == "therapist_alliance" and candidate.components == instrument.components
    ]
    if not codes:
        return None
    episode_id = prefix[0].episode_id
    rows: Iterable[tuple[int | None, float | None]]
    if episode_id in run.preloaded:
        # Every administration of the episode is in the series cache: no query.
        rows = [
            (row.appointment_id, row.total)
            for row in sorted(
                (
                    row
                    for code in codes
                    for row in run.series_cache.get((episode_id, code), ())
                    if row.appointment_id in appointments and row.complete and row.total is not None
                ),
                key=lambda row: (row.completed_at, row.id),
            )
        ]
    else:
        rows = run.session.execute(
            select(Administration.appointment_id, Administration.total)
            .where(
                Administration.episode_id == episode_id,
                Administration.instrument_code.in_(codes),
                Administration.appointment_id.in_(appointments),
                Administration.complete.is_(True),
                Administration.total.is_not(None),
            )
            .order_by(Administration.completed_at, Administration.id)
        ).all()
    latest: dict[int, float] = {}
    for appointment_id, total in rows:
        if appointment_id is not None and total is not None:
            latest[appointment_id] = float(total)
    if not latest:
        return None
    return [latest.get(row.appointment_id) if row.appointment_id is not None else None for row in prefix]


def _baseline(series: Sequence[Administration], index: int) -> float | None:
    """The mean of the earlier totals (the current total with none), computed as the pure engine does."""
    earlier = [total for total in (_total(row) for row in series[:index]) if total is not None]
    if not earlier:
        return _total(series[index])
    reference = earlier[0]
    sum_d = 0.0
    for total in earlier:
        sum_d += total - reference
    return reference + sum_d / len(earlier)


def _largest_drop(instrument: Instrument, prefix: Sequence[Administration], index: int) -> dict[str, Any]:
    """The component that fell most since the previous session with component scores (for the summary line)."""
    names = instrument.components
    if not names:
        return {}
    current = [_component(prefix[index], name) for name in names]
    previous = next(
        (
            values
            for values in ([_component(row, name) for name in names] for row in reversed(prefix[:index]))
            if any(value is not None for value in values)
        ),
        None,
    )
    if previous is None:
        return {}
    best: tuple[float, str, float, float] | None = None
    for name, before, now in zip(names, previous, current, strict=True):
        if before is None or now is None or before - now <= 0:
            continue
        if best is None or before - now > best[0]:
            best = (before - now, name, before, now)
    if best is None:
        return {}
    drop, name, before, now = best
    return {"largest_drop": {"component": name, "from": before, "to": now, "drop": drop}}
