"""Escalation: an unacknowledged alert is escalated once (risk after the risk window to the on-call list and the
supervisor, others after the acknowledgement window to the supervisor), audited, visible on the alert, never for an
acknowledged one or one whose episode ended; and a person gets at most one escalation message per digest window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.escalation import EscalationRun, digest_window, escalate_alerts
from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert, AlertAction, EscalationNotice
from services.alerts.operations import acknowledge_alert
from services.audit.models import AuditEvent
from services.clients.models import Episode
from services.config import Settings
from services.db import Database
from services.demo.seed import seed_demo
from services.notifications.models import Notification
from services.practice.settings import set_setting
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9
from workers.tasks.reviews import run_escalation

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACK = timedelta(hours=48)
RISK = timedelta(minutes=60)
WINDOW = timedelta(minutes=15)
BASE = "http://rapport.test"
TEMPLATES = ("escalation", "escalation_digest")


def run(session: Session, now: datetime) -> list[tuple[int, int]]:
    return passes(session, now).escalated


def passes(session: Session, now: datetime) -> EscalationRun:
    return escalate_alerts(session, now=now, ack_window=ACK, risk_window=RISK, base_url=BASE, digest_window=WINDOW)


def risk_alert(session: Session, clinician: User, *, opened: datetime = OPENED) -> Alert:
    episode = make_episode(session, clinician=clinician)
    row = submit_phq9(session, episode, 14, week=0, item9=2)
    evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=opened, notify=False)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    alert.opened_at = opened
    session.flush()
    return alert


def alliance_alert(session: Session, clinician: User, *, opened: datetime = OPENED) -> Alert:
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(B1[:5]):
        row = submit_partnership(session, episode, split_total(total), week=week)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=opened, notify=False)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    alert.opened_at = opened
    session.flush()
    return alert


def sent(session: Session, person: User | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.template.in_(TEMPLATES)).order_by(Notification.id)
    if person is not None:
        stmt = stmt.where(Notification.recipient_user_id == person.id)
    return list(session.scalars(stmt))


def escalated_lines(session: Session, alert: Alert) -> list[AlertAction]:
    return list(
        session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id, AlertAction.action == "escalated"))
    )


def test_a_risk_alert_goes_to_the_on_call_list_and_the_supervisor_once(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    on_call = make_user(session, role="clinician", team="Team South", phone="+44 7700 900123")
    on_call.on_call = True
    off_duty = make_user(session, role="clinician", team="Team South")
    session.flush()
    alert = risk_alert(session, clinician)

    assert run(session, OPENED + RISK - timedelta(minutes=1)) == []
    assert run(session, OPENED + RISK) == [(alert.id, 1)]
    assert (alert.escalation_level, alert.escalated_at) == (1, OPENED + RISK)
    assert [(n.channel, n.to_address, n.context["role"]) for n in sent(session, on_call)] == [
        ("email", on_call.email, "the on-call clinician"),
        ("sms", "+44 7700 900123", "the on-call clinician"),
    ]
    assert [(n.channel, n.context["role"]) for n in sent(session, supervisor)] == [("email", "supervisor")]
    assert sent(session, off_duty) == []
    # Every pass after, the acknowledgement window included: nothing more. One escalation per alert.
    for later in (timedelta(minutes=1), ACK, ACK * 3):
        assert run(session, OPENED + RISK + later) == []
    assert len(sent(session)) == 3
    (line,) = escalated_lines(session, alert)
    assert (line.detail["level"], line.detail["to"], line.actor_id) == (1, ["on_call", "supervisor"], None)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert_escalated")).all()
    episode = session.get(Episode, alert.episode_id)
    assert episode is not None
    assert [(e.subject_id, e.actor_label, e.client_id) for e in events] == [(alert.id, "scheduler", episode.client_id)]


def test_an_alliance_alert_goes_to_the_supervisor_after_the_acknowledgement_window(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = alliance_alert(session, clinician)
    assert run(session, OPENED + ACK - timedelta(seconds=1)) == []
    assert run(session, OPENED + ACK) == [(alert.id, 1)]
    assert run(session, OPENED + ACK * 3) == []
    (note,) = sent(session)
    assert (note.channel, note.to_address, note.template) == ("email", supervisor.email, "escalation")
    # A link and a role: nothing about the client.
    assert note.context == {"link": f"{BASE}/clinician/alerts/{alert.id}", "role": "supervisor", "language": "en"}


def test_an_acknowledged_alert_is_never_escalated(session: Session) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = alliance_alert(session, clinician)
    acknowledge_alert(session, alert, actor=clinician)
    assert run(session, OPENED + ACK * 2) == []
    assert alert.escalation_level == 0
    assert sent(session) == []


def test_with_nobody_on_call_a_risk_alert_goes_to_the_supervisor_by_text_too_and_says_so(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North", phone="+44 7700 900999")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = risk_alert(session, clinician)
    assert run(session, OPENED + RISK) == [(alert.id, 1)]
    assert [(n.channel, n.to_address, n.context["role"]) for n in sent(session)] == [
        ("email", supervisor.email, "supervisor"),
        ("sms", "+44 7700 900999", "supervisor"),
    ]
    (line,) = escalated_lines(session, alert)
    assert line.detail["fallback"] == "nobody on call"


def test_escalating_twice_at_the_same_moment_writes_one_line_one_notice_and_one_message(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = alliance_alert(session, clinician)
    assert run(session, OPENED + ACK) == [(alert.id, 1)]
    # A second scheduler, or the same period run again: the conditional update finds nothing to claim.
    assert run(session, OPENED + ACK) == []
    assert len(escalated_lines(session, alert)) == 1
    assert session.scalar(select(func.count()).select_from(EscalationNotice)) == 1
    assert [n.to_address for n in sent(session)] == [supervisor.email]


def test_several_overdue_alerts_for_one_person_make_one_digest_and_later_ones_wait_for_the_window(
    session: Session,
) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alerts = [alliance_alert(session, clinician) for _ in range(4)]
    now = OPENED + ACK
    result = passes(session, now)
    assert sorted(result.escalated) == sorted((alert.id, 1) for alert in alerts)
    (digest,) = sent(session)
    assert (digest.to_address, digest.template, digest.context["count"]) == (supervisor.email, "escalation_digest", 4)
    assert digest.context["link"] == f"{BASE}/clinician/alerts?status=open"
    assert result.notification_ids == [digest.id]

    # Two more fall due five minutes later: the supervisor heard from us less than a window ago, so they wait.
    later = [alliance_alert(session, clinician, opened=OPENED + timedelta(minutes=5)) for _ in range(2)]
    held = passes(session, now + timedelta(minutes=5))
    assert sorted(held.escalated) == sorted((alert.id, 1) for alert in later)
    assert (held.notification_ids, held.waiting) == ([], 2)
    assert passes(session, now + timedelta(minutes=14)).notification_ids == []
    # The window ends: both go out together, in one message.
    after = passes(session, now + WINDOW)
    (second,) = [n for n in sent(session) if n.id in after.notification_ids]
    assert (second.template, second.context["count"]) == ("escalation_digest", 2)
    assert len(sent(session)) == 2
    assert passes(session, now + WINDOW * 3).notification_ids == []


def test_an_alert_seen_while_its_notice_waits_is_not_chased(session: Session) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alliance_alert(session, clinician)
    passes(session, OPENED + ACK)
    waiting = alliance_alert(session, clinician, opened=OPENED + timedelta(minutes=1))
    passes(session, OPENED + ACK + timedelta(minutes=1))
    waiting.status = "resolved"
    session.flush()
    assert passes(session, OPENED + ACK + WINDOW * 2).notification_ids == []
    assert len(sent(session)) == 1


def test_an_alert_on_an_ended_episode_closes_itself_and_is_never_escalated(
    db: Database, session: Session, test_settings: Settings
) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = alliance_alert(session, clinician)
    episode = session.get(Episode, alert.episode_id)
    assert episode is not None
    episode.ended_on = date(2026, 3, 3)
    session.flush()
    # The escalation pass alone skips it...
    assert run(session, OPENED + ACK * 2) == []
    session.commit()
    # ...and the scheduled job closes it first, with the reason, a line in its history and an audit event.
    result = run_escalation(database=db, settings=test_settings, now=OPENED + ACK * 2)
    assert result["closed"] == [alert.id]
    assert result["escalated"] == []
    session.expire_all()
    stored = session.get(Alert, alert.id)
    assert stored is not None
    assert (stored.status, stored.resolution_reason, stored.escalation_level) == ("resolved", "episode_ended", 0)
    (line,) = [a for a in stored.actions if a.action == "resolved"]
    assert (line.actor_id, line.detail) == (None, {"reason": "episode_ended"})
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "alert_resolved"))
    assert event is not None
    assert (event.actor_label, event.subject_id, event.detail["reason"]) == ("system", alert.id, "episode_ended")
    assert run_escalation(database=db, settings=test_settings, now=OPENED + ACK * 3)["closed"] == []
    assert sent(session) == []


def test_a_freshly_seeded_demo_does_not_escalate_its_history_on_the_first_pass(
    db: Database, test_settings: Settings
) -> None:
    seed_demo(db, clients=40, months=4, seed=3)
    with db.session() as s:
        open_alerts = s.scalar(select(func.count()).select_from(Alert).where(Alert.status == "open")) or 0
        assert open_alerts > 0  # the demo has alerts nobody has acknowledged yet
        ended_open = s.scalar(
            select(func.count())
            .select_from(Alert)
            .join(Episode, Episode.id == Alert.episode_id)
            .where(Alert.status != "resolved", Episode.ended_on.is_not(None))
        )
        assert ended_open == 0
    result = run_escalation(database=db, settings=test_settings)
    assert (result["closed"], result["escalated"], result["messages"]) == ([], [], 0)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.template.in_(TEMPLATES))) == 0


def test_the_digest_window_comes_from_the_practice_setting(
    db: Database, session: Session, test_settings: Settings
) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    set_setting(session, "escalation_digest_minutes", 60, user_id=None)
    alliance_alert(session, clinician)
    alliance_alert(session, clinician, opened=OPENED + timedelta(minutes=20))
    session.commit()
    run_escalation(database=db, settings=test_settings, now=OPENED + ACK)
    held = run_escalation(database=db, settings=test_settings, now=OPENED + ACK + timedelta(minutes=20))
    assert (held["messages"], held["waiting"]) == (0, 1)  # 20 minutes is inside the practice's hour
    assert (
        run_escalation(database=db, settings=test_settings, now=OPENED + ACK + timedelta(minutes=60))["messages"] == 1
    )
    assert len(sent(session, supervisor)) == 2
    assert digest_window("soon") == digest_window(None) == WINDOW
    assert digest_window(0) == timedelta(minutes=1)
