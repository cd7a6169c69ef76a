"""The demo practice is synthetic, reproducible and shaped like real routine-outcome data."""

from __future__ import annotations

import random
import secrets
from datetime import date
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from services import schema
from services.accounts.models import User
from services.alerts.models import Alert, SignalRecord
from services.clients.models import Appointment, Client, Episode
from services.db import Database
from services.demo.seed import DEMO_LOGINS, DemoError, seed_demo
from services.demo.trajectories import client_course
from services.surveys.models import Administration, Invitation


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
        # The history was evaluated: nothing waits, and the ruptures and outcomes left signals and alerts.
        waiting = s.scalar(
            select(func.count()).select_from(Administration).where(Administration.evaluated_at.is_(None))
        )
        assert waiting == 0
        assert (s.scalar(select(func.count()).select_from(SignalRecord)) or 0) > 0
        assert (s.scalar(select(func.count()).select_from(Alert)) or 0) > 0


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


SEEDED = (Client, Episode, Appointment, Invitation, Administration, SignalRecord, Alert)
# Wall-clock columns: compared only as set or not.
STAMPS = {"created_at", "updated_at", "evaluated_at"}


def practice(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every seeded row of the clinical tables, in id order, ids included."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with database.session() as s:
        for model in SEEDED:
            columns = [column.key for column in model.__table__.columns]
            out[model.__tablename__] = [
                tuple((getattr(row, name) is not None) if name in STAMPS else getattr(row, name) for name in columns)
                for row in s.scalars(select(model).order_by(model.id))
            ]
    return out


@pytest.mark.integration
def test_postgresql_copy_path_writes_the_practice_the_inserts_write(db: Database) -> None:
    """On PostgreSQL the seed COPYs its rows and reserves ids from the sequences: same rows, same ids as INSERTs."""
    name = f"rapport_seed_{secrets.token_hex(4)}"
    admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    pg = Database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        schema.upgrade(pg.engine)
        options: dict[str, Any] = {"clients": 40, "months": 8, "clinicians": 3, "seed": 11, "today": date(2026, 11, 20)}
        assert seed_demo(pg, **options) == seed_demo(db, **options)
        on_postgresql, on_sqlite = practice(pg), practice(db)
        assert all(on_sqlite.values())
        for table, rows in on_sqlite.items():
            assert on_postgresql[table] == rows, table
    finally:
        pg.dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_demo_has_briefs_opened_and_discussed_so_the_fidelity_figures_say_something(db: Database) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from services.audit.chain import verify_chain
    from services.briefs.models import BriefDiscussion
    from services.reporting.fidelity import fidelity
    from services.reporting.periods import PRACTICE, month_of, shift_period

    today = date(2026, 11, 20)
    seed_demo(db, clients=60, months=4, seed=3, today=today)
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with db.session() as s:
        assert (s.scalar(select(func.count()).select_from(BriefDiscussion)) or 0) > 0
        month = month_of(shift_period("2026-11", -1), ZoneInfo("Europe/London"))
        found = fidelity(s, PRACTICE, month, risk_window_minutes=60, now=now)
        total = found.total
        # Some feedback opened and discussed, some not: neither none nor all.
        assert 0 < total.viewed_before_next < total.administrations
        assert 0 < total.briefs_discussed < total.briefs
        rates = {
            row.clinician_id: row.viewed_before_next / row.administrations for row in found.rows if row.administrations
        }
        assert len(set(round(rate, 2) for rate in rates.values())) > 1  # clinicians differ
        assert verify_chain(s).ok
