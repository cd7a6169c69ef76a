"""Helpers for web tests: CSRF tokens from real pages, logging in through the real form, apps with overrides."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from services.accounts.models import User
from services.config import Settings
from services.db import Database
from tests.factories import PASSWORD, make_user

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')

HOMES = {
    "front_desk": "/frontdesk/",
    "clinician": "/clinician/",
    "supervisor": "/supervisor/",
    "manager": "/manager/",
    "admin": "/admin/",
}


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1) or match.group(2)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """Fetch a page the way a browser does and read the CSRF token from its form."""
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return csrf_from(response.get_data(as_text=True))


def login(client: FlaskClient, email: str, password: str = PASSWORD, **kw: Any) -> TestResponse:
    """Log in through the real form (CSRF token included)."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, **kw)


def post_form(client: FlaskClient, path: str, data: dict[str, Any] | None = None, *, page: str) -> TestResponse:
    """POST to path with the CSRF token taken from page, as a browser submitting that page's form."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page)})


@pytest.fixture(autouse=True)
def _quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with test-sized cost: web tests hash and verify a password in almost every test."""
    from argon2 import PasswordHasher

    from services.accounts import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def make_app(test_settings: Settings, db: Database) -> Callable[..., Flask]:
    """Build another app on the test database with some settings overridden."""
    from web.app import create_app

    def build(**overrides: Any) -> Flask:
        application = create_app(settings=test_settings.with_overrides(**overrides), database=db)
        application.config.update(TESTING=True)
        return application

    return build


@pytest.fixture
def staff(session: Session) -> Callable[..., User]:
    """Create a staff user: staff("clinician", team="Team North")."""

    def build(role: str, **kw: Any) -> User:
        return make_user(session, role=role, **kw)

    return build


@pytest.fixture
def signed_in(client: FlaskClient, staff: Callable[..., User]) -> Callable[..., User]:
    """Create a user with a role and log the test client in as them."""

    def build(role: str, **kw: Any) -> User:
        user = staff(role, **kw)
        response = login(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return build
