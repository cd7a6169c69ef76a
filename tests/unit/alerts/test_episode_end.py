"""Ending an episode closes its open alerts as "episode ended" (a line in each alert's history and an audit event),
and they are never escalated, reviewed or reminded about afterwards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.alerts.escalation import escalate_alerts
from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert, AlertAction
from services.alerts.operations import close_alerts_of_ended_episodes
from services.audit.models import AuditEvent
from services.clients.operations import ClientError, end_episode
from services.reviews.operations import find_review_triggers
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_ending_an_episode_closes_its_alerts_and_nothing_escalates_after(session: Session) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(B1[:5]):
        row = submit_partnership(session, episode, split_total(total), week=week)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=NOW - timedelta(days=30), notify=False)
    risk_row = submit_phq9(session, episode, 14, week=5, item9=1)
    evaluate_administration(session, risk_row.id, settings=DEFAULT_SETTINGS, now=NOW - timedelta(days=30), notify=False)
    other = make_episode(session, clinician=clinician)
    other_row = submit_phq9(session, other, 14, week=0, item9=1)
    evaluate_administration(
        session, other_row.id, settings=DEFAULT_SETTINGS, now=NOW - timedelta(days=30), notify=False
    )
    alerts = list(session.scalars(select(Alert).where(Alert.episode_id == episode.id, Alert.status != "resolved")))
    assert {alert.kind for alert in alerts} >= {"alliance", "risk"}

    end_episode(session, episode_id=episode.id, ended_on=NOW.date(), actor_id=clinician.id, now=NOW)

    session.expire_all()
    for alert in alerts:
        stored = session.get(Alert, alert.id)
        assert stored is not None
        assert (stored.status, stored.resolution_reason, stored.resolved_at) == ("resolved", "episode_ended", NOW)
        (line,) = session.scalars(
            select(AlertAction).where(AlertAction.alert_id == alert.id, AlertAction.action == "resolved")
        )
        assert (line.actor_id, line.detail) == (None, {"reason": "episode_ended"})
    audited = session.scalars(
        select(AuditEvent.subject_id).where(AuditEvent.action == "alert_resolved", AuditEvent.actor_label == "system")
    )
    assert sorted(audited) == sorted(alert.id for alert in alerts)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "episode_ended")) is not None
    # The other episode's alert is untouched; only it escalates, and no review is opened on the ended episode.
    (escalated,) = escalate_alerts(
        session,
        now=NOW + timedelta(days=5),
        ack_window=timedelta(hours=48),
        risk_window=timedelta(minutes=60),
        base_url="http://rapport.test",
    ).escalated
    other_alert = session.scalar(select(Alert).where(Alert.episode_id == other.id))
    assert other_alert is not None
    assert escalated == (other_alert.id, 1)
    findings = find_review_triggers(session, now=NOW + timedelta(days=5), settings=DEFAULT_SETTINGS)
    assert [f for f in findings if f.episode_id == episode.id] == []


def test_an_episode_cannot_end_twice_or_before_it_started(session: Session) -> None:
    episode = make_episode(session, clinician=make_user(session, role="clinician"))
    with pytest.raises(ClientError, match="before it started"):
        end_episode(session, episode_id=episode.id, ended_on=episode.started_on - timedelta(days=1))
    end_episode(session, episode_id=episode.id, ended_on=date.today())
    with pytest.raises(ClientError, match="already ended"):
        end_episode(session, episode_id=episode.id, ended_on=date.today())


def test_a_risk_answer_after_the_episode_ended_stays_open_and_escalates(session: Session) -> None:
    make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    episode = make_episode(session, clinician=clinician)
    end_episode(session, episode_id=episode.id, ended_on=NOW.date() - timedelta(days=3), now=NOW)
    # The last questionnaire arrives after the end, with the risk item above 0: news, not history.
    row = submit_phq9(session, episode, 14, week=0, item9=2)
    evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=NOW, notify=False)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    alert.opened_at = NOW
    session.flush()
    assert close_alerts_of_ended_episodes(session, today=NOW.date(), now=NOW) == []
    assert alert.status == "open"
    run = escalate_alerts(
        session,
        now=NOW + timedelta(hours=2),
        ack_window=timedelta(hours=48),
        risk_window=timedelta(minutes=60),
        base_url="http://rapport.test",
    )
    assert run.escalated == [(alert.id, 1)]
