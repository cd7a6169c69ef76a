"""Who sees which alert, and what clinicians do about them (acknowledge, note, repair step, resolve)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert, AlertAction
from services.alerts.operations import (
    AlertActionError,
    acknowledge_alert,
    add_alert_note,
    record_repair_step,
    resolve_alert,
)
from services.alerts.queries import get_alert_for, list_open_alerts_for
from services.audit.models import AuditEvent
from services.clients.models import Episode
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9


def alliance_alert(session: Session, clinician: User) -> Alert:
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(B1[:5]):
        row = submit_partnership(session, episode, split_total(total), week=week)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    return alert


def risk_alert(session: Session, episode: Episode) -> Alert:
    row = submit_phq9(session, episode, 9, week=9, item9=1)
    evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id, Alert.kind == "risk"))
    assert alert is not None
    return alert


def test_clinician_a_cannot_see_clinician_b_alert(session: Session) -> None:
    a = make_user(session, role="clinician", team="Team Alpha")
    b = make_user(session, role="clinician", team="Team Beta")
    alert_b = alliance_alert(session, b)
    assert get_alert_for(session, a, alert_b.id) is None
    assert [item.alert.id for item in list_open_alerts_for(session, a)] == []
    detail = get_alert_for(session, b, alert_b.id)
    assert detail is not None
    assert detail.alert.id == alert_b.id
    assert [item.alert.id for item in list_open_alerts_for(session, b)] == [alert_b.id]


def test_supervisor_sees_the_team_and_nobody_else_sees_alerts(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team Gamma")
    inside = make_user(session, role="clinician", team="Team Gamma")
    outside = make_user(session, role="clinician", team="Team Delta")
    alert_in = alliance_alert(session, inside)
    alert_out = alliance_alert(session, outside)
    assert get_alert_for(session, supervisor, alert_in.id) is not None
    assert get_alert_for(session, supervisor, alert_out.id) is None
    for role in ("front_desk", "manager", "admin"):
        other = make_user(session, role=role, team="Team Gamma")
        assert get_alert_for(session, other, alert_in.id) is None
        assert list_open_alerts_for(session, other) == []
    inside.active = False
    session.flush()
    assert get_alert_for(session, inside, alert_in.id) is None
    loner = make_user(session, role="supervisor", team=None)
    assert get_alert_for(session, loner, alert_in.id) is None


def test_open_alerts_list_risk_first_then_alliance_then_outcome(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    alliance = alliance_alert(session, clinician)
    episode = session.get(Episode, alliance.episode_id)
    assert episode is not None
    for week, total in enumerate([16, 16, 15, 15]):
        evaluate_administration(session, submit_phq9(session, episode, total, week=week).id, settings=DEFAULT_SETTINGS)
    risk = risk_alert(session, episode)
    items = list_open_alerts_for(session, clinician)
    assert [item.alert.kind for item in items] == ["risk", "alliance", "outcome"]
    assert items[0].alert.id == risk.id
    assert items[1].client_code
    assert items[1].client_name
    assert items[1].summary("es").startswith("La puntuación de colaboración bajó de 36 a 27")
    resolve_alert(session, risk, actor=clinician, reason="contacted_client", note="Called; safety plan in place.")
    assert [item.alert.kind for item in list_open_alerts_for(session, clinician)] == ["alliance", "outcome"]


def test_alert_detail_has_evidence_lines_and_repair_suggestions(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    alert = alliance_alert(session, clinician)
    detail = get_alert_for(session, clinician, alert.id)
    assert detail is not None
    assert [line.kind for line in detail.evidence] == ["RUPTURE_DEV", "RUPTURE_DROP", "LOW_ALLIANCE"]
    assert detail.evidence[1].text == "Partnership score fell from 36 to 27"
    assert detail.evidence[0].numbers["threshold"] == 29.75
    assert {s.kind for s in detail.signals} == {"RUPTURE_DEV", "RUPTURE_DROP", "LOW_ALLIANCE"}
    assert detail.suggestions
    # Even splits of 36 and 27 put the largest item drop on shared responsibility (9 -> 6).
    assert detail.suggestions[0].topic == "shared_responsibility"
    assert detail.suggestions[-1].topic == "general"
    spanish = get_alert_for(session, clinician, alert.id, language="es")
    assert spanish is not None
    assert spanish.evidence[1].text == "La puntuación de colaboración bajó de 36 a 27"


def test_acknowledge_note_repair_step_and_resolve_are_recorded_and_audited(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    detail = get_alert_for(session, clinician, alliance_alert(session, clinician).id, for_update=True)
    assert detail is not None
    alert = detail.alert
    assert acknowledge_alert(session, alert, actor=clinician) is not None
    assert acknowledge_alert(session, alert, actor=clinician) is None
    assert (alert.status, alert.acknowledged_by_id) == ("acknowledged", clinician.id)
    add_alert_note(session, alert, actor=clinician, text="Will raise it at the start of next session.")
    step = record_repair_step(session, alert, actor=clinician, suggestion_key="mutual_goals.revisit_goals")
    assert (step.component, step.detail) == ("mutual_goals", {"suggestion": "mutual_goals.revisit_goals"})
    resolve_alert(session, alert, actor=clinician, reason="repaired")
    assert (alert.status, alert.resolution_reason, alert.resolved_by_id) == ("resolved", "repaired", clinician.id)
    assert alert.repaired_at is not None
    actions = session.scalars(
        select(AlertAction.action).where(AlertAction.alert_id == alert.id).order_by(AlertAction.id)
    )
    assert list(actions) == ["acknowledged", "note", "repair_step", "resolved"]
    audited = session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject_type == "alert", AuditEvent.subject_id == alert.id)
    )
    assert list(audited) == ["alert_acknowledged", "alert_note", "alert_repair_step", "alert_resolved"]
    with pytest.raises(AlertActionError, match="already resolved"):
        resolve_alert(session, alert, actor=clinician, reason="other", note="again")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, a, u: resolve_alert(s, a, actor=u, reason="bored"), "Unknown reason"),
        (lambda s, a, u: resolve_alert(s, a, actor=u, reason="other"), "a few words"),
        (lambda s, a, u: add_alert_note(s, a, actor=u, text="  "), "a few words"),
        (lambda s, a, u: record_repair_step(s, a, actor=u, suggestion_key="nope.nope"), "Unknown repair suggestion"),
        (lambda s, a, u: record_repair_step(s, a, actor=u, text="x", component="vibes"), "Unknown component"),
    ],
)
def test_bad_alert_actions_are_refused_with_a_clear_message(session: Session, call: object, message: str) -> None:
    clinician = make_user(session, role="clinician")
    alert = alliance_alert(session, clinician)
    with pytest.raises(AlertActionError, match=message):
        call(session, alert, clinician)  # type: ignore[operator]
    assert alert.status == "open"
