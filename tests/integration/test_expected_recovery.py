"""The expected-recovery tier live: the monthly fit runs in a real worker on 300 closed episodes (PostgreSQL), then
an administration above the fitted band opens an outcome alert with OFF_TRACK evidence through the worker."""

from __future__ import annotations

import math
import random
from datetime import date
from typing import Any

from sqlalchemy import select

from services.alerts.models import Alert, SignalRecord
from services.calibration.models import TrajectoryFit
from services.db import Database, utcnow
from services.signals import NOT_ON_TRACK, OFF_TRACK
from tests.factories import make_episode, make_user
from tests.integration.conftest import WorkerProcess, wait_for
from tests.unit.alerts.series import submit_phq9
from workers.enqueue import enqueue_after_commit

PERIOD = "2026-07"


def _closed_cohort(db: Database, episodes: int = 300) -> None:
    rng = random.Random(20261206)
    with db.unit_of_work() as session:
        clinician = make_user(session, role="clinician")
        for _ in range(episodes):
            episode = make_episode(session, clinician=clinician, ended_on=date(2026, 6, 1))
            first = rng.randint(12, 24)
            for t in range(rng.randint(4, 9)):
                expected = first - (3.0 + 0.05 * first) * math.log(t + 1)
                score = max(0, min(24, round(expected + rng.gauss(0, 2.0))))
                row = submit_phq9(session, episode, score, week=t)
                row.evaluated_at = utcnow()  # history: nothing for the worker to evaluate


def _fit(db: Database) -> TrajectoryFit | None:
    with db.session() as s:
        return s.scalar(select(TrajectoryFit).where(TrajectoryFit.instrument_code == "PHQ-9"))


def test_the_monthly_fit_then_an_administration_above_the_band_opens_an_outcome_alert(
    it_db: Database, running_worker: WorkerProcess, celery_publisher: Any
) -> None:
    _closed_cohort(it_db)
    celery_publisher.send_task("calibration.fit_expected_recovery", args=[PERIOD])
    fit = wait_for(lambda: _fit(it_db), timeout=60, what="the PHQ-9 fit stored by the worker")
    assert (fit.period, fit.reference) == (PERIOD, None)
    assert fit.n_episodes >= 300  # this cohort, and any closed PHQ-9 episodes other tests of the session wrote
    assert fit.r_squared is not None
    assert 0 < fit.r_squared <= 1
    assert 1.0 < fit.sigma_pred < 3.5
    model = fit.model()
    # A repeat for the month is a no-op.
    celery_publisher.send_task("calibration.fit_expected_recovery", args=[PERIOD])

    with it_db.unit_of_work() as session:
        episode = make_episode(session)
        episode_id = episode.id
        first = submit_phq9(session, episode, 20, week=0)
        enqueue_after_commit(session, "alerts.evaluate", first.id)
    boundary = model.expected(20, 1) + 1.2816 * model.sigma_pred
    above = math.floor(boundary) + 1
    assert above <= 24
    with it_db.unit_of_work() as session:
        episode = session.get(type(episode), episode_id)
        assert episode is not None
        second = submit_phq9(session, episode, above, week=1)
        second_id = second.id
        enqueue_after_commit(session, "alerts.evaluate", second_id)

    def outcome_alert() -> Alert | None:
        with it_db.session() as s:
            return s.scalar(select(Alert).where(Alert.episode_id == episode_id, Alert.kind == "outcome"))

    alert = wait_for(outcome_alert, timeout=30, what="the outcome alert opened by OFF_TRACK")
    assert alert.opened_session == 2
    (entry,) = [e for e in alert.evidence if e["kind"] == OFF_TRACK]
    assert entry["evidence"]["boundary"] == boundary
    assert entry["evidence"]["score"] == above
    with it_db.session() as s:
        kinds = set(s.scalars(select(SignalRecord.kind).where(SignalRecord.administration_id == second_id)))
        assert len(s.scalars(select(TrajectoryFit)).all()) == 1
    assert OFF_TRACK in kinds
    assert NOT_ON_TRACK not in kinds  # the fitted tier replaces the rational one
