"""services.surveys.submission without the web: steps, reading answers, single use, kiosk claims."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from services.db import utcnow
from services.measures import AnswerError
from services.surveys.invitations import find_invitation_by_token, issue_token
from services.surveys.submission import (
    LinkState,
    SurveyClosedError,
    SurveyContext,
    check_kept_answers,
    claim_kiosk_handout,
    find_survey_link,
    link_state,
    mark_opened,
    next_kiosk_handout,
    plan_survey,
    read_step,
    submit_survey,
)
from tests.unit.survey.conftest import count_administrations, invitation_row
from tests.unit.survey.helpers import POST, PRE, make_link


def test_plan_one_step_per_instrument_with_goals_in_the_clients_words() -> None:
    steps = plan_survey(PRE, ["Sleep", "Choir"], rotating_item=None)
    assert [step.code for step in steps] == list(PRE)
    goals = steps[2]
    assert [(q.id, q.text("es")) for q in goals.questions] == [("goal_1", "Sleep"), ("goal_2", "Choir")]
    assert goals.not_applicable == ("goal_3",)
    assert plan_survey(PRE, [], rotating_item=None)[-1].code == "GAD-7"


def test_plan_asks_one_rotating_element_and_puts_free_text_last() -> None:
    (step,) = plan_survey(POST, [], rotating_item="pc_element_safety")
    ids = [q.id for q in step.questions]
    assert ids == [
        "pc_rapport",
        "pc_mutual_goals",
        "pc_realistic_goals",
        "pc_shared_responsibility",
        "pc_tension",
        "pc_element_safety",
        "pc_comment",
    ]
    assert [q.number for q in step.questions] == list(range(1, 8))
    (without,) = plan_survey(POST, [], rotating_item=None)
    assert not any(q.item.rotation for q in without.questions)


def test_read_step_names_missing_invalid_and_too_long_answers() -> None:
    (step,) = plan_survey(POST, [], rotating_item=None)
    read = read_step(
        step,
        {"pc_rapport": "10", "pc_mutual_goals": "11", "pc_tension": "", "pc_comment": "x" * 2001, "evil": "1"},
    )
    assert read.answers == {"pc_rapport": 10.0}
    assert [(p.question.id, p.kind) for p in read.problems] == [
        ("pc_mutual_goals", "invalid"),
        ("pc_realistic_goals", "missing"),
        ("pc_shared_responsibility", "missing"),
        ("pc_comment", "too_long"),
    ]


def test_kept_answers_are_checked_again() -> None:
    (step,) = plan_survey(("GAD-7",), [], rotating_item=None)
    full = {f"gad7_{i}": 1.0 for i in range(1, 8)}
    assert check_kept_answers(step, full) == full
    with pytest.raises(AnswerError, match="gad7_3"):
        check_kept_answers(step, {k: v for k, v in full.items() if k != "gad7_3"})
    with pytest.raises(AnswerError, match="phq9_1"):
        check_kept_answers(step, {**full, "phq9_1": 1.0})
    with pytest.raises(AnswerError, match="gad7_1"):
        check_kept_answers(step, {**full, "gad7_1": True})
    with pytest.raises(AnswerError, match="gad7_2"):
        check_kept_answers(step, {**full, "gad7_2": 4})


def _context(session: Session, raw: str) -> SurveyContext:
    link = find_survey_link(session, raw)
    assert link is not None
    return link.context


def test_the_link_lookup_finds_what_the_front_desks_lookup_finds(session: Session) -> None:
    link = make_link(session, language="es", goals=("Sleep",))
    other = issue_token(session, link.invitation, purpose="reminder")
    for raw in (link.raw, other):
        found = find_survey_link(session, raw)
        assert found is not None
        invitation = find_invitation_by_token(session, raw)
        assert invitation is not None
        assert found.invitation_id == invitation.id
        assert found.status == invitation.status
        assert found.context.episode_id == invitation.episode_id
        assert found.context.language == "es"
        assert found.context.goals == ("Sleep",)
        assert found.context.first_name == "Testa"
    for raw in (link.raw[:-1] + ("A" if link.raw[-1] != "A" else "B"), "short", link.raw + "=", ""):
        assert find_survey_link(session, raw) is None
        assert find_invitation_by_token(session, raw) is None


def test_link_states(session: Session) -> None:
    now = utcnow()
    assert link_state(None, now) is LinkState.UNKNOWN
    for status, expected in [
        ("sent", LinkState.OPEN),
        ("opened", LinkState.OPEN),
        ("started", LinkState.OPEN),
        ("completed", LinkState.USED),
        ("cancelled", LinkState.CANCELLED),
        ("expired", LinkState.EXPIRED),
        ("scheduled", LinkState.UNKNOWN),
        ("failed", LinkState.UNKNOWN),
    ]:
        link = make_link(session, status=status)
        assert link_state(find_survey_link(session, link.raw), now) is expected, status
    late = make_link(session, expires_in=timedelta(minutes=-5))  # well before `now`, however slow the machine
    assert link_state(late.invitation, now) is LinkState.EXPIRED


def test_opening_is_recorded_once(session: Session) -> None:
    link = make_link(session)
    assert mark_opened(session, link.invitation.id, utcnow()) is True
    assert mark_opened(session, link.invitation.id, utcnow()) is False


def test_submit_completes_once_and_refuses_the_second(session: Session) -> None:
    link = make_link(session, instruments=("GAD-7",))
    context = _context(session, link.raw)
    steps = plan_survey(context.instruments, context.goals, rotating_item=None)
    answers = {"GAD-7": {f"gad7_{i}": 2.0 for i in range(1, 8)}}
    submitted = submit_survey(session, context, steps, answers, language="en", now=utcnow())
    session.commit()
    assert len(submitted.administration_ids) == 1
    assert submitted.risk is False
    with pytest.raises(SurveyClosedError) as closed:
        submit_survey(session, context, steps, answers, language="en", now=utcnow())
    session.rollback()
    assert closed.value.state is LinkState.USED
    assert count_administrations(session, link.invitation.id) == 1


def test_bad_answers_raise_before_anything_is_written(session: Session) -> None:
    link = make_link(session, instruments=("PHQ-9",))
    context = _context(session, link.raw)
    steps = plan_survey(context.instruments, context.goals, rotating_item=None)
    with pytest.raises(AnswerError, match=r"phq9_2.*not answered"):
        submit_survey(session, context, steps, {"PHQ-9": {"phq9_1": 1.0}}, language="en", now=utcnow())
    assert invitation_row(session, link.invitation.id).status == "sent"
    assert count_administrations(session, link.invitation.id) == 0


def test_risk_is_reported_for_any_risk_item_above_zero(session: Session) -> None:
    link = make_link(session, instruments=("PHQ-9",))
    context = _context(session, link.raw)
    steps = plan_survey(context.instruments, context.goals, rotating_item=None)
    answers = {"PHQ-9": {f"phq9_{i}": 0.0 for i in range(1, 10)} | {"phq9_9": 1.0}}
    assert submit_survey(session, context, steps, answers, language="en", now=utcnow()).risk is True


def test_a_kiosk_handout_is_claimed_by_one_tablet(session: Session) -> None:
    link = make_link(session, channel="kiosk")
    now = utcnow()
    handout = next_kiosk_handout(session, now)
    assert handout is not None
    assert handout.invitation_id == link.invitation.id
    assert claim_kiosk_handout(session, handout, now) is True
    assert claim_kiosk_handout(session, handout, now) is False
    assert next_kiosk_handout(session, now) is None
    assert invitation_row(session, link.invitation.id).status == "started"


def test_only_kiosk_handouts_reach_the_kiosk(session: Session) -> None:
    make_link(session, channel="email")
    make_link(session, channel="kiosk", status="completed")
    make_link(session, channel="kiosk", expires_in=timedelta(seconds=-5))
    assert next_kiosk_handout(session, utcnow()) is None
