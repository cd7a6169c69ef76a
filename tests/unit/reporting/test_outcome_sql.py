"""The outcome classification written as SQL gives what services.signals.episode_outcome gives, episode by episode."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from services.accounts.models import User
from services.clients.models import Client, Episode
from services.reporting.periods import ReportScope, month_of
from services.reporting.queries import outcome_counts
from services.signals import DEFAULT_SETTINGS, episode_outcome
from services.surveys.models import Administration
from tests.unit.reporting.practice import TZ

BOUNDARIES = [
    (18, 8, 14, 7),  # O3: reliable recovery
    (12, 9, 6, 11),  # O4: reliable deterioration, not recovered
    (10, 9, 7, 7),  # PHQ at the cutoff at the start only: recovered without reliable change
    (9, 9, 8, 7),  # GAD at the cutoff at the start only
    (9, 3, 5, 5),  # not a case at the start: improvement but no recovery
    (16, 10, 12, 8),  # down exactly 6 and 4 but still a case at the end
    (16, 11, 12, 9),  # down 5 and 3: no reliable change
    (10, 16, 12, 8),  # up 6 and down 4: neither improvement nor deterioration
    (3, 9, 2, 6),  # up 6 and 4 from below the cutoffs
    (27, 0, 21, 0),
    (0, 27, 0, 21),
]


def test_sql_classification_matches_episode_outcome_for_every_episode(session: Session) -> None:
    rng = random.Random(5)
    cases = BOUNDARIES + [
        (rng.randint(0, 27), rng.randint(0, 27), rng.randint(0, 21), rng.randint(0, 21)) for _ in range(250)
    ]
    clinicians: dict[int, tuple[int, int, int, int]] = {}
    for i, (phq0, phq1, gad0, gad1) in enumerate(cases):
        user = User(email=f"o{i}@example.test", name=f"Clinician {i:03d}", role="clinician", password_hash="x")
        client = Client(code=f"O{i:05d}", first_name="Testa", last_name="Person")
        session.add_all([user, client])
        session.flush()
        episode = Episode(
            client_id=client.id, clinician_id=user.id, started_on=date(2026, 8, 3), ended_on=date(2026, 10, 12)
        )
        session.add(episode)
        session.flush()
        first, last = datetime(2026, 8, 3, 9, tzinfo=UTC), datetime(2026, 10, 5, 9, tzinfo=UTC)
        middle = first + timedelta(days=20)
        for code, values in (("PHQ-9", (phq0, 20, phq1)), ("GAD-7", (gad0, 15, gad1))):
            for at, total in zip((first, middle, last), values, strict=True):
                session.add(
                    Administration(
                        episode_id=episode.id,
                        instrument_code=code,
                        instrument_version="1",
                        total=float(total),
                        completed_at=at,
                    )
                )
        clinicians[user.id] = (phq0, phq1, gad0, gad1)
    session.flush()
    rows = {
        r.clinician_id: r
        for r in outcome_counts(session, ReportScope("practice"), (month_of("2026-10", TZ),), settings=DEFAULT_SETTINGS)
    }
    assert len(rows) == len(cases)
    for clinician_id, (phq0, phq1, gad0, gad1) in clinicians.items():
        row = rows[clinician_id]
        want = episode_outcome(phq0, phq1, gad0, gad1)
        got = (
            row.reliable_improvement,
            row.reliable_deterioration,
            row.recovery_eligible,
            row.recovered,
            row.reliable_recovery,
        )
        assert row.closed == row.assessed == 1
        assert got == (
            int(want.reliable_improvement),
            int(want.reliable_deterioration),
            int(want.caseness_start),
            int(want.recovery),
            int(want.reliable_recovery),
        ), (phq0, phq1, gad0, gad1)


def test_an_episode_with_one_score_on_a_measure_is_closed_but_not_assessed(session: Session) -> None:
    user = User(email="one@example.test", name="One Score", role="clinician", password_hash="x")
    client = Client(code="O-ONE", first_name="Testa", last_name="Person")
    session.add_all([user, client])
    session.flush()
    episode = Episode(
        client_id=client.id, clinician_id=user.id, started_on=date(2026, 9, 1), ended_on=date(2026, 10, 2)
    )
    session.add(episode)
    session.flush()
    for code, at in (("PHQ-9", 1), ("PHQ-9", 8), ("GAD-7", 1)):
        session.add(
            Administration(
                episode_id=episode.id,
                instrument_code=code,
                instrument_version="1",
                total=12.0,
                completed_at=datetime(2026, 9, at, 9, tzinfo=UTC),
            )
        )
    session.flush()
    (row,) = outcome_counts(
        session, ReportScope("clinician", user.id), (month_of("2026-10", TZ),), settings=DEFAULT_SETTINGS
    )
    assert (row.closed, row.assessed, row.recovery_eligible) == (1, 0, 0)
