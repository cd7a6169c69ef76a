"""The pages that list things cost a constant number of queries: 10 clients or 100, 1 session or 100 (no N+1)."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.accounts.models import User
from tests.factories import make_client, make_episode
from tests.unit.alerts.series import split_total, submit_partnership, submit_phq9
from tests.unit.clinician.conftest import alliance_alert, count_queries, evaluate, past_appointment, risk_alert


def _caseload(session: Session, clinician: User, clients: int) -> None:
    """Clients with measures, low-partnership prompts, sessions to rate, and alerts of every kind."""
    for n in range(clients - 1):
        episode = make_episode(session, clinician=clinician, client=make_client(session, last_name=f"Q{n:03d}"))
        evaluate(session, submit_partnership(session, episode, split_total(30 + n % 10), week=1).id)
        if n % 3 == 0:
            past_appointment(session, episode, days_ago=1)
        if n % 10 == 0:
            risk_alert(session, episode)
    alliance_alert(session, clinician)


def _page_queries(client: FlaskClient, session: Session, path: str) -> tuple[int, str]:
    with count_queries(session.get_bind().engine) as counter:
        response = client.get(path)
    assert response.status_code == 200
    return counter.count, response.get_data(as_text=True)


def test_caseload_page_costs_the_same_for_10_and_100_clients(
    app: object, session: Session, staff: Callable[..., User]
) -> None:
    from tests.unit.clinician.conftest import login

    counts = {}
    for clients in (10, 100):
        clinician = staff("clinician")
        _caseload(session, clinician, clients)
        client = app.test_client()  # type: ignore[attr-defined]
        login(client, clinician.email)
        client.get("/clinician/")  # warm: the first request of a session touches the login row once
        count, html = _page_queries(client, session, "/clinician/?per_page=100")
        assert html.count('<tr class="row-') == clients
        counts[clients] = count
    assert counts[10] == counts[100], counts
    print(f"caseload page queries: {counts}")


def test_supervisor_team_page_costs_the_same_for_10_and_100_clients(
    app: object, session: Session, staff: Callable[..., User]
) -> None:
    from tests.unit.clinician.conftest import login

    counts = {}
    for clients, team in ((10, "Team Ten"), (100, "Team Hundred")):
        supervisor = staff("supervisor", team=team)
        _caseload(session, staff("clinician", team=team), clients)
        client = app.test_client()  # type: ignore[attr-defined]
        login(client, supervisor.email)
        client.get("/supervisor/")
        count, html = _page_queries(client, session, "/supervisor/?per_page=100")
        assert html.count('<tr class="row-') == clients
        counts[clients] = count
    assert counts[10] == counts[100], counts
    print(f"team page queries: {counts}")


def test_chart_page_costs_the_same_for_1_and_100_sessions(
    app: object, session: Session, staff: Callable[..., User]
) -> None:
    from tests.unit.clinician.conftest import login

    clinician = staff("clinician")
    client = app.test_client()  # type: ignore[attr-defined]
    login(client, clinician.email)
    counts = {}
    for sessions in (1, 100):
        episode = make_episode(session, clinician=clinician)
        for week in range(sessions):
            submit_partnership(session, episode, split_total(34 + week % 4), week=week)
            submit_phq9(session, episode, 14 - week % 5, week=week)
        client.get("/clinician/")
        count, html = _page_queries(client, session, f"/clinician/clients/{episode.client_id}/chart")
        assert f"{sessions} session" in html
        counts[sessions] = count
    assert counts[1] == counts[100], counts
    print(f"chart page queries: {counts}")
