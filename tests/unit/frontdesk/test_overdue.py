"""Who has not answered: the front desk's list of clients whose measures are overdue, with a one-tap resend, and
the completion funnel against the practice's goal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.clients.models import Episode
from services.db import utcnow
from services.notifications.models import Notification
from services.practice.settings import set_setting
from services.surveys.models import Invitation
from tests.factories import make_appointment, make_client, make_episode
from tests.unit.clinician.conftest import count_queries
from tests.unit.web.conftest import csrf_from


def _history(
    session: Session, name: str, statuses: list[str], *, completed: tuple[int, ...] = (), **kw: object
) -> Episode:
    """An episode with weekly sessions (oldest first, ending yesterday), invitations completed at the given indexes."""
    client = make_client(session, last_name=name, email=f"{name.lower()}@example.test", consent_email=True)
    episode = make_episode(session, client=client, **kw)
    now = utcnow()
    count = len(statuses)
    for index, status in enumerate(statuses):
        appointment = make_appointment(
            session, episode=episode, starts_at=now - timedelta(days=1 + 7 * (count - 1 - index)), status=status
        )
        state = "completed" if index in completed else "sent"
        session.add(
            Invitation(
                episode_id=episode.id,
                appointment_id=appointment.id,
                phase="pre",
                instruments=["PHQ-9"],
                channel="email",
                status=state,
                sent_at=appointment.starts_at - timedelta(days=1),
                completed_at=appointment.starts_at if state == "completed" else None,
                expires_at=now + timedelta(days=1) if index == count - 1 else appointment.starts_at,
            )
        )
    session.flush()
    return episode


def test_the_list_shows_exactly_the_clients_with_no_answer_in_their_last_three_sessions(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    signed_in("front_desk")
    _history(session, "Overdue", ["completed", "completed", "completed"])
    _history(session, "Answered", ["completed", "completed", "completed"], completed=(1,))
    _history(session, "Newcomer", ["completed", "completed"])
    ended = _history(session, "Ended", ["completed", "completed", "completed"])
    ended.ended_on = utcnow().date()
    _history(session, "Lapsed", ["completed", "completed", "completed", "completed"], completed=(0,))
    # The cancelled session does not count: the last three held are the 4th, 3rd and the answered 1st.
    _history(session, "Cancelled", ["completed", "cancelled", "completed", "completed"], completed=(0,))
    html = client.get("/frontdesk/overdue").get_data(as_text=True)
    listed = {name for name in ("Overdue", "Answered", "Newcomer", "Ended", "Lapsed", "Cancelled") if name in html}
    assert listed == {"Overdue", "Lapsed"}
    assert "Send by email" in html  # the latest invitation is still open
    set_setting(session, "measures_overdue_sessions", 2, user_id=None)
    html = client.get("/frontdesk/overdue").get_data(as_text=True)
    assert "Newcomer" in html


def test_one_tap_resends_the_latest_link(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    signed_in("front_desk")
    episode = _history(session, "Resend", ["completed", "completed", "completed"])
    html = client.get("/frontdesk/overdue").get_data(as_text=True)
    latest = session.scalars(
        select(Invitation).where(Invitation.episode_id == episode.id).order_by(Invitation.id.desc())
    ).first()
    assert latest is not None
    assert f"/frontdesk/invitations/{latest.id}/send" in html
    response = client.post(
        f"/frontdesk/invitations/{latest.id}/send",
        data={"csrf_token": csrf_from(html), "channel": "email", "next": "/frontdesk/overdue"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/frontdesk/overdue")
    sent = session.scalars(select(Notification).where(Notification.recipient_client_id == episode.client_id)).all()
    assert len(sent) == 1


def test_the_overdue_page_costs_the_same_for_few_and_many_clients(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    signed_in("front_desk")
    counts = []
    for n in (2, 20):
        for i in range(n):
            _history(session, f"Many{n}x{i}", ["completed", "completed", "completed"])
        client.get("/frontdesk/overdue")
        with count_queries(session.get_bind().engine) as counter:
            assert client.get("/frontdesk/overdue").status_code == 200
        counts.append(counter.count)
    assert counts[0] == counts[1], counts


def test_the_funnel_compares_completion_with_the_practice_goal(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    signed_in("front_desk")
    _history(session, "Goal", ["completed", "completed", "completed", "completed"], completed=(0, 1, 2))
    html = client.get("/frontdesk/funnel").get_data(as_text=True)
    assert "The practice's goal: 70% of scheduled measures completed." in html
    # 3 of 4 = 75% by channel and by clinician; by week three weeks at 100% and one at 0%.
    assert html.count('data-goal="met"') == 5
    assert html.count('data-goal="below"') == 1
    set_setting(session, "completion_goal_percent", 80, user_id=None)
    html = client.get("/frontdesk/funnel").get_data(as_text=True)
    assert "The practice's goal: 80% of scheduled measures completed." in html
    assert html.count('data-goal="met"') == 3  # only the weeks at 100%
