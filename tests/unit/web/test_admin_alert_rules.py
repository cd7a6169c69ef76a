"""The alert rules page: the thresholds in force with their source; admins and managers change one with a reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.practice.rules import rule_settings
from services.practice.settings import setting_history
from tests.unit.web.conftest import login, post_form

PAGE = "/admin/rules"


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_the_rules_in_force_show_their_source_and_change_with_a_reason(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, role: str
) -> None:
    user = signed_in(role, name="Ada Rulesperson")
    html = client.get(PAGE).get_data(as_text=True)
    assert f'href="{PAGE}"' in html
    assert "how many SDs below the client's own mean" in html
    assert "Rapport's default" in html
    assert "CLINICAL.md says 2" in html  # the tension threshold's default differs from the specification

    changed = post_form(client, f"{PAGE}/k", {"value": "1.5", "reason": "Our clients dip gently"}, page=PAGE)
    assert changed.status_code == 303
    session.expire_all()
    settings = rule_settings(session)
    assert (settings.k, settings.version) == (1.5, 1)
    (version,) = setting_history(session, "alert_rules")
    assert (version.changed_by_id, version.reason, version.source) == (user.id, "Our clients dip gently", "person")
    audited = session.scalar(select(AuditEvent).where(AuditEvent.action == "practice_setting_changed"))
    assert audited is not None
    assert audited.actor_id == user.id
    after = client.get(PAGE).get_data(as_text=True)
    assert "changed by a person: Ada Rulesperson" in after
    assert "Our clients dip gently" in after


@pytest.mark.parametrize(
    ("name", "value", "reason", "message"),
    [
        ("k", "0.1", "too small", "Give a number from 0.5 to 4 (at most 2 decimals)."),
        ("k", "1.234", "three decimals", "Give a number from 0.5 to 4 (at most 2 decimals)."),
        ("repair_window", "2.5", "half", "Give a number from 1 to 12 (at most 0 decimals)."),
        ("k", "abc", "words", "Give a number from 0.5 to 4"),
        ("k", "1.5", "", "Say in a few words why it changes"),
        ("k", "2", "same", "Nothing changes: these are the values in force."),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    client: FlaskClient,
    signed_in: Callable[..., User],
    session: Session,
    name: str,
    value: str,
    reason: str,
    message: str,
) -> None:
    signed_in("admin")
    response = post_form(client, f"{PAGE}/{name}", {"value": value, "reason": reason}, page=PAGE)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert setting_history(session, "alert_rules") == []


def test_other_roles_and_unknown_rules_are_refused(
    app: Flask, client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    signed_in("admin")
    assert post_form(client, f"{PAGE}/low_cutoff", {"value": "30", "reason": "x"}, page=PAGE).status_code == 404
    for role in ("front_desk", "clinician", "supervisor"):
        other = app.test_client()
        assert login(other, staff(role).email).status_code == 302
        assert other.get(PAGE).status_code == 403
        assert other.post(f"{PAGE}/k", data={"value": "1.5", "reason": "x"}).status_code in (400, 403)
    assert setting_history(session, "alert_rules") == []


def test_the_page_in_spanish(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("manager")
    html = client.get(PAGE, headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Reglas de alerta" in html
    assert "Valor predeterminado de Rapport" in html
