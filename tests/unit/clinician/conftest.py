"""Fixtures for the clinician pages: staff, login through the real form, and synthetic series that open alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.evaluation import evaluate_administration
from services.alerts.models import Alert
from services.clients.models import Appointment, Episode
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.unit.alerts.series import B1, split_total, submit_partnership, submit_phq9
from tests.unit.web.conftest import _quick_argon2, csrf_from, login  # noqa: F401  (the fixture is used by name)


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


def evaluate(session: Session, administration_id: int) -> None:
    """Run the evaluation as the worker would (notifications queued, nothing sent)."""
    evaluate_administration(session, administration_id, settings=DEFAULT_SETTINGS)


def alliance_alert(session: Session, clinician: User, *, sessions: int = 5, **client_kw: Any) -> Alert:
    """An episode with the first sessions of CLINICAL.md's B1 series: an alliance alert opens at session 5."""
    episode = make_episode(session, clinician=clinician, client=make_client(session, **client_kw))
    for week, total in enumerate(B1[:sessions]):
        appointment = make_appointment(
            session, episode=episode, starts_at=datetime(2026, 1, 12, 10, tzinfo=UTC) + timedelta(weeks=week)
        )
        row = submit_partnership(session, episode, split_total(total), week=week, appointment_id=appointment.id)
        evaluate(session, row.id)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id, Alert.kind == "alliance"))
    assert alert is not None
    return alert


def risk_alert(session: Session, episode: Episode) -> Alert:
    """A PHQ-9 with item 9 above 0: a risk alert."""
    row = submit_phq9(session, episode, 12, week=9, item9=1)
    evaluate(session, row.id)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id, Alert.kind == "risk"))
    assert alert is not None
    return alert


def past_appointment(session: Session, episode: Episode, *, days_ago: float = 1) -> Appointment:
    """An appointment that has taken place."""
    return make_appointment(
        session, episode=episode, starts_at=datetime.now(UTC) - timedelta(days=days_ago), status="completed"
    )


@dataclass
class QueryCounter:
    """Statements sent to the database while counting."""

    statements: list[str]

    @property
    def count(self) -> int:
        """How many."""
        return len(self.statements)


@contextmanager
def count_queries(engine: Engine) -> Iterator[QueryCounter]:
    """Count every statement the engine executes inside the block (before_cursor_execute)."""
    counter = QueryCounter([])

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", record)


def page_csrf(client: FlaskClient, path: str) -> str:
    """The CSRF token of a page's first form."""
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return csrf_from(response.get_data(as_text=True))
