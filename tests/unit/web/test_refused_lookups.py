"""A staff member who asks for a record outside their caseload gets 404, and the refusal is audited (pages and API)."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.alerts.models import Alert
from services.audit.models import AuditEvent
from tests.factories import make_client, make_episode


def _refusals(session: Session, actor: User) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "access_refused", AuditEvent.actor_id == actor.id)
            .order_by(AuditEvent.id)
        )
    )


def test_a_page_look_up_outside_the_caseload_is_audited(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    holder = staff("clinician", team="Team North")
    theirs = make_client(session)
    make_episode(session, client=theirs, clinician=holder)
    prober = signed_in("clinician", team="Team South")
    assert client.get(f"/clinician/clients/{theirs.id}").status_code == 404
    assert client.get("/clinician/clients/1999999999").status_code == 404
    first, second = _refusals(session, prober)
    assert first.subject_type == "client"
    assert first.subject_id == theirs.id
    assert first.client_id == theirs.id  # so the admin's search by client finds who probed it
    assert first.detail == {
        "route": "/clinician/clients/<int:client_id>",
        "method": "GET",
        "ids": {"client_id": str(theirs.id)},
        "via": "session",
    }
    assert second.client_id is None  # no such client: recorded, without a link to a client that does not exist
    assert second.detail["ids"] == {"client_id": "1999999999"}


def test_an_api_look_up_outside_the_caseload_is_audited(
    client: FlaskClient, staff: Callable[..., User], session: Session
) -> None:
    holder = staff("clinician", team="Team North")
    episode = make_episode(session, client=make_client(session), clinician=holder)
    alert = Alert(episode_id=episode.id, kind="alliance", summary="probe")
    session.add(alert)
    prober = staff("clinician", team="Team South")
    token = create_api_token(session, user=prober)
    session.flush()
    response = client.get(f"/api/v1/alerts/{alert.id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    (refusal,) = _refusals(session, prober)
    assert refusal.subject_type == "alert"
    assert refusal.subject_id == alert.id
    assert refusal.detail["via"] == "api"
    assert refusal.detail["route"] == "/api/v1/alerts/<int:alert_id>"


def test_what_is_served_or_never_an_id_is_not_a_refusal(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    me = signed_in("clinician")
    mine = make_client(session)
    make_episode(session, client=mine, clinician=me)
    assert client.get(f"/clinician/clients/{mine.id}").status_code == 200
    assert client.get("/clinician/no-such-page").status_code == 404
    assert _refusals(session, me) == []
