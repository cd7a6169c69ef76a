"""Alerts end to end: answers committed, alerts.evaluate run by a real worker on Redis and PostgreSQL, email by SMTP."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from email.message import Message
from typing import Any

from sqlalchemy import func, select

from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert, SignalRecord
from services.clients.models import Episode
from services.config import Settings
from services.db import Database
from services.notifications.models import Notification
from services.signals import (
    ALLIANCE_KINDS,
    DEFAULT_SETTINGS,
    LOW_ALLIANCE,
    REPAIRED,
    RISK,
    RUPTURE_DEV,
    RUPTURE_DROP,
    alliance_signals,
)
from services.surveys.models import Administration
from tests.factories import make_client, make_episode, make_user
from tests.integration.conftest import SmtpSink, WorkerProcess, wait_for
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9
from workers.enqueue import enqueue_after_commit
from workers.tasks.alerts import evaluate_now
from workers.tasks.ops import run_reconcile


def _practice(db: Database, *, notify_mode: str = "immediate") -> tuple[int, str, dict[str, str]]:
    """A clinician and a client with an open episode: (episode id, clinician email, client identifiers)."""
    with db.unit_of_work() as session:
        clinician = make_user(session, role="clinician")
        clinician.notify_mode = notify_mode
        client = make_client(session)
        episode = make_episode(session, client=client, clinician=clinician)
        return (
            episode.id,
            clinician.email,
            {"first": client.first_name, "last": client.last_name, "code": client.code, "email": client.email or ""},
        )


def _submit(db: Database, episode_id: int, write: Callable[[Any, Episode], Administration], *, enqueue: bool) -> int:
    """Commit one administration, enqueueing alerts.evaluate after the commit (as the survey page does)."""
    with db.unit_of_work() as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        row = write(session, episode)
        if enqueue:
            enqueue_after_commit(session, "alerts.evaluate", row.id)
        return row.id


def _partnership(items: list[int], week: int) -> Callable[[Any, Episode], Administration]:
    return lambda session, episode: submit_partnership(session, episode, items, week=week)


def _evaluated(db: Database, administration_id: int) -> bool:
    with db.session() as s:
        return s.scalar(select(Administration.evaluated_at).where(Administration.id == administration_id)) is not None


def _alerts(db: Database, episode_id: int) -> list[Alert]:
    with db.session() as s:
        return list(s.scalars(select(Alert).where(Alert.episode_id == episode_id).order_by(Alert.id)))


def _effects(db: Database, episode_id: int) -> tuple[int, int, int, list[Any]]:
    with db.session() as s:
        alert_ids = list(s.scalars(select(Alert.id).where(Alert.episode_id == episode_id)))
        return (
            s.scalar(select(func.count()).select_from(SignalRecord).where(SignalRecord.episode_id == episode_id)) or 0,
            len(alert_ids),
            s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.dedupe_key.in_([f"alert:{i}:opened" for i in alert_ids]))
            )
            or 0,
            [list(a.evidence) for a in s.scalars(select(Alert).where(Alert.episode_id == episode_id))],
        )


def _kinds(db: Database, administration_ids: list[int]) -> list[list[str]]:
    order = {kind: i for i, kind in enumerate((*ALLIANCE_KINDS, RISK))}
    with db.session() as s:
        return [
            sorted(
                s.scalars(select(SignalRecord.kind).where(SignalRecord.administration_id == admin_id)),
                key=order.__getitem__,
            )
            for admin_id in administration_ids
        ]


def _statuses(db: Database, address: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Notification.status).where(Notification.to_address == address)))


def _assert_no_client_data(message: Message, client: dict[str, str], *, scores: list[int]) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    whole = f"{message['Subject']}\n{text}"
    for value in client.values():
        assert value not in whole
    for name in ("Partnership", "PHQ", "Patient Health", "CORE", "GAD"):
        assert name.lower() not in whole.lower()
    links = re.findall(r"https?://\S+", text)
    assert len(links) == 1
    assert re.fullmatch(r"http://rapport\.test/clinician/alerts/\d+", links[0])
    # Apart from the link, not a single digit: no score, no item, no date.
    assert not re.search(r"\d", whole.replace(links[0], "")), whole
    assert all(str(score) not in whole.replace(links[0], "") for score in scores)
    return links[0]


def test_b1_submitted_session_by_session_tells_the_rupture_story_once(
    it_db: Database, it_settings: Settings, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    episode_id, email, client = _practice(it_db)
    ids: list[int] = []
    for week, total in enumerate(B1):
        ids.append(_submit(it_db, episode_id, _partnership(split_total(total), week), enqueue=True))
        wait_for(lambda: _evaluated(it_db, ids[-1]), what=f"session {week + 1} evaluated")
        alerts = _alerts(it_db, episode_id)
        session_no = week + 1
        if session_no < 5:
            assert alerts == [], f"no alert at session {session_no}"
        else:
            (alert,) = alerts
            assert alert.status == ("open" if session_no < 7 else "resolved"), session_no
    assert _kinds(it_db, ids) == [
        [LOW_ALLIANCE],
        [],
        [],
        [],
        [RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [REPAIRED],
        [],
    ]
    (alert,) = _alerts(it_db, episode_id)
    assert (alert.kind, alert.opened_session, alert.baseline) == ("alliance", 5, 35.75)
    assert {e["kind"] for e in alert.evidence if e["session"] == 5} == {RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE}
    assert (alert.resolution_reason, alert.repaired_at is not None) == ("repaired", True)
    assert alert.summary.startswith("Partnership score fell from 36 to 27")

    wait_for(lambda: smtp.to(email), what="the alert email at the SMTP server")
    (message,) = smtp.to(email)
    link = _assert_no_client_data(message, client, scores=[36, 27, 35])
    assert link.endswith(f"/clinician/alerts/{alert.id}")
    wait_for(lambda: _statuses(it_db, email) == ["sent"], what="the one notification marked sent")

    # Running the task twice more (in this process and through the worker) changes nothing.
    before = _effects(it_db, episode_id)
    assert evaluate_now(it_db, it_settings, ids[4]) == "done"
    assert evaluate_now(it_db, it_settings, ids[4]) == "done"
    for _ in range(2):
        celery_publisher.send_task("alerts.evaluate", args=[ids[4]])
    barrier_episode, _, _ = _practice(it_db)
    barrier = _submit(it_db, barrier_episode, lambda s, e: submit_partnership(s, e, [9, 9, 9, 9], week=0), enqueue=True)
    wait_for(lambda: _evaluated(it_db, barrier), what="a later evaluation (the queue has drained past the repeats)")
    time.sleep(0.5)
    assert _effects(it_db, episode_id) == before
    assert len(smtp.to(email)) == 1
    with it_db.session() as s:
        attempts = s.scalar(select(Administration.eval_attempts).where(Administration.id == ids[4]))
    assert attempts == 1


def test_risk_answer_gives_a_risk_alert_and_an_immediate_email_for_a_digest_clinician(
    it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    episode_id, email, client = _practice(it_db, notify_mode="digest")
    admin_id = _submit(it_db, episode_id, lambda s, e: submit_phq9(s, e, 14, week=0, item9=2), enqueue=True)
    wait_for(lambda: _evaluated(it_db, admin_id), what="the PHQ-9 evaluated")
    (alert,) = _alerts(it_db, episode_id)
    assert (alert.kind, alert.severity, alert.status) == ("risk", "risk", "open")
    assert _kinds(it_db, [admin_id]) == [[RISK]]
    wait_for(lambda: smtp.to(email), what="the immediate risk email")
    (message,) = smtp.to(email)
    _assert_no_client_data(message, client, scores=[14, 2])


def test_reconcile_evaluates_an_administration_written_without_an_enqueue(
    it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    episode_id, email, _ = _practice(it_db)
    # As if the broker had been down at commit time: the row is committed, no task was published.
    admin_id = _submit(it_db, episode_id, lambda s, e: submit_phq9(s, e, 12, week=0, item9=1), enqueue=False)
    time.sleep(0.5)
    assert not _evaluated(it_db, admin_id)
    result = run_reconcile()
    assert result["administrations"] >= 1
    wait_for(lambda: _evaluated(it_db, admin_id), what="evaluation re-driven by reconcile")
    (alert,) = _alerts(it_db, episode_id)
    assert alert.kind == "risk"
    wait_for(lambda: smtp.to(email), what="the email after the re-driven evaluation")
    run_reconcile()
    barrier = _submit(it_db, episode_id, lambda s, e: submit_phq9(s, e, 5, week=1), enqueue=True)
    wait_for(lambda: _evaluated(it_db, barrier), what="a later evaluation")
    assert len(smtp.to(email)) == 1
    assert len(_alerts(it_db, episode_id)) == 1


def test_two_transactions_evaluating_one_administration_concurrently_give_one_effect(it_db: Database) -> None:
    episode_id, _, _ = _practice(it_db)
    ids = [_submit(it_db, episode_id, _partnership(split_total(t), w), enqueue=False) for w, t in enumerate(B1[:6])]
    barrier = threading.Barrier(4)
    statuses: list[str] = []
    errors: list[BaseException] = []

    def work(administration_id: int) -> None:
        try:
            with it_db.unit_of_work() as session:
                barrier.wait()
                statuses.append(evaluate_administration(session, administration_id, settings=DEFAULT_SETTINGS).status)
        except BaseException as exc:
            errors.append(exc)

    # Two workers on session 5, two on session 6, all at once.
    threads = [threading.Thread(target=work, args=(ids[i],)) for i in (4, 4, 5, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert statuses.count("evaluated") in (1, 2)
    signals, alerts, notifications, _ = _effects(it_db, episode_id)
    assert (alerts, notifications) == (1, 1)
    expected = alliance_signals(B1[:6], items=[split_total(t) for t in B1[:6]], tension=[0] * 6)
    assert _kinds(it_db, ids) == [[s.kind for s in per] for per in expected]
    assert signals == sum(len(per) for per in expected)
