"""Two beat processes at once, then the leader killed: every periodic job still runs once per period."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import select

from services.db import Database, utcnow
from services.ops.models import Heartbeat, JobRun
from tests.fault.conftest import BEAT_PERIOD, BeatProcess, pause
from tests.integration.conftest import WorkerProcess, wait_for

KEYED = ("ops.reconcile", "reviews.scan", "alerts.escalate")
HOST = socket.gethostname()


def runs(db: Database, job: str, since_id: int) -> list[str]:
    with db.session() as session:
        return list(
            session.scalars(
                select(JobRun.period_key).where(JobRun.job == job, JobRun.id > since_id).order_by(JobRun.period_key)
            )
        )


def last_run_id(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(JobRun.id).order_by(JobRun.id.desc()).limit(1)) or 0)


def leaders(db: Database, since: datetime) -> dict[str, str]:
    with db.session() as session:
        return {
            hb.name: hb.role
            for hb in session.scalars(select(Heartbeat).where(Heartbeat.role.like("beat%"), Heartbeat.at >= since))
        }


def received(worker: WorkerProcess, job: str, offset: int) -> int:
    """How many messages of job the worker received since offset (its log)."""
    text = worker.log_path.read_bytes()[offset:].decode(errors="replace")
    return len(re.findall(rf"Task {re.escape(job)}\[[0-9a-f-]+\] received", text))


def test_two_beats_for_three_periods_then_the_leader_killed_run_each_job_once_per_period(
    fault_db: Database, worker_up: WorkerProcess, beats: Callable[[str], BeatProcess]
) -> None:
    started = utcnow()
    since = last_run_id(fault_db)
    log_offset = worker_up.log_path.stat().st_size
    first, second = beats("a"), beats("b")
    wait_for(lambda: "beat" in leaders(fault_db, started).values(), timeout=30, what="one beat to take the lock")
    wait_for(lambda: len(leaders(fault_db, started)) == 2, timeout=30, what="both beats to tick")
    roles = leaders(fault_db, started)
    assert sorted(roles.values()) == ["beat", "beat-standby"], roles
    leader, standby = (first, second) if roles.get(f"beat@{HOST}:{first.pid}") == "beat" else (second, first)

    # Three periods with both running.
    wait_for(lambda: all(len(runs(fault_db, job, since)) >= 3 for job in KEYED), timeout=20, what="three periods")
    # The leader dies mid-flight: the standby takes over within a tick or two, and nothing runs twice.
    leader.kill()
    killed_at = utcnow()
    wait_for(
        lambda: leaders(fault_db, killed_at).get(f"beat@{HOST}:{standby.pid}") == "beat",
        timeout=20,
        what="the standby to take the lock",
    )
    before = {job: len(runs(fault_db, job, since)) for job in KEYED}
    wait_for(
        lambda: all(len(runs(fault_db, job, since)) >= before[job] + 3 for job in KEYED),
        timeout=20,
        what="three more periods under the new leader",
    )
    standby.stop()
    pause(1.0)  # let the last messages reach the worker's log

    for job in KEYED:
        keys = runs(fault_db, job, since)
        # Once per period: no key twice (the unique key), and no period run by both beats (one send each).
        assert len(keys) == len(set(keys)), (job, keys)
        assert received(worker_up, job, log_offset) == len(keys), (job, keys)
        # Periods follow one another under each leader; the failover leaves one gap (nobody leading for a moment).
        period = timedelta(seconds=BEAT_PERIOD)
        gaps = [datetime.fromisoformat(b) - datetime.fromisoformat(a) for a, b in pairwise(keys)]
        assert all(gap >= period for gap in gaps), (job, keys)
        assert sum(gap != period for gap in gaps) <= 1, (job, keys)
    assert "sending the schedule" in leader.log()
    assert "holding the beat lock" in standby.log()
