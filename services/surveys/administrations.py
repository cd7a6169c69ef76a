"""Storing administrations: answers validated and scored by the instrument's rules, committed with the caller."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db import utcnow
from services.measures import load_instrument, score_administration
from services.measures.scoring import ScoreResult
from services.surveys.models import Administration


def score_to_json(result: ScoreResult) -> dict[str, Any]:
    """The stored form of a score: plain JSON, enough to explain the total without re-scoring."""
    return {
        "status": result.status,
        "total": result.total,
        "answered": result.answered,
        "expected": result.expected,
        "missing": list(result.missing),
        "subscales": dict(result.subscales),
        "components": dict(result.components),
        "risk_positive": list(result.risk_positive),
        "risk_unanswered": list(result.risk_unanswered),
        "band": dict(result.band.label) if result.band is not None else None,
        "clinical": result.clinical,
    }


def record_administration(
    session: Session,
    *,
    episode_id: int,
    instrument_code: str,
    answers: Mapping[str, object],
    invitation_id: int | None = None,
    appointment_id: int | None = None,
    respondent: str = "client",
    language: str = "en",
    completed_at: datetime | None = None,
    not_applicable: Collection[str] = (),
) -> Administration:
    """Validate, score and store one answered instrument (raises AnswerError naming the item on bad input).

    A repeat for the same invitation and instrument returns the stored row unchanged, so a double submit is harmless.
    """
    if invitation_id is not None:
        existing = session.scalar(
            select(Administration).where(
                Administration.invitation_id == invitation_id, Administration.instrument_code == instrument_code
            )
        )
        if existing is not None:
            return existing
    instrument = load_instrument(instrument_code)
    result = score_administration(instrument, answers, not_applicable=not_applicable)
    free_text = next(
        (str(v) for k, v in result.answers.items() if isinstance(v, str) and instrument.item(k).type == "text"), None
    )
    row = Administration(
        invitation_id=invitation_id,
        episode_id=episode_id,
        appointment_id=appointment_id,
        instrument_code=instrument.code,
        instrument_version=instrument.version,
        respondent=respondent,
        answers=dict(result.answers),
        scores=score_to_json(result),
        total=result.total,
        complete=result.status != "incomplete",
        free_text=free_text,
        language=language,
        completed_at=completed_at or utcnow(),
    )
    session.add(row)
    session.flush()
    return row
