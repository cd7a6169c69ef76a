"""Survey test fixtures: what the app publishes after commit, recorded instead of sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.config import Settings
from services.db import Database
from services.surveys.models import Administration, Invitation


@dataclass
class Published:
    """Tasks the app published (name, args), and how many administrations were committed at that moment."""

    calls: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def names(self) -> list[str]:
        """The task names, in order."""
        return [name for name, _ in self.calls]


@pytest.fixture(autouse=True)
def _quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with test-sized cost (every episode here comes with a clinician account)."""
    from argon2 import PasswordHasher

    from services.accounts import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """Record every after-commit publish (the broker is never touched in the quick tier; on for every test here)."""
    from workers import enqueue

    record = Published()

    def fake_publish(task_name: str, *args: int) -> None:
        record.calls.append((task_name, args))

    monkeypatch.setattr(enqueue, "_publish", fake_publish)
    return record


def administrations_of(session: Session, invitation_id: int) -> list[Administration]:
    """The stored administrations of an invitation (fresh from the database)."""
    session.expire_all()
    return list(
        session.scalars(
            select(Administration).where(Administration.invitation_id == invitation_id).order_by(Administration.id)
        )
    )


def count_administrations(session: Session, invitation_id: int) -> int:
    """How many administrations an invitation has."""
    return int(
        session.scalar(
            select(func.count()).select_from(Administration).where(Administration.invitation_id == invitation_id)
        )
        or 0
    )


def invitation_row(session: Session, invitation_id: int) -> Invitation:
    """The invitation as stored now."""
    session.expire_all()
    row = session.get(Invitation, invitation_id)
    assert row is not None
    return row


@pytest.fixture
def make_app(test_settings: Settings, db: Database) -> Callable[..., Flask]:
    """Build another app on the test database with some settings overridden."""
    from web.app import create_app

    def build(**overrides: Any) -> Flask:
        application = create_app(settings=test_settings.with_overrides(**overrides), database=db)
        application.config.update(TESTING=True)
        return application

    return build
