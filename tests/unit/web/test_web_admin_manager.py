"""Admin pages (users, operations, the test email) and the manager's page."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import Team, User
from services.audit.models import AuditEvent
from services.notifications.models import Notification
from services.reporting.models import Report
from tests.factories import make_episode
from tests.unit.web.conftest import post_form


def test_admin_lists_users(client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User]) -> None:
    signed_in("admin")
    other = staff("supervisor", team="Team Blue", name="Sup Ervisor")
    page = client.get("/admin/").get_data(as_text=True)
    assert "Sup Ervisor" in page
    assert other.email in page
    assert "Team Blue" in page
    assert "Supervisor" in page


def test_admin_creates_a_user_with_role_and_team(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    data = {
        "name": "Cli Nician",
        "email": "Cli.Nician@Example.test",
        "role": "clinician",
        "team": "Team Green",
        "password": "long enough secret",
        "confirm": "long enough secret",
    }
    response = post_form(client, "/admin/users/new", data, page="/admin/users/new")
    assert response.status_code == 302
    session.expire_all()
    created = session.scalar(select(User).where(User.email == "cli.nician@example.test"))
    assert created is not None
    assert created.role == "clinician"
    team = session.get(Team, created.team_id)
    assert team is not None
    assert team.name == "Team Green"
    assert session.scalar(
        select(AuditEvent).where(AuditEvent.action == "user_created", AuditEvent.actor_id == admin.id)
    )
    again = post_form(client, "/admin/users/new", data, page="/admin/users/new")
    assert again.status_code == 400
    assert "already exists" in again.get_data(as_text=True)


def test_create_user_form_shows_errors_next_to_fields(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("admin")
    data = {"name": "", "email": "x@example.test", "role": "clinician", "password": "short", "confirm": "other"}
    response = post_form(client, "/admin/users/new", data, page="/admin/users/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'aria-invalid="true"' in page
    assert 'aria-describedby="password-hint password-error"' in page
    assert 'id="confirm-error"' in page
    assert 'value="short"' not in page  # passwords are never echoed back


def test_a_common_password_is_refused_in_the_admins_language(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    data = {"name": "Ana Pérez", "email": "ana@example.test", "role": "clinician", "password": "Sunshine2024!"}
    data["confirm"] = data["password"]
    response = post_form(client, "/admin/users/new", data, page="/admin/users/new")
    assert response.status_code == 400
    assert "too common" in response.get_data(as_text=True)
    assert "At least 12 characters, and not a common password" in response.get_data(as_text=True)
    admin.language_choice = "es"
    session.flush()
    spanish = post_form(client, "/admin/users/new", data, page="/admin/users/new")
    assert spanish.status_code == 400
    text = spanish.get_data(as_text=True)
    assert "demasiado habitual" in text
    assert "y que no sea una contraseña habitual" in text
    session.expire_all()
    assert session.scalar(select(User).where(User.email == "ana@example.test")) is None


def test_operations_page_counts_pending_work(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("admin")
    session.add(Notification(channel="email", template="test_message", to_address="a@example.test"))
    session.add(Notification(channel="email", template="test_message", to_address="b@example.test", status="failed"))
    session.flush()
    page = client.get("/admin/operations").get_data(as_text=True)
    assert "Messages waiting to be sent" in page
    assert '<p class="stat">1</p><p>Messages waiting to be sent' in page
    assert '<p class="stat">1</p><p>Messages that failed for good' in page
    assert "No worker or scheduler has reported in yet" in page


def test_test_email_button_writes_a_pending_notification(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    response = post_form(client, "/admin/operations/test-email", page="/admin/operations")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/operations"
    session.expire_all()
    rows = session.scalars(select(Notification).where(Notification.recipient_user_id == admin.id)).all()
    assert [(n.template, n.channel, n.to_address, n.status) for n in rows] == [
        ("test_message", "email", admin.email, "pending")
    ]
    page = client.get("/admin/operations").get_data(as_text=True)
    assert "A test email to" in page
    assert "is queued" in page


def test_manager_sees_counts_and_an_empty_reports_state(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("manager")
    make_episode(session)
    page = client.get("/manager/").get_data(as_text=True)
    assert "No reports yet." in page
    assert '<p class="stat">1</p><p>Open episodes' in page
    assert "Testa" not in page  # no client names on the manager's page


def test_manager_lists_reports(client: FlaskClient, signed_in: Callable[..., User], session: Session) -> None:
    signed_in("manager")
    session.add(Report(scope="practice", period="2026-01", status="done"))
    session.add(Report(scope="practice", period="2026-02", status="pending"))
    session.flush()
    page = client.get("/manager/").get_data(as_text=True)
    assert "No reports yet." not in page
    assert page.index("2026-02") < page.index("2026-01")
    assert "Ready" in page
    assert "Waiting" in page
