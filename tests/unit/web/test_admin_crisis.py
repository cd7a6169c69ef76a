"""The crisis information page: admins and managers only, one language at a time, numbers validated, audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.practice.crisis import KEY, crisis_entry
from services.practice.settings import current_version
from tests.unit.survey.helpers import answers_for, make_link, post_step
from tests.unit.web.conftest import post_form

PAGE = "/admin/crisis/en"


def _form(**overrides: str) -> dict[str, Any]:
    data = {
        "region": "GB",
        "heading": "If you need help now",
        "body": "Call the crisis line.\nOr the emergency number.",
        "phones-0-label": "Crisis line (demo)",
        "phones-0-number": "+1 202 555 0143",
        "phones-1-label": "Emergency",
        "phones-1-number": "999",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_admins_and_managers_edit_it_and_clients_see_it(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, role: str
) -> None:
    user = signed_in(role)
    page = client.get("/admin/crisis", follow_redirects=True)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Crisis information" in html
    assert 'href="/admin/crisis"' in html  # in the navigation
    assert "No phone numbers yet" in html
    response = post_form(client, PAGE, _form(), page=PAGE)
    assert response.status_code == 303
    session.expire_all()
    entry = crisis_entry(session, "en")
    assert entry.phones == (("Crisis line (demo)", "+12025550143"), ("Emergency", "999"))
    assert crisis_entry(session, "es").phones == ()  # one language at a time
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "practice_setting_changed"))
    assert event is not None
    assert event.actor_id == user.id
    assert event.detail["key"] == KEY
    again = client.get(PAGE).get_data(as_text=True)
    assert "Crisis information saved for English." in again
    assert 'href="tel:+12025550143"' in again  # the preview
    assert 'value="+1 202-555-0143"' in again  # the number as people write it
    link = make_link(session)
    first = client.get(link.path).get_data(as_text=True)
    step = post_step(client, link, first, answers_for("PHQ-9", phq9_9="1")).get_data(as_text=True)
    assert 'href="tel:+12025550143"' in step
    assert 'href="tel:999"' in step
    assert "Or the emergency number." in step


@pytest.mark.parametrize("role", ["front_desk", "clinician", "supervisor"])
def test_other_roles_are_refused(client: FlaskClient, signed_in: Callable[..., User], role: str) -> None:
    signed_in(role)
    assert client.get(PAGE).status_code == 403
    assert client.get("/admin/crisis").status_code == 403
    assert client.post(PAGE, data=_form()).status_code in {400, 403}


def test_signed_out_goes_to_the_login_page(client: FlaskClient, session: Session) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert client.post(PAGE, data=_form()).status_code in {302, 400}
    assert current_version(session, KEY) is None


@pytest.mark.parametrize(
    ("overrides", "message", "field"),
    [
        ({"phones-0-number": "call us"}, "“call us” is not a phone number we recognise", "phones-0-number"),
        ({"phones-0-number": "020 7946 0123", "region": "US"}, "is not a phone number we recognise", "phones-0-number"),
        ({"phones-1-label": ""}, "Say what this number is", "phones-1-label"),
        ({"phones-1-number": ""}, "Enter the number, or clear its description.", "phones-1-number"),
        ({"heading": ""}, "This field is required.", "heading"),
        ({"body": "x" * 1001}, "Field cannot be longer than 1000 characters.", "body"),
        ({"region": "XX"}, "Not a valid choice", "region"),
    ],
)
def test_bad_input_is_named_and_nothing_is_stored(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    overrides: dict[str, str],
    message: str,
    field: str,
) -> None:
    signed_in("admin")
    response = post_form(client, PAGE, _form(**overrides), page=PAGE)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert f'href="#{field}"' in html  # the summary links to the field
    assert f'id="{field}-error"' in html
    assert current_version(session, KEY) is None


def test_a_bad_number_and_a_missing_heading_are_named_together(
    client: FlaskClient, signed_in: Callable[..., User]
) -> None:
    signed_in("admin")
    html = post_form(client, PAGE, _form(heading="", **{"phones-0-number": "nope"}), page=PAGE).get_data(as_text=True)
    assert 'href="#heading"' in html
    assert 'href="#phones-0-number"' in html


def test_the_spanish_page_is_in_spanish_and_unknown_languages_are_404(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    admin.language = "es"
    session.commit()
    assert client.get("/admin/crisis/fr").status_code == 404
    html = client.get("/admin/crisis/es").get_data(as_text=True)
    assert "Información de crisis" in html
    assert "Si necesita ayuda ahora" in html  # the Spanish default the clients see
    form = _form(heading="Si necesita ayuda", body="Llame a la línea de crisis.")
    assert post_form(client, "/admin/crisis/es", form, page="/admin/crisis/es").status_code == 303
    session.expire_all()
    assert crisis_entry(session, "es").heading == "Si necesita ayuda"
    assert crisis_entry(session, "en").heading == "If you need help now"


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("admin")
    assert client.post(PAGE, data=_form()).status_code == 400
