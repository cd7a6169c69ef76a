"""Each kind of alert has its own steps, reasons and words, on the pages and in the API; another kind's reason or
step is a 400 and writes nothing; the risk alert quotes the question and the answer in the reader's language."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.alerts.escalation import escalate_alerts
from services.alerts.models import Alert, AlertAction
from services.clients.models import Episode
from tests.factories import make_episode
from tests.unit.alerts.series import submit_phq9
from tests.unit.clinician.conftest import alliance_alert, evaluate, page_csrf, risk_alert

RUPTURE_WORDS = (
    "Record a repair step",
    "If the partnership drops again",
    "Repaired",
    "Not a rupture",
    "which component of the partnership",
    "Suggestions for what dropped",
)
ITEM9_EN = "Thoughts that you would be better off dead or of hurting yourself in some way"
ITEM9_ES = "Pensamientos de que estaría mejor muerto(a) o de lastimarse de alguna manera"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def outcome_alert(session: Session, episode: Episode) -> Alert:
    """PHQ-9 from 10 to 17: reliable deterioration (RC 6), an outcome alert."""
    for week, total in enumerate([10, 17]):
        evaluate(session, submit_phq9(session, episode, total, week=week).id)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id, Alert.kind == "outcome"))
    assert alert is not None
    return alert


def actions_of(session: Session, alert: Alert) -> list[AlertAction]:
    return list(session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id).order_by(AlertAction.id)))


@pytest.fixture
def bearer(session: Session, staff: Callable[..., User]) -> Callable[..., tuple[User, dict[str, str]]]:
    def build(role: str = "clinician", **kw: Any) -> tuple[User, dict[str, str]]:
        user = staff(role, **kw)
        token = create_api_token(session, user=user)
        session.flush()
        return user, {"Authorization": f"Bearer {token}"}

    return build


def test_a_risk_alert_page_has_risk_steps_and_reasons_and_no_rupture_wording(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = risk_alert(session, make_episode(session, clinician=me))
    html = client.get(f"/clinician/alerts/{alert.id}").get_data(as_text=True)
    text = _text(html)
    for words in ("I contacted the client", "I reviewed the safety plan with the client", "Not a risk"):
        assert words in text
    assert "Emergency services involved" in text
    for words in RUPTURE_WORDS:
        assert words not in text, words
    # It leads with what happened and what to do; the statistics are folded below.
    assert text.index("What happened") < text.index("What to do") < text.index("Contact the client today")
    assert text.index("Contact the client today") < text.index("Record what you did")
    assert html.index('id="alert-panel"') < html.index('<details class="alert-statistics"')
    assert html.index('<details class="alert-statistics"') < html.index("The evidence, in numbers")
    # The question and the chosen answer, not "item phq9_9, answer 1".
    assert f"“{ITEM9_EN}”, answered “Several days”" in text
    assert "phq9_9" not in text


def test_risk_steps_and_reasons_are_recorded_and_another_kinds_are_refused(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = risk_alert(session, make_episode(session, clinician=me))
    page = f"/clinician/alerts/{alert.id}"
    token = page_csrf(client, page)
    for path, data, message in (
        ("resolve", {"reason": "repaired"}, "Choose one of the reasons shown"),
        ("resolve", {"reason": "not_a_rupture"}, "Choose one of the reasons shown"),
        ("steps", {"step": "plan_reviewed"}, "Choose one of the steps shown."),
        ("repair-steps", {"text": "Asked how it felt"}, "Repair steps are for partnership alerts"),
    ):
        refused = client.post(f"{page}/{path}", data={**data, "csrf_token": token})
        assert refused.status_code == 400, path
        assert message in refused.get_data(as_text=True)
    assert actions_of(session, alert) == []

    done = client.post(f"{page}/steps", data={"step": "contacted_client", "text": "By phone", "csrf_token": token})
    assert done.status_code == 303
    assert "Recorded: I contacted the client." in client.get(page).get_data(as_text=True)
    closed = client.post(f"{page}/resolve", data={"reason": "safety_plan_reviewed", "csrf_token": token})
    assert closed.status_code == 303
    session.expire_all()
    stored = session.get(Alert, alert.id)
    assert stored is not None
    assert (stored.status, stored.resolution_reason, stored.acknowledged_by_id) == (
        "resolved",
        "safety_plan_reviewed",
        me.id,
    )
    assert [(a.action, a.detail, a.text) for a in actions_of(session, stored)] == [
        ("step", {"step": "contacted_client"}, "By phone"),
        ("resolved", {"reason": "safety_plan_reviewed"}, None),
    ]
    text = _text(client.get(page).get_data(as_text=True))
    assert "Step taken" in text
    assert "If the client answers the risk question above 0 again" in text
    assert "If the partnership drops again" not in text


def test_an_outcome_alert_has_outcome_steps_and_reasons(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = outcome_alert(session, make_episode(session, clinician=me))
    page = f"/clinician/alerts/{alert.id}"
    text = _text(client.get(page).get_data(as_text=True))
    for words in ("I reviewed the treatment plan", "Referred or stepped up", "Client improving", "Other (say why)"):
        assert words in text
    for words in RUPTURE_WORDS:
        assert words not in text, words
    token = page_csrf(client, page)
    assert client.post(f"{page}/resolve", data={"reason": "not_a_risk", "csrf_token": token}).status_code == 400
    assert client.post(f"{page}/steps", data={"step": "contacted_client", "csrf_token": token}).status_code == 400
    assert client.post(f"{page}/steps", data={"step": "referred_stepped_up", "csrf_token": token}).status_code == 303
    assert client.post(f"{page}/resolve", data={"reason": "client_improving", "csrf_token": token}).status_code == 303
    session.expire_all()
    stored = session.get(Alert, alert.id)
    assert stored is not None
    assert (stored.status, stored.resolution_reason) == ("resolved", "client_improving")


def test_an_alliance_alert_keeps_its_repair_workflow_and_refuses_other_kinds(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    page = f"/clinician/alerts/{alert.id}"
    text = _text(client.get(page).get_data(as_text=True))
    assert "Record a repair step" in text
    assert "Not a rupture" in text
    assert "I contacted the client" not in text
    token = page_csrf(client, page)
    assert client.post(f"{page}/steps", data={"step": "contacted_client", "csrf_token": token}).status_code == 400
    assert client.post(f"{page}/resolve", data={"reason": "not_a_risk", "csrf_token": token}).status_code == 400
    assert actions_of(session, alert) == []


def test_the_risk_alert_is_in_spanish_for_a_spanish_reader(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    me.language = "es"
    session.flush()
    alert = risk_alert(session, make_episode(session, clinician=me))
    text = _text(client.get(f"/clinician/alerts/{alert.id}").get_data(as_text=True))
    assert f"«{ITEM9_ES}», respuesta «Varios días»" in text
    assert "Contacté con el cliente" in text
    assert "No es un riesgo" in text
    assert ITEM9_EN not in text
    listed = _text(client.get("/clinician/alerts").get_data(as_text=True))
    assert f"«{ITEM9_ES}»" in listed


def test_the_api_lists_each_kinds_steps_and_reasons_and_validates_them(
    client: FlaskClient, session: Session, bearer: Callable[..., tuple[User, dict[str, str]]]
) -> None:
    me, auth = bearer()
    risk = risk_alert(session, make_episode(session, clinician=me))
    alliance = alliance_alert(session, me)
    body = client.get(f"/api/v1/alerts/{risk.id}", headers=auth).get_json()
    assert body["steps"] == ["contacted_client", "safety_plan_reviewed", "emergency_services"]
    assert body["resolution_reasons"] == [
        "contacted_client",
        "safety_plan_reviewed",
        "emergency_services",
        "not_a_risk",
    ]
    assert ITEM9_EN in body["summary"]
    assert client.get(f"/api/v1/alerts/{alliance.id}", headers=auth).get_json()["steps"] == []

    base = f"/api/v1/alerts/{risk.id}"
    for path, data in (
        ("resolve", {"reason": "repaired"}),
        ("resolve", {"reason": "episode_ended"}),
        ("steps", {"step": "plan_reviewed"}),
        ("steps", {"step": "made_up"}),
        ("repair-steps", {"text": "Asked how it felt"}),
    ):
        refused = client.post(f"{base}/{path}", json=data, headers=auth)
        assert refused.status_code == 400, (path, data)
        assert refused.get_json()["error"]["status"] == 400
    assert (
        client.post(f"/api/v1/alerts/{alliance.id}/steps", json={"step": "contacted_client"}, headers=auth).status_code
        == 400
    )
    assert actions_of(session, risk) == []

    step = client.post(f"{base}/steps", json={"step": "emergency_services", "text": "Ambulance called"}, headers=auth)
    assert step.status_code == 201
    assert step.get_json()["action"]["detail"] == {"step": "emergency_services"}
    resolved = client.post(f"{base}/resolve", json={"reason": "emergency_services"}, headers=auth)
    assert resolved.status_code == 200
    assert resolved.get_json()["alert"]["resolution_reason"] == "emergency_services"
    again = client.post(f"{base}/resolve", json={"reason": "not_a_risk"}, headers=auth)
    assert again.status_code == 409


def test_the_openapi_document_names_the_new_steps_route_and_reasons(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert "/alerts/{alert_id}/steps" in document["paths"]
    reasons = document["components"]["schemas"]["AlertResolve"]["properties"]["reason"]["enum"]
    assert {"contacted_client", "not_a_risk", "client_improving", "repaired"} <= set(reasons)
    assert "episode_ended" not in reasons


def test_an_escalated_alert_shows_one_escalated_line_naming_who_it_went_to(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    me = signed_in("clinician", team="Team Kinds")
    staff("supervisor", team="Team Kinds")
    on_call = staff("clinician", team="Team Night")
    on_call.on_call = True
    alert = risk_alert(session, make_episode(session, clinician=me))
    for minutes in (61, 62, 120):
        escalate_alerts(
            session,
            now=alert.opened_at + timedelta(minutes=minutes),
            ack_window=timedelta(hours=48),
            risk_window=timedelta(minutes=60),
            base_url="http://rapport.test",
        )
    text = _text(client.get(f"/clinician/alerts/{alert.id}").get_data(as_text=True))
    assert text.count("Not acknowledged in time") == 1
    assert "passed to the on-call list, the supervisor." in text
