"""One evaluation's state and what it writes: signals, alerts (open, add evidence, resolve), notifications."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from services.accounts.models import User
from services.accounts.queries import supervisor_for
from services.alerts.locking import id_sets, is_sqlite
from services.alerts.models import Alert, SignalRecord
from services.alerts.summary import summarize_alert
from services.clients.models import Episode
from services.notifications.operations import queue_notification
from services.signals import ALLIANCE_KINDS, OUTCOME_KINDS, Signal, SignalSettings, TrajectoryModel
from services.surveys.models import Administration

ALLIANCE = "alliance"
OUTCOME = "outcome"
RISK_ALERT = "risk"
ALERT_KINDS = (RISK_ALERT, ALLIANCE, OUTCOME)
SEVERITY_RANK = {"info": 0, "amber": 1, "red": 2, "risk": 3}

NEXT_ALERT_ID = "SELECT nextval(pg_get_serial_sequence('alerts', 'id'))"
KIND_ORDER = {kind: position for position, kind in enumerate((*ALLIANCE_KINDS, *OUTCOME_KINDS))}

Status = Literal["evaluated", "already_evaluated", "missing"]


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
class EvaluationRun:
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
    # The practice's current expected-recovery fit per instrument code (the OFF_TRACK tier); none: the rational tier.
    models: Mapping[str, TrajectoryModel] = field(default_factory=dict)

    def at(self, administration: Administration) -> datetime:
        return administration.completed_at if self.historical else self.now


def alert_link(base_url: str, alert_id: int) -> str:
    """Return the link a notification carries: the alert's page, and nothing about the client."""
    return f"{base_url.rstrip('/')}/clinician/alerts/{alert_id}"


def series_of(run: EvaluationRun, episode_id: int, instrument_code: str) -> list[Administration]:
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


def current_alert(run: EvaluationRun, episode_id: int, kind: str) -> Alert | None:
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


def open_alert(
    run: EvaluationRun,
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
        assign_id(run, alert)
        run.current_alerts[(alert.episode_id, kind)] = alert
        run.result.alerts_opened.append(alert.id)
        return alert
    try:
        with run.session.begin_nested():
            run.session.add(alert)
    except IntegrityError:
        # Another transaction opened this kind of alert first (the lock was bypassed): add to theirs.
        existing = current_alert(run, administration.episode_id, kind)
        if existing is None:
            raise
        return existing
    run.result.alerts_opened.append(alert.id)
    return alert


def assign_id(run: EvaluationRun, alert: Alert) -> None:
    """Bulk mode: give a new alert its id now (its evidence and links carry it); the INSERT may wait.

    On PostgreSQL the id is taken from the table's sequence, the one an INSERT would have taken, and the row is
    written with the others at the next flush; elsewhere the row is flushed at once.
    """
    session = run.session
    if not is_sqlite(session):
        # On the connection, not the session: no autoflush of every alert touched since the last one.
        alert.id = session.connection().exec_driver_sql(NEXT_ALERT_ID).scalar_one()
        session.add(alert)
    else:
        session.add(alert)
        session.flush()


def forget_alert(run: EvaluationRun, alert: Alert) -> None:
    """The alert is resolved: the episode has no current alert of its kind any more."""
    key = (alert.episode_id, alert.kind)
    if run.current_alerts.get(key) is alert:
        run.current_alerts[key] = None


def tag_evidence(
    found: Mapping[str, dict[str, Any]], alert: Alert, how: str, *, opening: Sequence[str] | None = None
) -> None:
    for kind, evidence in found.items():
        opened = how == "opened" and (opening is None or kind in opening)
        evidence["alert"] = "opened" if opened else "added"
        evidence["opened_session"] = alert.opened_session
        evidence["baseline"] = alert.baseline
        evidence["alert_id"] = alert.id


def append_evidence(
    run: EvaluationRun,
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
        for kind in sorted(found, key=lambda name: KIND_ORDER.get(name, len(KIND_ORDER)))
    ]
    alert.evidence = [*alert.evidence, *entries]
    alert.summary = summarize_alert(alert.kind, alert.evidence)
    if alert.id not in run.result.alerts_opened and alert.id not in run.result.alerts_updated:
        run.result.alerts_updated.append(alert.id)


def alert_series(alert: Alert) -> str | None:
    if not alert.evidence:
        return None
    series = alert.evidence[0].get("series")
    return str(series) if series is not None else None


def has_kind(alert: Alert, kind: str) -> bool:
    return any(entry.get("kind") == kind for entry in alert.evidence)


def notify_alert(run: EvaluationRun, alert: Alert, *, dedupe_key: str) -> None:
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


def store_signals(
    run: EvaluationRun, row: Administration, session_no: int, found: Mapping[str, dict[str, Any]]
) -> None:
    kinds = sorted(found, key=lambda name: KIND_ORDER.get(name, len(KIND_ORDER)))
    if not kinds:
        return
    for kind in kinds:
        # Which thresholds decided it (0: the defaults; else the practice's alert-rules version), REPAIRED and
        # UNREPAIRED included. The alert's evidence shares these dicts.
        found[kind].setdefault("settings_version", run.settings.version)
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


def mark_evaluated(run: EvaluationRun, row: Administration) -> None:
    if run.bulk:
        # Readable at once (the late-entry checks look at it); written by one UPDATE at the end.
        set_committed_value(row, "evaluated_at", run.now)
        set_committed_value(row, "eval_failed_at", None)
    else:
        row.evaluated_at = run.now
        # A success after an earlier give-up wins: the row is no longer failed.
        row.eval_failed_at = None
    run.result.evaluated.append(row.id)


def write_pending_signals(run: EvaluationRun) -> None:
    """Bulk mode: insert the signals gathered so far (in the order they were found, so ids follow it)."""
    if run.pending_signals:
        # A Core INSERT (executemany): the rows need no ORM bookkeeping.
        run.session.execute(insert(cast(Table, SignalRecord.__table__)), run.pending_signals)
        run.pending_signals = []


def write_evaluated(run: EvaluationRun) -> None:
    """Bulk mode: store evaluated_at (and clear eval_failed_at) for every administration evaluated."""
    for administrations in id_sets(run.session, Administration.id, run.result.evaluated):
        run.session.execute(
            update(Administration)
            .where(administrations)
            .values(evaluated_at=run.now, eval_failed_at=None)
            .execution_options(synchronize_session=False)
        )
