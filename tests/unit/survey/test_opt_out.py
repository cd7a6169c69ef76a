"""Opting out from a survey link: a confirm page, then no more messages and no pending invitations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.audit.models import AuditEvent
from services.clients.models import Client
from services.surveys.tokens import new_token
from tests.unit.survey.conftest import invitation_row
from tests.unit.survey.helpers import POST, make_link


def test_get_asks_first_and_changes_nothing(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    response = client.get(f"{link.path}/opt-out")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Stop getting these messages?" in html
    assert f'action="{link.path}/opt-out"' in html
    assert response.headers["Cache-Control"] == "no-store"
    session.expire_all()
    assert session.get(Client, link.client.id).opted_out_at is None  # type: ignore[union-attr]
    assert invitation_row(session, link.invitation.id).status == "sent"


def test_post_records_the_opt_out_and_cancels_pending_invitations(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    other_pending = make_link(session, client=link.client, episode=link.episode, status="scheduled", instruments=POST)
    answered = make_link(session, client=link.client, episode=link.episode, status="completed", instruments=POST)
    someone_else = make_link(session)
    response = client.post(f"{link.path}/opt-out")
    assert response.status_code == 200
    assert "Messages stopped" in response.get_data(as_text=True)
    session.expire_all()
    person = session.get(Client, link.client.id)
    assert person is not None
    assert person.opted_out_at is not None
    assert invitation_row(session, link.invitation.id).status == "cancelled"
    assert invitation_row(session, other_pending.invitation.id).status == "cancelled"
    assert invitation_row(session, answered.invitation.id).status == "completed"
    assert invitation_row(session, someone_else.invitation.id).status == "sent"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "client_opted_out"))
    assert event is not None
    assert event.client_id == link.client.id
    # Once is enough: a second confirm changes nothing.
    first_time = person.opted_out_at
    assert client.post(f"{link.path}/opt-out").status_code == 200
    session.expire_all()
    assert session.get(Client, link.client.id).opted_out_at == first_time  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "expires_in"), [("completed", timedelta(days=1)), ("expired", timedelta(days=-1))])
def test_opt_out_works_from_used_and_expired_links(
    client: FlaskClient, session: Session, status: str, expires_in: timedelta
) -> None:
    link = make_link(session, status=status, expires_in=expires_in)
    assert client.get(f"{link.path}/opt-out").status_code == 200
    assert client.post(f"{link.path}/opt-out").status_code == 200
    session.expire_all()
    assert session.get(Client, link.client.id).opted_out_at is not None  # type: ignore[union-attr]
    assert invitation_row(session, link.invitation.id).status == status


def test_opt_out_from_an_unknown_link_is_404(client: FlaskClient) -> None:
    raw, _ = new_token()
    assert client.get(f"/s/{raw}/opt-out").status_code == 404
    assert client.post(f"/s/{raw}/opt-out").status_code == 404


def test_opt_out_page_in_the_clients_language(client: FlaskClient, session: Session) -> None:
    link = make_link(session, language="es")
    html = client.get(f"{link.path}/opt-out").get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "¿Dejar de recibir estos mensajes?" in html
