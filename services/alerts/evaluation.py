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
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.alerts.locking import id_sets, lock_episode_of, lock_episodes
from services.alerts.models import Alert
from services.alerts.rows import component_of, number_of, score_of, therapist_totals_of, without_state
from services.alerts.run import (
    ALERT_KINDS,
    ALLIANCE,
    OUTCOME,
    RISK_ALERT,
    EvaluationResult,
    EvaluationRun,
    alert_link,
    mark_evaluated,
    series_of,
    store_signals,
    write_evaluated,
    write_pending_signals,
)
from services.alerts.steps import alliance_step, evaluate_therapist_view, outcome_step
from services.calibration.operations import current_models
from services.db import utcnow
from services.measures import Instrument, load_instrument
from services.signals import (
    PARTNERSHIP_COMPONENTS,
    REPAIRED,
    UNREPAIRED,
    Signal,
    SignalSettings,
    TrajectoryModel,
    evaluate_alliance,
    outcome_signals,
)
from services.surveys.models import Administration

__all__ = [
    "ALERT_KINDS",
    "ALLIANCE",
    "OUTCOME",
    "RISK_ALERT",
    "EvaluationResult",
    "alert_link",
    "evaluate_administration",
    "evaluate_episode_histories",
    "evaluate_episode_history",
]


def evaluate_administration(
    session: Session,
    administration_id: int,
    *,
    settings: SignalSettings,
    now: datetime | None = None,
    base_url: str = "",
    notify: bool = True,
    models: Mapping[str, TrajectoryModel] | None = None,
) -> EvaluationResult:
    """Evaluate one administration (and any earlier one of its series still waiting); a repeat changes nothing.

    `models` are the expected-recovery fits per instrument (default: the practice's newest, `current_models`).
    """
    run = EvaluationRun(
        session=session,
        settings=settings,
        now=now or utcnow(),
        base_url=base_url,
        notify=notify,
        historical=False,
        result=EvaluationResult(administration_id, "evaluated"),
        models=current_models(session) if models is None else models,
    )
    episode_id = lock_episode_of(session, administration_id)
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
    models: Mapping[str, TrajectoryModel] | None = None,
) -> EvaluationResult:
    """Evaluate every waiting administration of an episode in order; alerts are dated by the sessions themselves."""
    return evaluate_episode_histories(
        session, [episode_id], settings=settings, notify=notify, base_url=base_url, now=now, models=models
    )


def evaluate_episode_histories(
    session: Session,
    episode_ids: Iterable[int],
    *,
    settings: SignalSettings,
    notify: bool = False,
    base_url: str = "",
    now: datetime | None = None,
    models: Mapping[str, TrajectoryModel] | None = None,
) -> EvaluationResult:
    """Evaluate every waiting administration of these episodes, episode by episode in the order given, each in
    order: what `evaluate_episode_history` on each episode would store, with a few statements for all of them
    (and one per alert opened)."""
    run = EvaluationRun(
        session=session,
        settings=settings,
        now=now or utcnow(),
        base_url=base_url,
        notify=notify,
        historical=True,
        result=EvaluationResult(None, "evaluated"),
        bulk=True,
        models=current_models(session) if models is None else models,
    )
    ids = list(dict.fromkeys(episode_ids))
    if not ids:
        return run.result
    lock_episodes(session, ids)
    waiting = _preload(run, ids)
    for episode_id in ids:
        for administration in waiting.get(episode_id, ()):
            if administration.evaluated_at is None:
                _evaluate_through(run, administration)
    write_pending_signals(run)
    write_evaluated(run)
    session.flush()
    return run.result


def _preload(run: EvaluationRun, episode_ids: Sequence[int]) -> dict[int, list[Administration]]:
    """Read the episodes' administrations (into the series cache) and current alerts; return the waiting ones."""
    session = run.session
    waiting: dict[int, list[Administration]] = {}
    for episodes in id_sets(session, Administration.episode_id, episode_ids):
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
    for episodes in id_sets(session, Alert.episode_id, episode_ids):
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


def _evaluate_through(run: EvaluationRun, administration: Administration) -> None:
    instrument = load_instrument(administration.instrument_code)
    if instrument.kind == "therapist_alliance":
        evaluate_therapist_view(run, administration, instrument)
        mark_evaluated(run, administration)
        return
    if instrument.kind not in ("alliance", "outcome"):
        mark_evaluated(run, administration)
        return
    series = series_of(run, administration.episode_id, administration.instrument_code)
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
        mark_evaluated(run, row)


def _series_rules(run: EvaluationRun, instrument: Instrument, series: Sequence[Administration]) -> list[list[Signal]]:
    """Bulk mode: the rules once over the series up to its last waiting administration (they are causal)."""
    key = (series[0].episode_id, series[0].instrument_code)
    cached = run.rules_cache.get(key)
    if cached is None:
        cached = run.rules_cache[key] = _rules(run, instrument, series[: run.rules_end.get(key, len(series))])
    return cached


def _rules(run: EvaluationRun, instrument: Instrument, prefix: Sequence[Administration]) -> list[list[Signal]]:
    totals = [score_of(row) for row in prefix]
    settings = run.settings.for_instrument(instrument)
    if instrument.kind == "alliance":
        components = instrument.components
        items = [[component_of(row, name) for name in components] for row in prefix] if components else None
        tension_items = instrument.items_with_role("tension")
        tension = [number_of(row.answers.get(tension_items[0].id)) for row in prefix] if tension_items else None
        return evaluate_alliance(
            totals,
            items=items,
            tension=tension,
            therapist_totals=therapist_totals_of(run, instrument, prefix),
            settings=settings,
            components=components or PARTNERSHIP_COMPONENTS,
        ).signals
    risk_ids = [item.id for item in instrument.risk_items]
    risk_answers = [{item_id: number_of(row.answers.get(item_id)) for item_id in risk_ids} for row in prefix]
    return outcome_signals(
        totals,
        instrument=instrument,
        settings=settings,
        risk_answers=risk_answers if risk_ids else None,
        model=run.models.get(instrument.code),
    )


def _apply(
    run: EvaluationRun,
    instrument: Instrument,
    prefix: Sequence[Administration],
    index: int,
    signals: Sequence[Signal],
    *,
    late: bool,
) -> None:
    found = {
        signal.kind: without_state(signal.evidence) for signal in signals if signal.kind not in (REPAIRED, UNREPAIRED)
    }
    for evidence in found.values():
        # Which thresholds decided this (0: CLINICAL.md's defaults; else the practice's settings version).
        evidence["settings_version"] = run.settings.version
    if instrument.kind == "alliance":
        alliance_step(run, instrument, prefix, index, found, late=late)
    else:
        outcome_step(run, instrument, prefix[index], index + 1, found)
    store_signals(run, prefix[index], index + 1, found)
