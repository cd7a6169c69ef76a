"""SIGKILL the worker in the middle of an evaluation; restart it: reconcile takes the dead process's claim once its
heartbeat goes quiet, within two minutes: one alert, one message."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from sqlalchemy import func, select

from services.alerts.models import Alert
from services.clients.models import Episode
from services.config import Settings
from services.db import Database
from services.notifications.models import Notification
from services.ops.liveness import PROCESS_BEAT_EVERY, PROCESS_DEAD_AFTER, PROCESS_ROLE
from services.ops.models import Heartbeat
from services.surveys.models import Administration
from tests.factories import make_client, make_episode, make_user
from tests.fault.conftest import evaluated, waiting_on_a_lock
from tests.integration.conftest import SmtpSink, WorkerProcess, wait_for
from tests.unit.alerts.series import B1, split_total, submit_partnership
from workers.enqueue import enqueue_after_commit
from workers.tasks.ops import run_reconcile

RECOVERY_LIMIT_S = 120.0


def submit_session(db: Database, episode_id: int, week: int) -> int:
    """Commit one Partnership Check of B1 and publish its evaluation after the commit (as the survey page does)."""
    with db.unit_of_work() as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        row = submit_partnership(session, episode, split_total(B1[week]), week=week)
        enqueue_after_commit(session, "alerts.evaluate", row.id)
        return row.id


def test_a_worker_killed_mid_evaluation_gives_one_alert_and_one_message_after_reconcile(
    fault_db: Database,
    fault_settings: Settings,
    worker_up: WorkerProcess,
    smtp: SmtpSink,
    fault_publisher: Any,
) -> None:
    with fault_db.unit_of_work() as session:
        clinician = make_user(session, role="clinician", team="Team Kill")
        episode_id, email = make_episode(session, client=make_client(session), clinician=clinician).id, clinician.email
    earlier = [submit_session(fault_db, episode_id, week) for week in range(4)]
    wait_for(lambda: evaluated(fault_db, earlier), what="sessions 1-4 evaluated")

    # Session 5 opens the alert. The test holds the episode's row lock, so the worker's evaluation (SELECT ... FOR
    # UPDATE on the episode) blocks inside its transaction, after counting its attempt; then the worker and its pool
    # are killed. NO KEY UPDATE still lets the test's own insert check its foreign key to the episode.
    dsn = fault_settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, options="-c lock_timeout=30s") as holder:
        holder.execute("SELECT id FROM episodes WHERE id = %s FOR NO KEY UPDATE", (episode_id,))
        fifth = submit_session(fault_db, episode_id, 4)
        wait_for(lambda: waiting_on_a_lock(fault_settings), what="the worker blocked mid-evaluation")
        worker_up.kill()
        killed_at = time.monotonic()
        holder.rollback()

    def effects() -> tuple[int, int, int]:
        with fault_db.session() as s:
            alert_ids = list(s.scalars(select(Alert.id).where(Alert.episode_id == episode_id)))
            notes = s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.dedupe_key.in_([f"alert:{i}:opened" for i in alert_ids]))
            )
            attempts = s.scalar(select(Administration.eval_attempts).where(Administration.id == fifth))
            return len(alert_ids), int(notes or 0), int(attempts or 0)

    # Killed mid-transaction: nothing of it was committed except the claim and the attempt it counted first.
    assert not evaluated(fault_db, [fifth])
    assert effects() == (0, 0, 1)
    with fault_db.session() as session:
        claimed_by = session.scalar(select(Administration.eval_claimed_by).where(Administration.id == fifth))
        assert claimed_by is not None
        heartbeat = session.get(Heartbeat, claimed_by)  # the claim names the pool process, which beat for itself
        assert heartbeat is not None
        assert heartbeat.role == PROCESS_ROLE

    worker_up.start()
    passes: list[dict[str, int]] = []

    def redriven() -> bool:
        if evaluated(fault_db, [fifth]):
            return True
        passes.append(run_reconcile(settings=fault_settings, database=fault_db))
        return False

    # The dead process's claim is left alone until its heartbeat goes quiet, then re-driven (reconcile every 2 s
    # here; 30 s in production).
    wait_for(redriven, timeout=RECOVERY_LIMIT_S + 30, interval=2, what="the evaluation re-driven by reconcile")
    recovery_s = time.monotonic() - killed_at
    assert any(p.get("administrations") for p in passes), passes
    assert recovery_s < RECOVERY_LIMIT_S, recovery_s
    assert recovery_s > (PROCESS_DEAD_AFTER - PROCESS_BEAT_EVERY).total_seconds() - 5, recovery_s
    wait_for(lambda: smtp.to(email), what="the alert email")

    # A second reconcile and a later evaluation drain the queue past any redelivered copy: still one of each.
    run_reconcile(settings=fault_settings, database=fault_db)
    barrier = submit_session(fault_db, episode_id, 5)
    wait_for(lambda: evaluated(fault_db, [barrier]), what="a later session evaluated")
    alerts, notifications, attempts = effects()
    assert (alerts, notifications) == (1, 1)
    assert attempts >= 2  # the killed attempt counted: bounded retries see it
    assert len(smtp.to(email)) == 1
    print(f"evaluation recovery after SIGKILL: {recovery_s:.1f} s")
