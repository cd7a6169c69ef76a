"""Escalation: unacknowledged alerts go to the supervisor after the acknowledgement window, risk alerts to the
on-call list after the risk window; once per level, audited, visible on the alert, never for an acknowledged one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.escalation import escalate_alerts
from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert, AlertAction
from services.alerts.operations import acknowledge_alert
from services.audit.models import AuditEvent
from services.clients.models import Episode
from services.notifications.models import Notification
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACK = timedelta(hours=48)
RISK = timedelta(minutes=60)
BASE = "http://rapport.test"


def run(session: Session, now: datetime) -> list[tuple[int, int]]:
    return escalate_alerts(session, now=now, ack_window=ACK, risk_window=RISK, base_url=BASE).escalated


def risk_alert(session: Session, clinician: User) -> Alert:
    episode = make_episode(session, clinician=clinician)
    row = submit_phq9(session, episode, 14, week=0, item9=2)
    evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=OPENED, notify=False)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    return alert


def alliance_alert(session: Session, clinician: User) -> Alert:
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(B1[:5]):
        row = submit_partnership(session, episode, split_total(total), week=week)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=OPENED, notify=False)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    return alert


def messages(session: Session, alert: Alert) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        select(Notification)
        .where(Notification.dedupe_key.like(f"alert:{alert.id}:escalated:%"))
        .order_by(Notification.id)
    )
    return [(n.channel, n.to_address, n.context["role"]) for n in rows]


def test_a_risk_alert_goes_to_the_on_call_list_after_the_risk_window_then_to_the_supervisor(session: Session) -> None:
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
    assert messages(session, alert) == [
        ("email", on_call.email, "the on-call clinician"),
        ("sms", "+44 7700 900123", "the on-call clinician"),
    ]
    assert off_duty.email not in {address for _, address, _ in messages(session, alert)}
    # Every minute after: nothing more until the acknowledgement window passes.
    assert run(session, OPENED + RISK + timedelta(minutes=1)) == []
    assert run(session, OPENED + ACK) == [(alert.id, 2)]
    assert run(session, OPENED + ACK + timedelta(hours=1)) == []
    assert messages(session, alert)[-1] == ("email", supervisor.email, "supervisor")

    actions = session.scalars(
        select(AlertAction).where(AlertAction.alert_id == alert.id, AlertAction.action == "escalated")
    ).all()
    assert [(a.detail["level"], a.detail["to"], a.actor_id) for a in actions] == [
        (1, "on_call", None),
        (2, "supervisor", None),
    ]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert_escalated")).all()
    assert [(e.subject_id, e.actor_label, e.detail["level"]) for e in events] == [
        (alert.id, "scheduler", 1),
        (alert.id, "scheduler", 2),
    ]
    episode = session.get(Episode, alert.episode_id)
    assert episode is not None
    assert {e.client_id for e in events} == {episode.client_id}


def test_an_alliance_alert_goes_to_the_supervisor_after_the_acknowledgement_window(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = alliance_alert(session, clinician)
    assert run(session, OPENED + ACK - timedelta(seconds=1)) == []
    assert run(session, OPENED + ACK) == [(alert.id, 1)]
    assert run(session, OPENED + ACK * 3) == []
    assert messages(session, alert) == [("email", supervisor.email, "supervisor")]
    (note,) = session.scalars(select(Notification).where(Notification.dedupe_key.like(f"alert:{alert.id}:escalated:%")))
    # A link and a role: nothing about the client.
    assert note.context == {"link": f"{BASE}/clinician/alerts/{alert.id}", "role": "supervisor", "language": "en"}


def test_an_acknowledged_alert_is_never_escalated(session: Session) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = alliance_alert(session, clinician)
    acknowledge_alert(session, alert, actor=clinician)
    assert run(session, OPENED + ACK * 2) == []
    assert alert.escalation_level == 0


def test_a_risk_alert_found_late_climbs_every_step_at_once(session: Session) -> None:
    make_user(session, role="supervisor", team="Team North")
    on_call = make_user(session, role="clinician", team="Team North")
    on_call.on_call = True
    clinician = make_user(session, role="clinician", team="Team North")
    alert = risk_alert(session, clinician)
    assert run(session, OPENED + timedelta(days=3)) == [(alert.id, 1), (alert.id, 2)]


def test_with_nobody_on_call_a_risk_alert_goes_to_the_supervisor_and_says_so(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team North", phone="+44 7700 900999")
    clinician = make_user(session, role="clinician", team="Team North")
    alert = risk_alert(session, clinician)
    assert run(session, OPENED + RISK) == [(alert.id, 1)]
    assert messages(session, alert) == [
        ("email", supervisor.email, "supervisor"),
        ("sms", "+44 7700 900999", "supervisor"),
    ]
    action = session.scalar(
        select(AlertAction).where(AlertAction.alert_id == alert.id, AlertAction.action == "escalated")
    )
    assert action is not None
    assert action.detail["fallback"] == "nobody on call"


def test_alerts_at_the_top_of_their_ladder_never_crowd_out_the_rest(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    done = alliance_alert(session, clinician)
    assert run(session, OPENED + ACK) == [(done.id, 1)]
    later = risk_alert(session, clinician)
    later.opened_at = OPENED + ACK
    session.flush()
    monkeypatch.setattr("services.alerts.escalation.BATCH", 1)
    # The older alert is still open but has nothing left to climb: the one-row batch goes to the newer one.
    assert run(session, OPENED + ACK + RISK) == [(later.id, 1)]
