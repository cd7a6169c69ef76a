"""The demo practice is synthetic, reproducible and shaped like real routine-outcome data."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import func, select

from services.accounts.models import User
from services.clients.models import Client, Episode
from services.db import Database
from services.demo.seed import DEMO_LOGINS, DemoError, seed_demo
from services.demo.trajectories import client_course
from services.surveys.models import Administration


def test_seed_creates_every_role_and_a_practice(db: Database) -> None:
    summary = seed_demo(db, clients=40, months=4, seed=3, today=date(2026, 11, 20))
    with db.session() as s:
        roles = set(s.scalars(select(User.role)))
        emails = set(s.scalars(select(User.email)))
        assert roles == {"admin", "manager", "front_desk", "supervisor", "clinician"}
        assert set(DEMO_LOGINS.values()) <= emails
        assert s.scalar(select(func.count()).select_from(Client)) == 40
        assert s.scalar(select(func.count()).select_from(Episode)) == 40
        assert s.scalar(select(func.count()).select_from(Administration)) == summary.administrations > 0
        open_episodes = s.scalar(select(func.count()).select_from(Episode).where(Episode.ended_on.is_(None)))
        assert 0 < (open_episodes or 0) < 40


def test_seed_refuses_a_practice_that_already_has_clients(db: Database) -> None:
    seed_demo(db, clients=3, months=2, seed=1)
    with pytest.raises(DemoError, match="already has clients"):
        seed_demo(db, clients=3, months=2, seed=1)


def test_courses_are_reproducible_and_show_ruptures_at_about_published_rates() -> None:
    courses_a = [client_course(random.Random(i), 20) for i in range(2000)]
    courses_b = [client_course(random.Random(i), 20) for i in range(2000)]
    assert [c.alliance_items for c in courses_a[:50]] == [c.alliance_items for c in courses_b[:50]]
    eligible = [c for c in courses_a if c.sessions >= 5]
    ruptured = sum(c.rupture_at is not None for c in eligible) / len(eligible)
    assert 0.09 <= ruptured <= 0.17
    kinds = {c.course for c in courses_a}
    assert kinds == {"improver", "slow_responder", "no_change", "deteriorator", "drop_out"}
    for c in courses_a[:200]:
        assert all(0 <= x <= 27 for x in c.phq9)
        assert all(0 <= v <= 10 for items in c.alliance_items for v in items)
