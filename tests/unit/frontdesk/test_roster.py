"""The roster: each client's clinician, next appointment and last invitation's state, in a fixed number of queries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.clients.queries import list_roster
from services.db import utcnow
from services.surveys.models import Invitation
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.unit.frontdesk.conftest import Booking


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement run while the test is running."""
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def add_invitation(session: Session, booking: Booking, *, status: str, sent_hours_ago: float, phase: str) -> None:
    """A handed-out invitation of the booking's appointment."""
    sent = utcnow() - timedelta(hours=sent_hours_ago)
    session.add(
        Invitation(
            episode_id=booking.episode.id,
            appointment_id=booking.appointment.id,
            phase=phase,
            channel="email",
            status=status,
            due_at=sent,
            sent_at=sent,
            expires_at=sent + timedelta(hours=72),
        )
    )
    session.flush()


def test_roster_rows_carry_clinician_next_appointment_and_last_invitation(
    session: Session, book: Callable[..., Booking]
) -> None:
    desk = make_user(session, role="front_desk")
    clinician = make_user(session, role="clinician", name="Dr Rosterline")
    booking = book(starts_in=timedelta(days=2), clinician=clinician, last_name="Aaroster")
    # An appointment already over and a cancelled one do not count as next; the earliest scheduled future one does.
    make_appointment(session, episode=booking.episode, starts_at=utcnow() - timedelta(days=7))
    make_appointment(session, episode=booking.episode, starts_at=utcnow() + timedelta(days=1), status="cancelled")
    make_appointment(session, episode=booking.episode, starts_at=utcnow() + timedelta(days=9))
    add_invitation(session, booking, status="expired", sent_hours_ago=50, phase="pre")
    add_invitation(session, booking, status="opened", sent_hours_ago=2, phase="post")
    # An ended episode with another clinician does not hide the open one.
    old = make_user(session, role="clinician", name="Dr Formerly")
    make_episode(session, client=booking.client, clinician=old, ended_on=utcnow().date())
    bare = make_client(session, last_name="Abroster")
    rows = {row.client.id: row for row in list_roster(session, desk, search="roster").items}
    row = rows[booking.client.id]
    assert row.clinician_name == "Dr Rosterline"
    assert row.next_appointment_at == booking.appointment.starts_at
    assert (row.invitation_status, row.invitation_sent_at is not None) == ("opened", True)
    empty = rows[bare.id]
    assert (empty.clinician_name, empty.next_appointment_at, empty.invitation_status) == (None, None, None)
    assert list_roster(session, make_user(session, role="manager")).total == 0  # role scope holds


def test_roster_page_shows_the_columns_in_two_queries_whatever_the_page_size(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    book: Callable[..., Booking],
    statements: list[str],
) -> None:
    signed_in("front_desk")
    clinician = make_user(session, role="clinician", name="Dr Manyrows")
    for i in range(30):
        booking = book(starts_in=timedelta(days=1, hours=i), clinician=clinician, last_name=f"Zq{i:02d}roster")
        add_invitation(session, booking, status="completed" if i % 2 else "expired", sent_hours_ago=30, phase="pre")
    html = client.get("/frontdesk/?q=roster").get_data(as_text=True)
    assert "Dr Manyrows" in html
    assert "Next appointment" in html
    assert "Last survey invitation" in html
    assert "Completed" in html
    assert "Expired" in html
    assert re.search(r"Page 1 of 2", html)
    statements.clear()
    client.get("/frontdesk/?q=Zq0")  # ten clients
    few = [s for s in statements if "clients" in s]
    statements.clear()
    client.get("/frontdesk/?q=roster")  # a full page of 25
    many = [s for s in statements if "clients" in s]
    assert len(many) == len(few)
    desk = make_user(session, role="front_desk")
    statements.clear()
    assert len(list_roster(session, desk, search="roster").items) == 25
    assert len(statements) == 2  # the count and the page
