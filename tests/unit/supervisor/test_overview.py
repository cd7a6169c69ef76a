"""The supervisor's overview: one count of open alerts everywhere, a compact team table, filtered and paged alerts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.operations import acknowledge_alert, resolve_alert
from services.alerts.queries import list_alerts_page, list_open_alerts_for, open_alert_counts, team_overview
from tests.factories import make_client, make_episode
from tests.unit.clinician.conftest import alliance_alert, count_queries, login, risk_alert
from tests.unit.supervisor.conftest import quick_alert


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _member_rows(html: str) -> dict[int, str]:
    """The team table's rows by user id, as text."""
    return {int(uid): _text(row) for uid, row in re.findall(r'<tr data-member="(\d+)">(.*?)</tr>', html, re.S)}


def _team_alerts(html: str) -> str:
    start = html.index('<div id="team-alerts">')
    return html[start : html.index('id="caseload-heading"', start)]


def _alert_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/clinician/alerts/(\d+)"', _team_alerts(html))]


def _signed_in_client(app: Flask, user: User) -> FlaskClient:
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    return browser


def test_team_table_count_equals_the_clinicians_own_alert_list(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    supervisor = staff("supervisor", team="Team Heron")
    clinician = staff("clinician", team="Team Heron", name="Ada Heron")
    colleague = staff("clinician", team="Team Heron", name="Ben Heron")
    risky = risk_alert(session, make_episode(session, clinician=clinician))
    acknowledged = alliance_alert(session, clinician)
    acknowledge_alert(session, acknowledged, actor=clinician)
    resolved = risk_alert(session, make_episode(session, clinician=clinician))
    resolve_alert(session, resolved, actor=clinician, reason="contacted_client", note="Seen in session")
    ended = make_episode(session, clinician=clinician)
    on_ended = quick_alert(session, ended, "outcome")
    ended.ended_on = date.today()  # its alert stays open until someone resolves it, and is counted until then
    quick_alert(session, make_episode(session, clinician=colleague), "outcome")
    session.flush()
    expected = {risky.id, acknowledged.id, on_ended.id}

    as_supervisor = _signed_in_client(app, supervisor)
    html = as_supervisor.get("/supervisor/").get_data(as_text=True)
    rows = _member_rows(html)
    # Three open episodes (the ended one is not), three open alerts (the resolved one is not), one of them risk.
    assert rows[clinician.id].startswith("Ada Heron 3 3 1 risk")
    assert rows[colleague.id].startswith("Ben Heron 1 1")
    assert f'href="/supervisor/?clinician={clinician.id}#alerts-heading"' in html
    filtered = as_supervisor.get(f"/supervisor/?clinician={clinician.id}").get_data(as_text=True)
    assert set(_alert_links(filtered)) == expected
    assert "3 open alerts match." in _text(_team_alerts(filtered))

    as_clinician = _signed_in_client(app, clinician)
    own_list = as_clinician.get("/clinician/alerts").get_data(as_text=True)
    assert "3 alerts." in _text(own_list)
    assert {int(n) for n in re.findall(r'href="/clinician/alerts/(\d+)"', own_list)} == expected
    home = as_clinician.get("/clinician/").get_data(as_text=True)
    assert re.search(r'id="alerts-heading">Open alerts <strong class="badge badge-alert">3</strong>', home)

    assert open_alert_counts(session, supervisor).for_clinician(clinician.id) == 3
    assert open_alert_counts(session, clinician).total == 3
    assert len(list_open_alerts_for(session, clinician)) == 3
    assert list_alerts_page(session, clinician, active_only=True).total == 3
    assert open_alert_counts(session, supervisor).by_kind == {"risk": 1, "alliance": 1, "outcome": 2}


def test_open_means_open_or_acknowledged_never_resolved(session: Session, staff: Callable[..., User]) -> None:
    clinician = staff("clinician", team="Team Tern")
    for status in ("open", "acknowledged", "resolved"):
        quick_alert(session, make_episode(session, clinician=clinician), "outcome", status=status)
    counts = open_alert_counts(session, clinician)
    assert counts.total == 2
    assert counts.by_clinician == {clinician.id: 2}
    assert counts.for_clinician(clinician.id, "risk") == 0


def test_counts_stay_inside_the_viewers_scope(session: Session, staff: Callable[..., User]) -> None:
    supervisor = staff("supervisor", team="Team Gannet")
    inside = staff("clinician", team="Team Gannet")
    outside = staff("clinician", team="Team Skua")
    quick_alert(session, make_episode(session, clinician=inside), "risk")
    quick_alert(session, make_episode(session, clinician=outside), "risk")
    assert open_alert_counts(session, supervisor).by_clinician == {inside.id: 1}
    assert open_alert_counts(session, outside).by_clinician == {outside.id: 1}
    assert open_alert_counts(session, staff("manager")).total == 0
    assert open_alert_counts(session, supervisor, clinician_ids=[outside.id]).total == 0


def test_supervisor_is_listed_only_with_a_caseload_of_their_own(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    supervisor = staff("supervisor", team="Team Puffin", name="Sue Pervisor")
    clinician = staff("clinician", team="Team Puffin", name="Cal Puffin")
    browser = _signed_in_client(app, supervisor)
    html = browser.get("/supervisor/").get_data(as_text=True)
    assert set(_member_rows(html)) == {clinician.id}  # a clinician with nothing open is still listed
    assert "Sue Pervisor" not in _text(html[html.index('id="members-heading"') : html.index('id="alerts-heading"')])
    assert [row.user_id for row in team_overview(session, supervisor)] == [clinician.id]

    make_episode(session, clinician=supervisor, client=make_client(session, last_name="Ownclient"))
    html = browser.get("/supervisor/").get_data(as_text=True)
    rows = _member_rows(html)
    assert set(rows) == {clinician.id, supervisor.id}
    assert rows[supervisor.id].startswith("Sue Pervisor Supervisor 1 0")
    assert "Ownclient" in html


def test_inactive_clinician_with_open_alerts_stays_in_the_table(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    supervisor = staff("supervisor", team="Team Murre")
    leaver = staff("clinician", team="Team Murre", name="Lee Leaver")
    quick_alert(session, make_episode(session, clinician=leaver), "alliance")
    leaver.active = False
    session.flush()
    html = _signed_in_client(app, supervisor).get("/supervisor/").get_data(as_text=True)
    assert _member_rows(html)[leaver.id].startswith("Lee Leaver Inactive 1 1")
    assert sum(row.open_alerts for row in team_overview(session, supervisor)) == 1
    assert "1 open alert." in _text(_team_alerts(html))


def test_each_filter_narrows_and_they_combine(app: Flask, session: Session, staff: Callable[..., User]) -> None:
    supervisor = staff("supervisor", team="Team Auk")
    ada = staff("clinician", team="Team Auk")
    ben = staff("clinician", team="Team Auk")
    alerts = {
        "ada_risk_new": quick_alert(session, make_episode(session, clinician=ada), "risk", days_ago=1),
        "ada_outcome_old": quick_alert(session, make_episode(session, clinician=ada), "outcome", days_ago=40),
        "ben_risk_mid": quick_alert(session, make_episode(session, clinician=ben), "risk", days_ago=10),
        "ben_alliance_new": quick_alert(session, make_episode(session, clinician=ben), "alliance", days_ago=2),
    }
    ids = {name: alert.id for name, alert in alerts.items()}
    browser = _signed_in_client(app, supervisor)

    def shown(query: str) -> set[str]:
        response = browser.get(f"/supervisor/?{query}")
        assert response.status_code == 200, query
        links = set(_alert_links(response.get_data(as_text=True)))
        return {name for name, alert_id in ids.items() if alert_id in links}

    assert shown("") == set(ids)
    assert shown("kind=risk") == {"ada_risk_new", "ben_risk_mid"}
    assert shown(f"clinician={ben.id}") == {"ben_risk_mid", "ben_alliance_new"}
    assert shown("age=new") == {"ada_risk_new", "ben_alliance_new"}
    assert shown("age=7") == {"ada_outcome_old", "ben_risk_mid"}
    assert shown("age=30") == {"ada_outcome_old"}
    assert shown(f"kind=risk&clinician={ben.id}&age=7") == {"ben_risk_mid"}
    assert shown("kind=&clinician=&age=") == set(ids)  # the form's "any" values

    html = browser.get(f"/supervisor/?kind=alliance&clinician={ada.id}").get_data(as_text=True)
    text = _text(_team_alerts(html))
    assert "No open alert matches these filters." in text
    assert "The team has 4 open alerts in all." in text
    assert 'href="/supervisor/">Clear the filters</a>' in html
    assert f'<option value="{ada.id}" selected>' in html
    assert '<option value="alliance" selected>' in html


def test_bad_filter_values_get_a_clear_400(app: Flask, session: Session, staff: Callable[..., User]) -> None:
    supervisor = staff("supervisor", team="Team Shag")
    other_team = staff("clinician", team="Team Cormorant")
    browser = _signed_in_client(app, supervisor)
    for query, message in (
        ("kind=rupture", "Unknown kind of alert."),
        ("age=ancient", "Unknown age filter."),
        ("clinician=abc", "That clinician is not in your team."),
        (f"clinician={other_team.id}", "That clinician is not in your team."),
        ("clinician=-1", "That clinician is not in your team."),
    ):
        response = browser.get(f"/supervisor/?{query}")
        assert response.status_code == 400, query
        assert message in response.get_data(as_text=True), query
    for query in ("alerts_page=abc", "alerts_page=-3", "alerts_page=0", "page=x&per_page=y"):
        assert browser.get(f"/supervisor/?{query}").status_code == 200, query


def test_alerts_are_paged_and_the_pager_keeps_the_filters(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    supervisor = staff("supervisor", team="Team Fulmar")
    clinician = staff("clinician", team="Team Fulmar")
    risk_ids = [
        quick_alert(session, make_episode(session, clinician=clinician), "risk", days_ago=n).id for n in range(12)
    ]
    quick_alert(session, make_episode(session, clinician=clinician), "outcome")
    browser = _signed_in_client(app, supervisor)

    first = browser.get("/supervisor/").get_data(as_text=True)
    assert len(_alert_links(first)) == 10
    assert "13 open alerts." in _text(_team_alerts(first))
    assert "Page 1 of 2" in _team_alerts(first)

    page_one = browser.get("/supervisor/?kind=risk").get_data(as_text=True)
    assert _alert_links(page_one) == risk_ids[:10]  # newest first
    next_link = re.search(r'<a href="([^"]+)" rel="next"', _team_alerts(page_one))
    assert next_link is not None
    href = next_link.group(1).replace("&amp;", "&")
    assert "kind=risk" in href
    assert "alerts_page=2" in href
    page_two = browser.get(href).get_data(as_text=True)
    assert _alert_links(page_two) == risk_ids[10:]
    assert "Page 2 of 2" in _team_alerts(page_two)

    past = browser.get("/supervisor/?kind=risk&alerts_page=9").get_data(as_text=True)
    assert "This page is past the end of the list." in _text(_team_alerts(past))


def test_alert_list_and_caseload_page_independently(app: Flask, session: Session, staff: Callable[..., User]) -> None:
    supervisor = staff("supervisor", team="Team Petrel")
    clinician = staff("clinician", team="Team Petrel")
    for n in range(12):
        episode = make_episode(session, clinician=clinician, client=make_client(session, last_name=f"Pet{n:02d}"))
        quick_alert(session, episode, "outcome", days_ago=n)
    browser = _signed_in_client(app, supervisor)
    html = browser.get("/supervisor/?per_page=11&page=2&kind=outcome").get_data(as_text=True)
    assert len(_alert_links(html)) == 10  # the caseload's page is not the alert list's page
    alert_next = re.search(r'<a href="([^"]+)" rel="next"', _team_alerts(html))
    assert alert_next is not None
    assert {"page=2", "per_page=11", "kind=outcome", "alerts_page=2"} <= set(
        alert_next.group(1).replace("&amp;", "&").split("?")[1].split("&")
    )
    caseload_section = html[html.index('<div id="caseload">') :]
    caseload_prev = re.search(r'<a href="([^"]+)" rel="prev"', caseload_section)
    assert caseload_prev is not None
    assert "kind=outcome" in caseload_prev.group(1)


def test_htmx_filter_swaps_only_the_alert_list(app: Flask, session: Session, staff: Callable[..., User]) -> None:
    supervisor = staff("supervisor", team="Team Eider")
    clinician = staff("clinician", team="Team Eider")
    risk = quick_alert(session, make_episode(session, clinician=clinician), "risk")
    quick_alert(session, make_episode(session, clinician=clinician), "outcome")
    browser = _signed_in_client(app, supervisor)
    response = browser.get("/supervisor/?kind=risk", headers={"HX-Request": "true", "HX-Target": "team-alerts"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="team-alerts">')
    assert "<html" not in html
    assert re.findall(r'href="/clinician/alerts/(\d+)"', html) == [str(risk.id)]
    bad = browser.get("/supervisor/?kind=nope", headers={"HX-Request": "true", "HX-Target": "team-alerts"})
    assert bad.status_code == 400


def test_overview_queries_do_not_grow_with_clinicians_or_alerts(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    counts = {}
    for size, team in ((2, "Team Small"), (8, "Team Large")):
        supervisor = staff("supervisor", team=team)
        make_episode(session, clinician=supervisor)
        for _n in range(size):
            clinician = staff("clinician", team=team)
            for kind in ("risk", "alliance", "outcome"):
                quick_alert(session, make_episode(session, clinician=clinician), kind, days_ago=3)
        leaver = staff("clinician", team=team)
        quick_alert(session, make_episode(session, clinician=leaver), "risk")
        leaver.active = False  # listed through the extra lookup of names
        session.flush()
        browser = _signed_in_client(app, supervisor)
        browser.get("/supervisor/")
        with count_queries(session.get_bind().engine) as counter:
            response = browser.get("/supervisor/?age=new")
        assert response.status_code == 200
        assert len(_member_rows(response.get_data(as_text=True))) == size + 2
        counts[size] = counter.count
    assert counts[2] == counts[8], counts


def test_other_roles_cannot_see_the_overview(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("clinician")
    assert client.get("/supervisor/").status_code == 403
    assert client.get("/supervisor/?kind=risk").status_code == 403


def test_overview_in_spanish(app: Flask, session: Session, staff: Callable[..., User]) -> None:
    supervisor = staff("supervisor", team="Team Alca")
    supervisor.language = "es"
    clinician = staff("clinician", team="Team Alca")
    quick_alert(session, make_episode(session, clinician=clinician), "risk")
    quick_alert(session, make_episode(session, clinician=clinician), "outcome")
    session.flush()
    browser = _signed_in_client(app, supervisor)
    text = _text(browser.get("/supervisor/").get_data(as_text=True))
    for spanish in (
        "Alertas abiertas",
        "Cualquier persona del equipo",
        "Antigüedad",
        "2 alertas abiertas.",
        "1 de riesgo",
    ):
        assert spanish in text
    for english in ("Open alerts", "Anyone in the team", "Any age", "open alerts.", "1 risk"):
        assert english not in text
    empty = _text(browser.get("/supervisor/?kind=alliance").get_data(as_text=True))
    assert "Ninguna alerta abierta coincide con estos filtros." in empty
    assert "El equipo tiene 2 alertas abiertas en total." in empty
    bad = browser.get("/supervisor/?age=siempre")
    assert bad.status_code == 400
    assert "Filtro de antigüedad desconocido." in bad.get_data(as_text=True)


def test_supervisor_without_a_team_sees_a_table_only_with_a_caseload(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    supervisor = staff("supervisor", team=None)
    browser = _signed_in_client(app, supervisor)
    html = browser.get("/supervisor/").get_data(as_text=True)
    assert 'id="members-heading"' not in html
    assert "You are not in a team" in html
    make_episode(session, clinician=supervisor)
    html = browser.get("/supervisor/").get_data(as_text=True)
    assert set(_member_rows(html)) == {supervisor.id}
