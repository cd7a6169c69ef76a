"""The submission's single statement on PostgreSQL (complete the invitation and store its rows together)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.db import Database, utcnow
from services.surveys.models import Administration, Invitation
from services.surveys.submission import (
    LinkState,
    SurveyClosedError,
    find_survey_link,
    plan_survey,
    submit_survey,
)
from tests.unit.survey.helpers import PRE, make_link

ANSWERS = {
    "PHQ-9": {f"phq9_{i}": 1.0 for i in range(1, 10)} | {"phq9_9": 2.0},
    "GAD-7": {f"gad7_{i}": 2.0 for i in range(1, 8)},
    "GOAL-PROGRESS": {"goal_1": 4.0, "goal_2": 6.0},
}


def _submit(db: Database, raw: str, *, now_shift: timedelta = timedelta(0)) -> tuple[int, ...]:
    with db.session() as session:
        link = find_survey_link(session, raw)
        assert link is not None
        steps = plan_survey(link.context.instruments, link.context.goals, rotating_item=None)
        submitted = submit_survey(session, link.context, steps, ANSWERS, language="es", now=utcnow() + now_shift)
        session.commit()
        return submitted.administration_ids


def _stored(db: Database, invitation_id: int) -> list[Administration]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Administration).where(Administration.invitation_id == invitation_id).order_by(Administration.id)
            )
        )


def test_one_statement_completes_the_invitation_and_stores_every_step_in_order(it_db: Database) -> None:
    with it_db.session() as session:
        link = make_link(session, instruments=PRE)
        invitation_id, raw = link.invitation.id, link.raw
    ids = _submit(it_db, raw)
    rows = _stored(it_db, invitation_id)
    assert [row.id for row in rows] == list(ids)
    assert [row.instrument_code for row in rows] == list(PRE)
    phq, gad, goals = rows
    assert phq.total == 10.0
    assert phq.answers["phq9_9"] == 2.0
    assert phq.scores["risk_positive"] == ["phq9_9"]
    assert gad.total == 14.0
    assert goals.answers == {"goal_1": 4.0, "goal_2": 6.0}
    assert {row.language for row in rows} == {"es"}
    assert {row.evaluated_at for row in rows} == {None}
    with it_db.session() as session:
        invitation = session.get(Invitation, invitation_id)
        assert invitation is not None
        assert invitation.status == "completed"
        assert invitation.completed_at == phq.completed_at
        assert invitation.started_at is not None


def test_a_replay_an_expired_and_a_cancelled_link_write_nothing(it_db: Database) -> None:
    with it_db.session() as session:
        used = make_link(session, instruments=PRE)
        expired = make_link(session, instruments=PRE, expires_in=timedelta(minutes=5))
        cancelled = make_link(session, instruments=PRE)
        session.get(Invitation, cancelled.invitation.id).status = "cancelled"  # type: ignore[union-attr]
        session.commit()
        links = {"used": (used.invitation.id, used.raw), "expired": (expired.invitation.id, expired.raw)}
        links["cancelled"] = (cancelled.invitation.id, cancelled.raw)
    assert len(_submit(it_db, links["used"][1])) == 3
    expected = {"used": LinkState.USED, "expired": LinkState.EXPIRED, "cancelled": LinkState.CANCELLED}
    for name, (invitation_id, raw) in links.items():
        with pytest.raises(SurveyClosedError) as closed:
            _submit(it_db, raw, now_shift=timedelta(hours=1) if name == "expired" else timedelta(0))
        assert closed.value.state is expected[name], name
        assert len(_stored(it_db, invitation_id)) == (3 if name == "used" else 0), name


def test_rows_whose_values_are_all_null_still_have_their_column_types(it_db: Database) -> None:
    from services.surveys.submission import _complete_and_store

    with it_db.session() as session:
        link = make_link(session, instruments=("GAD-7", "PHQ-9"))
        base = {
            "invitation_id": link.invitation.id,
            "episode_id": link.episode.id,
            "appointment_id": None,
            "instrument_version": "1",
            "respondent": "client",
            "answers": {},
            "scores": {"status": "incomplete"},
            "total": None,
            "complete": False,
            "free_text": None,
            "language": "en",
            "completed_at": utcnow(),
            "eval_attempts": 0,
        }
        rows = [{**base, "instrument_code": "GAD-7"}, {**base, "instrument_code": "PHQ-9"}]
        ids = _complete_and_store(session, link.invitation.id, rows, utcnow())
        session.commit()
        assert ids is not None
        assert len(ids) == 2
    stored = _stored(it_db, link.invitation.id)
    assert [(row.id, row.instrument_code, row.total, row.complete) for row in stored] == [
        (ids[0], "GAD-7", None, False),
        (ids[1], "PHQ-9", None, False),
    ]
