"""Synthetic answer series for the alert tests (quick and integration tiers): CLINICAL.md's worked examples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.clients.models import Episode
from services.surveys.administrations import record_administration
from services.surveys.models import Administration

B1 = [34, 36, 37, 36, 27, 31, 36, 37]
B3 = [36, 37, 38, 29, 30, 31, 32]
B4_ITEMS = [[10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 9, 10], [10, 6, 10, 10]]
PC_ITEMS = ("pc_rapport", "pc_mutual_goals", "pc_realistic_goals", "pc_shared_responsibility")
TPC_ITEMS = ("tpc_rapport", "tpc_mutual_goals", "tpc_realistic_goals", "tpc_shared_responsibility")
START = datetime(2026, 1, 12, 10, 50, tzinfo=UTC)


def split_total(total: int) -> list[int]:
    """Four 0-10 item answers adding up to total, as even as possible."""
    base, extra = divmod(total, 4)
    return [base + (1 if i < extra else 0) for i in range(4)]


def session_time(week: int) -> datetime:
    """When the week's session ended (weekly sessions)."""
    return START + timedelta(weeks=week)


def submit_partnership(
    session: Session,
    episode: Episode,
    items: Sequence[int | None],
    *,
    week: int,
    tension: int | None = 0,
    appointment_id: int | None = None,
) -> Administration:
    """Store one client Partnership Check (an item of None leaves it unanswered: the administration is incomplete)."""
    answers: dict[str, Any] = dict(zip(PC_ITEMS, items, strict=True))
    answers["pc_tension"] = tension
    return record_administration(
        session,
        episode_id=episode.id,
        instrument_code="PARTNERSHIP-CHECK",
        answers=answers,
        completed_at=session_time(week),
        appointment_id=appointment_id,
    )


def submit_therapist_view(
    session: Session, episode: Episode, items: Sequence[int], *, week: int, appointment_id: int
) -> Administration:
    """Store the clinician's own Partnership Check for a session."""
    return record_administration(
        session,
        episode_id=episode.id,
        instrument_code="THERAPIST-PARTNERSHIP-CHECK",
        answers=dict(zip(TPC_ITEMS, items, strict=True)),
        completed_at=session_time(week) + timedelta(minutes=20),
        appointment_id=appointment_id,
        respondent="therapist",
    )


def phq9_answers(total: int, *, item9: int = 0) -> dict[str, int]:
    """PHQ-9 answers with the given total and risk item (item 9 counts towards the total)."""
    assert 0 <= total - item9 <= 24
    rest = total - item9
    values = [min(3, max(0, rest - 3 * i)) for i in range(8)]
    answers = {f"phq9_{i + 1}": v for i, v in enumerate(values)}
    answers["phq9_9"] = item9
    return answers


def submit_phq9(session: Session, episode: Episode, total: int, *, week: int, item9: int = 0) -> Administration:
    """Store one PHQ-9."""
    return record_administration(
        session,
        episode_id=episode.id,
        instrument_code="PHQ-9",
        answers=phq9_answers(total, item9=item9),
        completed_at=session_time(week) - timedelta(hours=1),
    )
