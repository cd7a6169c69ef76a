"""Client pages: caseload scoping (404 outside it), auditing every record view, front desk never sees scores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.audit.models import AuditEvent
from services.clients.models import Client, Episode
from services.db import utcnow
from services.surveys.models import Administration
from tests.factories import make_appointment, make_client, make_episode


def add_measure(session: Session, episode: Episode, *, total: float, when: datetime) -> Administration:
    """A completed client administration on an episode."""
    row = Administration(
        episode_id=episode.id,
        instrument_code="PHQ-9",
        instrument_version="1",
        total=total,
        completed_at=when,
        answers={},
        scores={},
    )
    session.add(row)
    session.flush()
    return row


def audit_views(session: Session, client_id: int) -> list[AuditEvent]:
    """client_viewed events for a client."""
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == "client_viewed", AuditEvent.client_id == client_id)
        )
    )


def test_clinician_sees_own_client_and_the_view_is_audited(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    add_measure(session, episode, total=17, when=datetime(2026, 2, 3, 9, tzinfo=UTC))
    response = client.get(f"/clinician/clients/{episode.client_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "PHQ-9" in page
    assert ">17<" in page
    events = audit_views(session, episode.client_id)
    assert [(e.actor_id, e.detail["what"]) for e in events] == [(me.id, "clinician_record")]


def test_clinician_sees_only_their_own_episodes_of_a_shared_client(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    me = signed_in("clinician")
    other = staff("clinician", name="Other Therapist")
    mine = make_episode(session, clinician=me)
    theirs = make_episode(session, clinician=other, client=mine.client, goals=["Private goal of theirs"])
    add_measure(session, theirs, total=31, when=datetime(2026, 2, 3, 9, tzinfo=UTC))
    page = client.get(f"/clinician/clients/{mine.client_id}").get_data(as_text=True)
    assert "Sleep through the night" in page
    assert "Other Therapist" not in page
    assert "Private goal of theirs" not in page
    assert ">31<" not in page


def test_clinician_cannot_see_another_clinicians_client(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    signed_in("clinician")
    theirs = make_episode(session, clinician=staff("clinician"))
    response = client.get(f"/clinician/clients/{theirs.client_id}")
    assert response.status_code == 404
    assert theirs.client.last_name not in response.get_data(as_text=True)
    assert client.get("/clinician/clients/999999").status_code == 404  # same answer as a missing record
    assert audit_views(session, theirs.client_id) == []
    home = client.get("/clinician/").get_data(as_text=True)
    assert theirs.client.last_name not in home


def test_clinician_caseload_shows_open_episodes_with_last_measure_and_alerts(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    me = signed_in("clinician")
    quiet = make_episode(session, clinician=me, client=make_client(session, last_name="Quietson"))
    alerted = make_episode(session, clinician=me, client=make_client(session, last_name="Alertson"))
    ended = make_episode(session, clinician=me, client=make_client(session, last_name="Endedson"))
    ended.ended_on = ended.started_on + timedelta(days=60)
    add_measure(session, quiet, total=9, when=datetime(2026, 3, 2, 12, tzinfo=UTC))
    session.add(Alert(episode_id=alerted.id, kind="alliance", status="open"))
    make_appointment(session, episode=quiet, starts_at=utcnow() + timedelta(days=2))
    session.flush()
    page = client.get("/clinician/").get_data(as_text=True)
    assert "Endedson" not in page
    assert page.index("Alertson") < page.index("Quietson")  # open alerts first
    assert "2 Mar 2026" in page or "Mar 2, 2026" in page
    assert "badge-alert" in page


def test_clinician_with_no_caseload_gets_an_empty_state(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("clinician")
    page = client.get("/clinician/").get_data(as_text=True)
    assert "You have no clients with an open episode" in page


def test_supervisor_sees_their_team_only(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    signed_in("supervisor", team="Team East")
    teammate = staff("clinician", team="Team East", name="Teammate Clin")
    outsider = staff("clinician", team="Team West")
    ours = make_episode(session, clinician=teammate, client=make_client(session, last_name="Ourclient"))
    theirs = make_episode(session, clinician=outsider, client=make_client(session, last_name="Theirclient"))
    home = client.get("/supervisor/").get_data(as_text=True)
    assert "Team East" in home
    assert "Teammate Clin" in home
    assert "Ourclient" in home
    assert "Theirclient" not in home
    assert client.get(f"/supervisor/clients/{ours.client_id}").status_code == 200
    assert client.get(f"/supervisor/clients/{theirs.client_id}").status_code == 404


def test_front_desk_roster_search_and_pages(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    for n in range(30):
        make_client(session, first_name=f"Rosa{n:02d}", last_name="Rosterton")
    special = make_client(session, first_name="Zed", last_name="Findme", code="CFIND01")
    first = client.get("/frontdesk/").get_data(as_text=True)
    assert "Showing 1\u201325 of 31 clients" in first
    assert 'rel="next"' in first
    second = client.get("/frontdesk/?page=2").get_data(as_text=True)
    assert "Showing 26\u201331 of 31 clients" in second
    by_name = client.get("/frontdesk/?q=findme").get_data(as_text=True)
    assert "Findme, Zed" in by_name
    assert "Rosterton" not in by_name
    by_code = client.get("/frontdesk/?q=cfind").get_data(as_text=True)
    assert f"/frontdesk/clients/{special.id}" in by_code
    none = client.get("/frontdesk/?q=%25").get_data(as_text=True)  # a LIKE wildcard is searched literally
    assert "No client matches" in none
    assert client.get("/frontdesk/?page=abc").status_code == 200


def test_front_desk_search_answers_htmx_with_just_the_results(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    make_client(session, last_name="Fragmentson")
    response = client.get("/frontdesk/?q=frag", headers={"HX-Request": "true", "HX-Target": "roster-results"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.lstrip().startswith('<section id="roster-results"')
    assert "Fragmentson" in page
    assert "<html" not in page
    assert "HX-Request" in response.headers["Vary"]


def test_front_desk_record_shows_episodes_and_appointments_but_never_scores(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    me = signed_in("front_desk")
    clinician = staff("clinician", name="Doctor Example")
    episode = make_episode(session, clinician=clinician)
    make_appointment(session, episode=episode, starts_at=datetime(2026, 1, 12, 10, tzinfo=UTC))
    add_measure(session, episode, total=23, when=datetime(2026, 1, 12, 9, tzinfo=UTC))
    response = client.get(f"/frontdesk/clients/{episode.client_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Doctor Example" in page
    assert "Sleep through the night" in page
    assert "12 Jan 2026" in page or "Jan 12, 2026" in page
    assert "PHQ-9" not in page
    assert ">23<" not in page
    assert "Completed measures" not in page
    events = audit_views(session, episode.client_id)
    assert [(e.actor_id, e.detail["what"]) for e in events] == [(me.id, "frontdesk_record")]


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_managers_and_admins_open_no_client_records(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, role: str
) -> None:
    signed_in(role)
    episode = make_episode(session)
    for prefix in ("frontdesk", "clinician", "supervisor"):
        assert client.get(f"/{prefix}/clients/{episode.client_id}").status_code == 403


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements run on engine."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_caseload_costs_the_same_queries_for_3_or_30_clients(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, engine: Engine
) -> None:
    me = signed_in("clinician")

    def add_clients(n: int) -> None:
        for _ in range(n):
            episode = make_episode(session, clinician=me)
            add_measure(session, episode, total=5, when=utcnow())
            session.add(Alert(episode_id=episode.id, kind="outcome", status="open"))
        session.flush()

    add_clients(3)
    with count_queries(engine) as small:
        assert client.get("/clinician/").status_code == 200
    add_clients(27)
    with count_queries(engine) as large:
        assert client.get("/clinician/").status_code == 200
    # A fixed budget; the list of today's sessions (issue 15) added one query to it.
    assert len(small) == len(large) <= 7


def test_create_client_and_open_episode(session: Session, staff: Callable[..., User]) -> None:
    from services.clients.operations import ClientError, create_client, open_episode

    created = create_client(
        session, first_name="  Ana ", last_name="Example", email="ANA@example.test", consent_email=True
    )
    assert created.code.startswith("C")
    assert len(created.code) == 8
    assert (created.first_name, created.email) == ("Ana", "ana@example.test")
    with pytest.raises(ClientError, match="phone"):
        create_client(session, first_name="A", last_name="B", consent_sms=True)
    clinician = staff("clinician")
    episode = open_episode(
        session,
        client_id=created.id,
        clinician_id=clinician.id,
        started_on=datetime(2026, 1, 5).date(),
        goals=["Sleep"],
    )
    assert session.get(Episode, episode.id) is not None
    with pytest.raises(ClientError, match="already has an open episode"):
        open_episode(session, client_id=created.id, clinician_id=clinician.id, started_on=episode.started_on)
    with pytest.raises(ClientError, match="clinician"):
        open_episode(session, client_id=created.id, clinician_id=staff("front_desk").id, started_on=episode.started_on)
    with pytest.raises(ClientError, match="at most 3"):
        open_episode(
            session,
            client_id=created.id,
            clinician_id=staff("clinician").id,
            started_on=episode.started_on,
            goals=["a", "b", "c", "d"],
        )
    assert session.scalar(select(Client).where(Client.code == created.code)) is created
