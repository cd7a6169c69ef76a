"""Fixtures for the case review tests: a team with a supervisor, and series that open alliance and outcome alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from services.accounts.models import Team, User
from services.alerts.evaluation import evaluate_administration
from services.clients.models import Episode
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import split_total, submit_partnership, submit_phq9
from tests.unit.web.conftest import _quick_argon2, signed_in, staff  # noqa: F401  (fixtures, used by name)

# A rupture at session 4 still below its baseline at session 7 (CLINICAL.md B3): UNREPAIRED at session 7.
B3 = [36, 37, 38, 29, 30, 31, 32]
# A rupture at 4, repaired at 5, another at 6: two alerts within four sessions.
REPEAT = [36, 37, 38, 29, 38, 30]
# Evaluation time of the synthetic sessions (any fixed moment: alerts are dated by it).
EVALUATED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Practice:
    """Two teams: North (a supervisor and a clinician) and South (a supervisor), plus a manager."""

    north: Team
    supervisor: User
    clinician: User
    south_supervisor: User
    manager: User


@pytest.fixture
def practice(session: Session) -> Practice:
    south_supervisor = make_user(session, role="supervisor", team="Team South")
    supervisor = make_user(session, role="supervisor", team="Team North")
    clinician = make_user(session, role="clinician", team="Team North")
    manager = make_user(session, role="manager", team=None)
    assert clinician.team is not None
    return Practice(clinician.team, supervisor, clinician, south_supervisor, manager)


def alliance_series(session: Session, clinician: User, totals: Sequence[int]) -> Episode:
    """An episode whose Partnership Checks have these totals, each evaluated in turn."""
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(totals):
        row = submit_partnership(session, episode, split_total(total), week=week)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=EVALUATED_AT, notify=False)
    return episode


def phq9_series(session: Session, clinician: User, totals: Sequence[int]) -> Episode:
    """An episode whose PHQ-9 totals are these, each evaluated in turn."""
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(totals):
        row = submit_phq9(session, episode, total, week=week)
        evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=EVALUATED_AT, notify=False)
    return episode
