"""Case reviews from evaluations a real worker made: a rupture left unrepaired for three sessions gives one review for
the right supervisor, due on the right day; a rupture followed by fourteen days of silence (a controllable clock)
gives one review. Run repeatedly and concurrently, the scheduler's pass opens each once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.clients.models import Episode
from services.config import Settings
from services.db import Database
from services.reviews.models import Review
from tests.factories import make_episode, make_user
from tests.fault.conftest import evaluated
from tests.integration.conftest import WorkerProcess, wait_for
from tests.unit.alerts.series import session_time, split_total, submit_partnership
from workers.enqueue import enqueue_after_commit
from workers.tasks.reviews import run_review_scan

# CLINICAL.md B3: a rupture at session 4, still below its baseline at session 7.
B3 = [36, 37, 38, 29, 30, 31, 32]


def team_episode(db: Database, team: str) -> tuple[int, int, int]:
    """A team with a supervisor (another team has one too) and a clinician's episode: (episode, supervisor, other)."""
    with db.unit_of_work() as session:
        other = make_user(session, role="supervisor", team=f"{team} Elsewhere")
        supervisor = make_user(session, role="supervisor", team=team)
        clinician = make_user(session, role="clinician", team=team)
        return make_episode(session, clinician=clinician).id, supervisor.id, other.id


def submit_series(db: Database, episode_id: int, totals: Sequence[int]) -> list[int]:
    """Commit each session and publish its evaluation after the commit; wait for the worker to evaluate them."""
    ids = []
    for week, total in enumerate(totals):
        with db.unit_of_work() as session:
            episode = session.get(Episode, episode_id)
            assert episode is not None
            row = submit_partnership(session, episode, split_total(total), week=week)
            enqueue_after_commit(session, "alerts.evaluate", row.id)
            ids.append(row.id)
    wait_for(lambda: evaluated(db, ids), what="the series evaluated by the worker")
    return ids


def scan_concurrently(db: Database, settings: Settings, now: datetime, times: int = 3) -> list[dict[str, Any]]:
    """Run the scheduler's pass several times at once (two beats, a redelivery), all with the same clock."""
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(times)

    def run() -> None:
        try:
            barrier.wait()
            results.append(run_review_scan(database=db, settings=settings, now=now))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def reviews_of(db: Database, episode_id: int) -> list[Review]:
    with db.session() as session:
        return list(session.scalars(select(Review).where(Review.episode_id == episode_id).order_by(Review.id)))


def test_a_rupture_unrepaired_for_three_sessions_gives_one_review_for_the_supervisor_due_in_five_business_days(
    fault_db: Database, fault_settings: Settings, worker_up: WorkerProcess, fault_publisher: Any
) -> None:
    episode_id, supervisor_id, _other = team_episode(fault_db, "Team Unrepaired")
    submit_series(fault_db, episode_id, B3)
    # The day after the seventh session (Monday 23 February 2026): Tuesday 24 February, 09:00 London.
    now = datetime(2026, 2, 24, 9, 0, tzinfo=UTC)
    scan_concurrently(fault_db, fault_settings, now)
    run_review_scan(database=fault_db, settings=fault_settings, now=now + timedelta(minutes=1))
    (review,) = reviews_of(fault_db, episode_id)
    assert (review.reason, review.status, review.reviewer_id) == ("UNREPAIRED", "open", supervisor_id)
    # Five business days after Tuesday 24 February is Tuesday 3 March, due at 17:00 London (GMT).
    assert review.due_at == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)


def test_a_rupture_followed_by_fourteen_days_of_silence_gives_one_review(
    fault_db: Database, fault_settings: Settings, worker_up: WorkerProcess, fault_publisher: Any
) -> None:
    episode_id, supervisor_id, _other = team_episode(fault_db, "Team Silent")
    submit_series(fault_db, episode_id, B3[:4])  # the rupture at session 4, then nothing
    last = session_time(3)
    scan_concurrently(fault_db, fault_settings, last + timedelta(days=13, hours=23))
    assert reviews_of(fault_db, episode_id) == []
    scan_concurrently(fault_db, fault_settings, last + timedelta(days=14))
    run_review_scan(database=fault_db, settings=fault_settings, now=last + timedelta(days=21))
    (review,) = reviews_of(fault_db, episode_id)
    assert (review.reason, review.reviewer_id) == ("SILENT_AFTER_RUPTURE", supervisor_id)
    assert review.form["trigger"]["silent_days"] == 14
