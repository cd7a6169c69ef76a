"""The fidelity figures on PostgreSQL: the same hand-counted fixture as the quick tier (JSON paths, percentiles)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from services.db import Database
from tests.unit.reporting.test_fidelity import build_world, check_hand_count


@pytest.fixture
def pg_session(it_db: Database) -> Iterator[Session]:
    """A session on PostgreSQL inside one outer transaction, rolled back after the test."""
    connection = it_db.engine.connect()
    outer = connection.begin()
    try:
        with Database.bound_to(connection).session() as session:
            yield session
    finally:
        outer.rollback()
        connection.close()


def test_fidelity_figures_match_the_hand_count_on_postgresql(pg_session: Session) -> None:
    check_hand_count(pg_session, build_world(pg_session))
