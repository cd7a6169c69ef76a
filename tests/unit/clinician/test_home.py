"""The clinician's home and the supervisor's team view: open alerts first, the caseload with a status per client."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.queries import caseload_page
from tests.factories import make_appointment, make_client, make_episode
from tests.unit.alerts.series import split_total, submit_partnership, submit_phq9
from tests.unit.clinician.conftest import alliance_alert, evaluate, past_appointment, risk_alert


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_home_lists_risk_then_partnership_then_outcome_with_reason_and_age(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alliance = alliance_alert(session, me, last_name="Alliancey")
    outcome_episode = make_episode(session, clinician=me, client=make_client(session, last_name="Outcomey"))
    for week, total in enumerate([12, 18]):
        evaluate(session, submit_phq9(session, outcome_episode, total, week=week).id)
    risk = risk_alert(session, make_episode(session, clinician=me, client=make_client(session, last_name="Risky")))
    page = client.get("/clinician/").get_data(as_text=True)
    alerts_section = page[page.index('id="alerts-heading"') : page.index('id="caseload-heading"')]
    order = [alerts_section.index(f"/clinician/alerts/{a}") for a in (risk.id, alliance.id)]
    assert order == sorted(order)
    assert alerts_section.index("Alliancey") < alerts_section.index("Outcomey")
    text = _text(alerts_section)
    assert "Partnership score fell from 36 to 27; largest drop:" in text
    assert "Risk question answered above 0 on PHQ-9" in text
    assert "PHQ-9 score worsened from 12 to 18" in text
    assert "Opened" in text
    assert "ago" in text


def test_caseload_status_colours_and_last_measure(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alliance_alert(session, me, last_name="Amber")
    risk_alert(session, make_episode(session, clinician=me, client=make_client(session, last_name="Red")))
    low = make_episode(session, clinician=me, client=make_client(session, last_name="Prompt"))
    evaluate(session, submit_partnership(session, low, split_total(33), week=1).id)
    calm = make_episode(session, clinician=me, client=make_client(session, last_name="Calm"))
    evaluate(session, submit_partnership(session, calm, split_total(38), week=1).id)
    page = caseload_page(session, me)
    statuses = [(row.last_name, row.status, row.colour) for row in page.items]
    assert statuses == [
        ("Red", "risk", "red"),
        ("Amber", "alliance", "amber"),
        ("Prompt", "partnership", "prompt"),
        ("Calm", "ok", "ok"),
    ]
    html = client.get("/clinician/").get_data(as_text=True)
    rows = {
        _text(row).split(",")[0].split()[-1]: (colour, _text(row))
        for colour, row in re.findall(r'<tr class="row-(\w+)">(.*?)</tr>', html, re.S)
    }
    assert rows["Red"][0] == "red"
    assert "Risk alert 1 1 open alert" in rows["Red"][1]
    assert rows["Amber"][0] == "amber"
    assert rows["Prompt"][0] == "prompt"
    assert "Talk about the partnership" in rows["Prompt"][1]
    assert rows["Calm"][0] == "ok"
    assert "No alert" in rows["Calm"][1]
    assert "Jan 19, 2026" in rows["Calm"][1]  # the last measure's date (week 1 after 12 Jan)


def test_rate_last_session_offered_until_rated(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    appointment = past_appointment(session, episode, days_ago=0.1)
    html = client.get("/clinician/").get_data(as_text=True)
    assert f"/clinician/sessions/{appointment.id}/partnership" in html
    old = make_episode(session, clinician=me)
    past_appointment(session, old, days_ago=30)  # too long ago to prompt for
    rows = {row.episode_id: row for row in caseload_page(session, me).items}
    assert rows[episode.id].rate_appointment_id == appointment.id
    assert rows[old.id].rate_appointment_id is None


def test_empty_states_say_what_to_do(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("clinician")
    text = _text(client.get("/clinician/").get_data(as_text=True))
    assert "No open alerts." in text
    assert "You have no clients with an open episode." in text
    assert "ask the front desk" in text


def test_caseload_is_paged_with_an_htmx_fragment(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    for n in range(30):
        make_episode(session, clinician=me, client=make_client(session, last_name=f"Zed{n:02d}"))
    first = client.get("/clinician/").get_data(as_text=True)
    assert "Page 1 of 2" in first
    assert first.count("Zed") == 25
    fragment = client.get("/clinician/?page=2", headers={"HX-Request": "true", "HX-Target": "caseload"})
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="caseload">')
    assert "<html" not in html
    assert html.count("Zed") == 5
    assert "Page 2 of 2" in html


def test_clinician_sees_only_their_own_caseload_and_alerts(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    other = staff("clinician")
    theirs = alliance_alert(session, other, last_name="Notmine")
    mine = alliance_alert(session, me, last_name="Mine")
    html = client.get("/clinician/").get_data(as_text=True)
    assert "Mine" in html
    assert "Notmine" not in html
    assert f"/clinician/alerts/{theirs.id}" not in html
    assert f"/clinician/alerts/{mine.id}" in html


def test_supervisor_sees_the_team_and_not_other_teams(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    signed_in("supervisor", team="Team Lark")
    inside = staff("clinician", team="Team Lark", name="Inside Clinician")
    outside = staff("clinician", team="Team Wren")
    alert_in = alliance_alert(session, inside, last_name="Teamclient")
    alert_out = alliance_alert(session, outside, last_name="Otherteam")
    html = client.get("/supervisor/").get_data(as_text=True)
    assert f"/clinician/alerts/{alert_in.id}" in html
    assert f"/clinician/alerts/{alert_out.id}" not in html
    assert "Teamclient" in html
    assert "Otherteam" not in html
    assert "Inside Clinician" in html
    assert client.get(f"/clinician/alerts/{alert_in.id}").status_code == 200
    assert client.get(f"/clinician/alerts/{alert_out.id}").status_code == 404
    assert client.get(f"/clinician/clients/{alert_out.episode.client_id}/chart").status_code == 404
    assert client.get(f"/clinician/clients/{alert_in.episode.client_id}/chart").status_code == 200
    fragment = client.get("/supervisor/?page=1", headers={"HX-Request": "true", "HX-Target": "caseload"})
    assert "Teamclient" in fragment.get_data(as_text=True)


def test_next_appointment_and_other_roles_are_refused(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    me = staff("clinician")
    episode = make_episode(session, clinician=me)
    make_appointment(session, episode=episode, starts_at=datetime.now(UTC) + timedelta(days=2))
    assert caseload_page(session, me).items[0].next_appointment_at is not None
    signed_in("front_desk")
    for path in (
        "/clinician/",
        "/clinician/alerts",
        "/clinician/settings",
        f"/clinician/clients/{episode.client_id}/chart",
    ):
        assert client.get(path).status_code == 403, path
