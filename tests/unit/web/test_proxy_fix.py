"""X-Forwarded-For is honoured only for the configured number of trusted proxies (RAPPORT_TRUSTED_PROXIES)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.audit.models import AuditEvent
from services.config import ConfigError, load_settings
from tests.unit.web.conftest import login


def _audited_ip(app: Flask, admin: User, session: Session, forwarded: str) -> str | None:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    headers = {"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"}
    assert client.get("/admin/audit", headers=headers).status_code == 200
    session.expire_all()
    event = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "audit_trail_viewed", AuditEvent.actor_id == admin.id)
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    return event.ip


def test_forwarded_addresses_are_ignored_without_a_trusted_proxy(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    admin = staff("admin")
    assert _audited_ip(make_app(trusted_proxies=0), admin, session, "203.0.113.9") == "127.0.0.1"


def test_one_trusted_proxy_gives_the_client_it_saw(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    admin = staff("admin")
    app = make_app(trusted_proxies=1)
    assert _audited_ip(app, admin, session, "203.0.113.9") == "203.0.113.9"
    # A client that sends its own X-Forwarded-For gets the proxy's append, and only the last hop is trusted.
    assert _audited_ip(app, admin, session, "198.51.100.1, 203.0.113.9") == "203.0.113.9"


def test_the_setting_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_TRUSTED_PROXIES", "2")
    assert load_settings().trusted_proxies == 2
    monkeypatch.setenv("RAPPORT_TRUSTED_PROXIES", "-1")
    with pytest.raises(ConfigError, match="RAPPORT_TRUSTED_PROXIES"):
        load_settings()
