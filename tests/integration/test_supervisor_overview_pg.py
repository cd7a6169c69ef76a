"""The supervisor's counts, team table and filtered alert list on PostgreSQL (the grouped queries, the filters)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from services.alerts.queries import list_alerts_page, open_alert_counts, team_overview
from services.config import Settings
from services.db import Database, utcnow
from tests.factories import make_episode, make_user
from tests.unit.supervisor.conftest import quick_alert
from tests.unit.web.conftest import login
from web.app import create_app


@pytest.fixture
def pg_db(it_db: Database) -> Iterator[Database]:
    """A Database on PostgreSQL whose sessions join one outer transaction, rolled back after the test."""
    connection = it_db.engine.connect()
    outer = connection.begin()
    try:
        yield Database.bound_to(connection)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def pg_session(pg_db: Database) -> Iterator[Session]:
    """A session inside the test's outer transaction."""
    with pg_db.session() as s:
        yield s


def test_counts_table_and_filters_agree_on_postgresql(
    it_settings: Settings, pg_db: Database, pg_session: Session
) -> None:
    session = pg_session
    supervisor = make_user(session, role="supervisor", team="Team PG Overview")
    ada = make_user(session, role="clinician", team="Team PG Overview")
    ben = make_user(session, role="clinician", team="Team PG Overview")
    quick_alert(session, make_episode(session, clinician=ada), "risk", days_ago=1)
    quick_alert(session, make_episode(session, clinician=ada), "outcome", days_ago=40, status="acknowledged")
    quick_alert(session, make_episode(session, clinician=ada), "alliance", status="resolved")
    ended = make_episode(session, clinician=ada)
    quick_alert(session, ended, "outcome", days_ago=3)
    ended.ended_on = date.today()
    quick_alert(session, make_episode(session, clinician=ben), "risk", days_ago=10)
    session.flush()

    counts = open_alert_counts(session, supervisor)
    assert counts.by_clinician == {ada.id: 3, ben.id: 1}
    assert counts.by_kind == {"risk": 2, "outcome": 2}
    assert open_alert_counts(session, ada).total == list_alerts_page(session, ada, active_only=True).total == 3
    rows = {row.user_id: row for row in team_overview(session, supervisor, counts=counts)}
    assert set(rows) == {ada.id, ben.id}
    assert (rows[ada.id].open_episodes, rows[ada.id].open_alerts, rows[ada.id].open_risk_alerts) == (3, 3, 1)
    assert rows[ada.id].last_measure_at is None
    now = utcnow()
    older = list_alerts_page(session, supervisor, active_only=True, opened_before=now - timedelta(days=7))
    assert older.total == 2
    assert [item.alert.kind for item in older.items] == ["risk", "outcome"]
    assert list_alerts_page(session, supervisor, active_only=True, kind="risk", clinician_id=ada.id).total == 1

    app = create_app(settings=it_settings, database=pg_db)
    app.config.update(TESTING=True)
    browser = app.test_client()
    assert login(browser, supervisor.email).status_code == 302
    html = browser.get(f"/supervisor/?clinician={ada.id}&age=7").get_data(as_text=True)
    assert "1 open alert matches." in re.sub(r"\s+", " ", html)
    assert browser.get("/supervisor/?kind=bogus").status_code == 400
