"""Redis is flushed with 200 evaluations queued and no worker running: reconcile restores every one, and each
administration is evaluated once (one attempt, one set of signals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from services.alerts.models import Alert, SignalRecord
from services.clients.models import Episode
from services.config import Settings
from services.db import Database
from services.surveys.models import Administration
from tests.factories import make_episode, make_user
from tests.fault.conftest import RedisServer, evaluated
from tests.integration.conftest import WorkerProcess, wait_for
from tests.unit.alerts.series import submit_phq9
from workers.enqueue import enqueue_after_commit
from workers.tasks.ops import publish_with_celery, run_reconcile

QUEUED = 200
EPISODES = 40
# PHQ-9 totals per episode, with a reliable deterioration and a risk answer in the mix so evaluations do real work.
TOTALS = [(8, 0), (12, 0), (18, 0), (20, 1), (14, 0)]


def test_a_flushed_redis_loses_no_evaluation_and_duplicates_none(
    fault_db: Database,
    fault_settings: Settings,
    redis_up: RedisServer,
    worker_up: WorkerProcess,
    fault_publisher: Any,
) -> None:
    worker_up.stop()
    redis_up.client.flushdb()
    ids: list[int] = []
    with fault_db.unit_of_work() as session:
        clinician = make_user(session, role="clinician", team="Team Flush")
        episodes: list[Episode] = [make_episode(session, clinician=clinician) for _ in range(EPISODES)]
        for episode in episodes:
            for week, (total, item9) in enumerate(TOTALS):
                row = submit_phq9(session, episode, total, week=week, item9=item9)
                enqueue_after_commit(session, "alerts.evaluate", row.id)
                ids.append(row.id)
    assert len(ids) == QUEUED
    wait_for(lambda: redis_up.queued() == QUEUED, timeout=10, what="200 evaluations queued")

    redis_up.client.flushall()
    assert redis_up.queued() == 0

    redriven: list[int] = []

    def publish(task: str, args: Sequence[int]) -> None:
        if task == "alerts.evaluate":
            redriven.extend(args)
        publish_with_celery(task, args)

    run_reconcile(settings=fault_settings, database=fault_db, publish=publish)
    assert set(ids) <= set(redriven)  # every lost evaluation is back in the queue (and nothing twice)
    assert len(redriven) == len(set(redriven))
    assert redis_up.queued() == len(redriven)

    worker_up.start()
    wait_for(lambda: evaluated(fault_db, ids), timeout=60, what="all 200 evaluated")
    episode_ids = [episode.id for episode in episodes]
    with fault_db.session() as session:
        attempts = session.scalars(select(Administration.eval_attempts).where(Administration.id.in_(ids))).all()
        assert sorted(set(attempts)) == [1]
        duplicated = session.execute(
            select(SignalRecord.administration_id, SignalRecord.kind)
            .where(SignalRecord.administration_id.in_(ids))
            .group_by(SignalRecord.administration_id, SignalRecord.kind)
            .having(func.count() > 1)
        ).all()
        assert duplicated == []
        per_episode = session.execute(
            select(Alert.episode_id, Alert.kind, func.count())
            .where(Alert.episode_id.in_(episode_ids))
            .group_by(Alert.episode_id, Alert.kind)
        ).all()
        # Every episode tells the same story once: one outcome alert (deterioration) and one risk alert.
        assert sorted({(kind, count) for _, kind, count in per_episode}) == [("outcome", 1), ("risk", 1)]
        assert len(per_episode) == 2 * EPISODES
