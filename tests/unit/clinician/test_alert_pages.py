"""The alert page and its actions: scoped (404 outside the caseload), CSRF-protected, audited, htmx or plain POST."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert, AlertAction
from services.audit.models import AuditEvent
from tests.factories import make_episode
from tests.unit.clinician.conftest import alliance_alert, page_csrf, risk_alert

HTMX = {"HX-Request": "true", "HX-Target": "alert-panel"}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _audit(session: Session, action: str, subject_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.subject_id == subject_id))
    )


def test_alert_page_shows_what_happened_evidence_certainty_and_suggestions(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    response = client.get(f"/clinician/alerts/{alert.id}")
    assert response.status_code == 200
    text = _text(response.get_data(as_text=True))
    assert "Partnership score fell from 36 to 27" in text
    # the numbers of CLINICAL.md's B1 example, session 5
    assert "usual level (m, mean of earlier sessions) 35.75" in text
    assert "spread (s, SD with a floor of 3) 3" in text
    assert "threshold 29.75" in text
    assert "drop 9" in text
    assert "Baseline (the usual level before the alert): 35.75" in text
    assert "largest drop since last session" in text
    assert "not a validated instrument" in text
    assert "Stiles et al. 2004" in text
    assert "End each session by agreeing together" in text  # shared responsibility dropped most
    views = [e for e in _audit(session, "client_viewed", alert.episode.client_id) if e.actor_id == me.id]
    assert [e.detail["what"] for e in views] == [f"alert:{alert.id}"]


def test_design_rules_are_labelled_as_such(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    from tests.unit.alerts.series import B4_ITEMS, submit_partnership
    from tests.unit.clinician.conftest import evaluate

    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    for week, items in enumerate(B4_ITEMS):
        evaluate(session, submit_partnership(session, episode, items, week=week).id)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    text = _text(client.get(f"/clinician/alerts/{alert.id}").get_data(as_text=True))
    assert "One part of the partnership dropped : a design rule, ours rather than the research literature" in text
    assert "Agree the focus of the next session together" in text  # mutual goals


def test_actions_without_javascript_redirect_and_are_audited(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    page = f"/clinician/alerts/{alert.id}"
    token = page_csrf(client, page)
    steps = [
        ("acknowledge", {}),
        ("notes", {"text": "Talked with the team"}),
        ("repair-steps", {"suggestion": "shared_responsibility.agree_next_step", "text": ""}),
        ("repair-steps", {"suggestion": "other", "text": "Asked how last week felt"}),
        ("resolve", {"reason": "repaired", "note": ""}),
    ]
    for path, data in steps:
        response = client.post(f"{page}/{path}", data={**data, "csrf_token": token})
        assert response.status_code == 303, (path, response.get_data(as_text=True)[-500:])
        assert response.headers["Location"].endswith(f"{page}#alert-panel")
    session.expire_all()
    stored = session.get(Alert, alert.id)
    assert stored is not None
    assert stored.status == "resolved"
    assert stored.resolution_reason == "repaired"
    assert stored.acknowledged_by_id == me.id
    actions = list(
        session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id).order_by(AlertAction.id))
    )
    assert [a.action for a in actions] == ["acknowledged", "note", "repair_step", "repair_step", "resolved"]
    assert actions[2].detail == {"suggestion": "shared_responsibility.agree_next_step"}
    assert actions[2].component == "shared_responsibility"
    assert actions[3].text == "Asked how last week felt"
    audited = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "alert"))]
    for action in ("alert_acknowledged", "alert_note", "alert_repair_step", "alert_resolved"):
        assert action in audited
    assert all(
        e.actor_id == me.id for e in session.scalars(select(AuditEvent).where(AuditEvent.subject_id == alert.id))
    )
    followed = client.get(page).get_data(as_text=True)
    assert "Resolved: Repaired." in followed  # the flash after the redirect
    assert "Talked with the team" in followed
    assert "Asked how last week felt" in followed


def test_acknowledging_twice_is_harmless(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    page = f"/clinician/alerts/{alert.id}"
    token = page_csrf(client, page)
    first = client.post(f"{page}/acknowledge", data={"csrf_token": token}, headers=HTMX)
    second = client.post(f"{page}/acknowledge", data={"csrf_token": token}, headers=HTMX)
    assert first.status_code == second.status_code == 200
    assert "Acknowledged." in first.get_data(as_text=True)
    assert "already acknowledged" in second.get_data(as_text=True)
    actions = list(session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id)))
    assert [a.action for a in actions] == ["acknowledged"]
    assert len(_audit(session, "alert_acknowledged", alert.id)) == 1


def test_htmx_swaps_the_panel_in_place(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    page = f"/clinician/alerts/{alert.id}"
    token = page_csrf(client, page)
    response = client.post(f"{page}/notes", data={"text": "Seen in supervision", "csrf_token": token}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="alert-panel"')
    assert "<html" not in html
    assert "Note added." in html
    assert "Seen in supervision" in html
    # a problem is shown inside the panel (htmx swaps 2xx answers only) and nothing is written
    empty = client.post(f"{page}/notes", data={"text": "  ", "csrf_token": token}, headers=HTMX)
    assert empty.status_code == 200
    assert "Please write a few words." in empty.get_data(as_text=True)
    assert len(list(session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id)))) == 1


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("resolve", {"reason": "other", "note": ""}, "Please write a few words."),
        ("resolve", {"reason": "because"}, "Choose one of the reasons shown for resolving the alert."),
        ("repair-steps", {"suggestion": "other", "text": ""}, "Please write a few words."),
        ("repair-steps", {"suggestion": "rapport.made_up", "text": ""}, "Choose one of the suggestions shown"),
        ("notes", {"text": "x" * 2001}, "Please keep it under 2000 characters."),
    ],
)
def test_bad_input_without_javascript_is_a_400_page_and_writes_nothing(
    client: FlaskClient,
    session: Session,
    signed_in: Callable[..., User],
    path: str,
    data: dict[str, str],
    message: str,
) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    page = f"/clinician/alerts/{alert.id}"
    response = client.post(f"{page}/{path}", data={**data, "csrf_token": page_csrf(client, page)})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert list(session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id))) == []
    session.expire_all()
    stored = session.get(Alert, alert.id)
    assert stored is not None
    assert stored.status == "open"


def test_actions_need_the_csrf_token(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    response = client.post(f"/clinician/alerts/{alert.id}/acknowledge", data={})
    assert response.status_code == 400
    assert list(session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id))) == []


def test_clinician_a_cannot_see_acknowledge_or_resolve_clinician_b_alerts(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    signed_in("clinician", team="Team Alpha")
    b = staff("clinician", team="Team Beta")
    theirs = alliance_alert(session, b)
    theirs_risk = risk_alert(session, make_episode(session, clinician=b))
    token = page_csrf(client, "/clinician/settings")
    for alert in (theirs, theirs_risk):
        page = f"/clinician/alerts/{alert.id}"
        assert client.get(page).status_code == 404
        for path, data in (
            ("acknowledge", {}),
            ("notes", {"text": "x"}),
            ("repair-steps", {"text": "x"}),
            ("resolve", {"reason": "not_a_rupture"}),
        ):
            response = client.post(f"{page}/{path}", data={**data, "csrf_token": token})
            assert response.status_code == 404, path
            htmx = client.post(f"{page}/{path}", data={**data, "csrf_token": token}, headers=HTMX)
            assert htmx.status_code == 404, path
        assert client.get(f"/clinician/clients/{alert.episode.client_id}/chart").status_code == 404
    assert client.get("/clinician/alerts/999999").status_code == 404
    session.expire_all()
    assert session.get(Alert, theirs.id).status == "open"  # type: ignore[union-attr]
    assert list(session.scalars(select(AlertAction).where(AlertAction.alert_id.in_([theirs.id, theirs_risk.id])))) == []
    alert_events = list(session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "alert")))
    # Nothing was done to the alerts; each refused look-up is itself on the trail (web/access.py).
    assert {event.action for event in alert_events} == {"access_refused"}


def test_resolved_alert_refuses_more_actions(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    page = f"/clinician/alerts/{alert.id}"
    token = page_csrf(client, page)
    client.post(f"{page}/resolve", data={"reason": "not_a_rupture", "csrf_token": token})
    again = client.post(f"{page}/resolve", data={"reason": "repaired", "csrf_token": token})
    assert again.status_code == 400
    assert "already resolved" in again.get_data(as_text=True)
    html = client.get(page).get_data(as_text=True)
    assert "This alert is closed." in html
    assert f"{page}/acknowledge" not in html


def test_alert_list_filters_and_pages(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    alliance = alliance_alert(session, me)
    risk = risk_alert(session, make_episode(session, clinician=me))
    page = client.get("/clinician/alerts").get_data(as_text=True)
    assert page.index(f"/clinician/alerts/{risk.id}") < page.index(f"/clinician/alerts/{alliance.id}")
    only_risk = client.get("/clinician/alerts?kind=risk").get_data(as_text=True)
    assert f"/clinician/alerts/{alliance.id}" not in only_risk
    resolved = client.get("/clinician/alerts?status=resolved").get_data(as_text=True)
    assert "No alerts match." in resolved
    fragment = client.get("/clinician/alerts?status=all", headers={"HX-Request": "true", "HX-Target": "alert-list"})
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="alert-list">')
    assert client.get("/clinician/alerts?status=nonsense&kind=nonsense&page=-3").status_code == 200
