"""The practice settings page: admins and managers change the numeric settings with a reason; others may not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.practice.settings import DEFAULTS, get_number, setting_history
from tests.unit.web.conftest import login, post_form

PAGE = "/admin/practice"


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_admins_and_managers_change_a_setting_with_a_reason(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, role: str
) -> None:
    user = signed_in(role, name="Ada Settingsperson")
    html = client.get(PAGE).get_data(as_text=True)
    assert f'href="{PAGE}"' in html  # in the navigation
    assert "How long a handed-out survey link stays open" in html
    assert f"{DEFAULTS['survey_link_hours']} hours" in html
    assert "the default" in html

    changed = post_form(
        client, f"{PAGE}/survey_link_hours", {"value": "48", "reason": "Clients answer at the weekend"}, page=PAGE
    )
    assert changed.status_code == 303
    session.expire_all()
    assert get_number(session, "survey_link_hours") == 48
    (version,) = setting_history(session, "survey_link_hours")
    assert (version.changed_by_id, version.reason) == (user.id, "Clients answer at the weekend")
    audited = session.scalar(select(AuditEvent).where(AuditEvent.action == "practice_setting_changed"))
    assert audited is not None
    assert audited.actor_id == user.id
    after = client.get(PAGE).get_data(as_text=True)
    assert "48 hours" in after
    assert "changed by Ada Settingsperson" in after
    assert "Clients answer at the weekend" in after


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("0", "too short", "Give a whole number from 1 to 336."),
        ("337", "too long", "Give a whole number from 1 to 336."),
        ("2.5", "half", "Give a whole number from 1 to 336."),
        ("abc", "words", "Give a whole number from 1 to 336."),
        ("12", "", "Say in a few words why it changes"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, value: str, reason: str, message: str
) -> None:
    signed_in("admin")
    response = post_form(client, f"{PAGE}/survey_link_hours", {"value": value, "reason": reason}, page=PAGE)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert setting_history(session, "survey_link_hours") == []


def test_other_roles_and_unknown_settings_are_refused(
    app: Flask, client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    signed_in("admin")
    assert post_form(client, f"{PAGE}/crisis_info", {"value": "1", "reason": "x"}, page=PAGE).status_code == 404
    assert post_form(client, f"{PAGE}/no_such_thing", {"value": "1", "reason": "x"}, page=PAGE).status_code == 404
    for role in ("front_desk", "clinician", "supervisor"):
        other = app.test_client()
        assert login(other, staff(role).email).status_code == 302
        assert other.get(PAGE).status_code == 403
        assert other.post(f"{PAGE}/survey_link_hours", data={"value": "2", "reason": "x"}).status_code in (400, 403)
    assert setting_history(session, "survey_link_hours") == []


def test_the_page_in_spanish(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("manager")
    html = client.get(PAGE, headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Ajustes de la consulta" in html
    assert "horas" in html
