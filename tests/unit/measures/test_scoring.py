import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.measures import (
    AnswerError,
    Instrument,
    all_instruments,
    load_instrument,
    load_instrument_file,
    score_administration,
)
from services.measures.instrument import Item


def _phq9(answers: list[int | None]) -> dict[str, int | None]:
    return {f"phq9_{i}": value for i, value in enumerate(answers, start=1)}


def test_a_complete_phq9_is_the_sum_with_its_band():
    result = score_administration(load_instrument("PHQ-9"), _phq9([1, 2, 1, 2, 1, 0, 1, 1, 1]))
    assert result.status == "complete"
    assert result.total == 10
    assert result.band is not None
    assert result.band.label["en"] == "Moderate"
    assert result.clinical is True
    assert result.risk_positive == ("phq9_9",)
    assert result.risk_unanswered == ()


@pytest.mark.parametrize(
    ("answers", "total"),
    [
        # 4 x 9/8 = 4.5 -> 5 (half up; banker's rounding would give 4)
        ([1, 1, 1, 1, 0, 0, 0, None, 0], 5),
        # 20 x 9/8 = 22.5 -> 23
        ([3, 3, 3, 3, 3, 3, 2, None, 0], 23),
        # 13 x 9/8 = 14.625 -> 15
        ([3, 3, 3, 1, 1, 1, 1, 0, None], 15),
    ],
)
def test_one_missing_phq9_item_is_prorated_and_rounded_half_up(answers, total):
    result = score_administration(load_instrument("PHQ-9"), _phq9(answers))
    assert result.status == "prorated"
    assert result.total == total
    assert result.answered == 8


def test_gad7_proration_rounds_half_up():
    # 9 x 7/6 = 10.5 -> 11
    answers = {f"gad7_{i}": value for i, value in enumerate([3, 3, 3, 0, 0, 0, None], start=1)}
    result = score_administration(load_instrument("GAD-7"), answers)
    assert (result.status, result.total) == ("prorated", 11)


def test_two_missing_items_leave_the_administration_incomplete():
    result = score_administration(load_instrument("PHQ-9"), _phq9([3, 3, 3, 3, 3, 3, 3, None, None]))
    assert result.status == "incomplete"
    assert result.total is None
    assert result.is_scored is False
    assert result.clinical is None
    assert result.band is None
    assert result.missing == ("phq9_8", "phq9_9")


def test_an_unanswered_risk_item_is_reported_and_never_imputed():
    result = score_administration(load_instrument("PHQ-9"), _phq9([2, 2, 2, 2, 2, 2, 2, 2, None]))
    assert result.total == 18
    assert result.risk_unanswered == ("phq9_9",)
    assert result.risk_positive == ()
    assert "phq9_9" not in result.values


def test_core10_reverses_its_positively_worded_items():
    core10 = load_instrument("CORE-10")
    all_zero = score_administration(core10, {f"core10_{i}": 0 for i in range(1, 11)})
    assert all_zero.total == 8
    assert all_zero.values["core10_2"] == 4
    assert all_zero.values["core10_3"] == 4
    assert all_zero.band is not None
    assert all_zero.band.label["en"] == "Low level"


def test_partnership_check_total_components_and_unscored_items():
    check = load_instrument("PARTNERSHIP-CHECK")
    result = score_administration(
        check,
        {
            "pc_rapport": 9,
            "pc_mutual_goals": 7,
            "pc_realistic_goals": 8,
            "pc_shared_responsibility": 10,
            "pc_tension": 2,
            "pc_comment": "  Slower, please.  ",
            "pc_element_hope": 6,
        },
    )
    assert result.total == 34
    assert result.clinical is True
    assert dict(result.components) == {
        "rapport": 9,
        "mutual_goals": 7,
        "realistic_goals": 8,
        "shared_responsibility": 10,
    }
    assert result.answers["pc_tension"] == 2
    assert result.answers["pc_comment"] == "Slower, please."


def test_a_partnership_check_with_a_skipped_component_is_incomplete():
    result = score_administration(
        load_instrument("PARTNERSHIP-CHECK"), {"pc_rapport": 9, "pc_mutual_goals": 7, "pc_realistic_goals": 8}
    )
    assert result.status == "incomplete"
    assert result.components["shared_responsibility"] is None


def test_slider_decimals_add_up_exactly(srs_like):
    result = score_administration(srs_like, {"srs_1": 9.7, "srs_2": 9.6, "srs_3": 9.5, "srs_4": 9.4})
    assert result.total == 38.2
    assert result.clinical is False
    low = score_administration(srs_like, {"srs_1": 9.0, "srs_2": 9.0, "srs_3": 9.0, "srs_4": 8.9})
    assert low.total == 35.9
    assert low.clinical is True


def test_goal_progress_averages_the_goals_that_were_set():
    goals = load_instrument("GOAL-PROGRESS")
    one = score_administration(goals, {"goal_1": 4}, not_applicable={"goal_2", "goal_3"})
    assert (one.status, one.total) == ("complete", 4)
    three = score_administration(goals, {"goal_1": 7, "goal_2": 8, "goal_3": 8})
    assert three.total == 7.7
    two = score_administration(goals, {"goal_1": 7, "goal_2": 8}, not_applicable={"goal_3"})
    assert two.total == 7.5
    missing = score_administration(goals, {"goal_1": 7}, not_applicable={"goal_3"})
    assert missing.status == "incomplete"


def test_an_answer_to_an_item_not_asked_is_refused():
    with pytest.raises(AnswerError, match="'goal_3': was answered but marked as not asked"):
        score_administration(load_instrument("GOAL-PROGRESS"), {"goal_1": 7, "goal_3": 2}, not_applicable={"goal_3"})


def test_subscales_follow_their_own_missing_rule(oq_like):
    answers: dict[str, int | None] = {f"oq_{i}": 1 for i in range(1, 46)}
    answers["oq_4"] = None
    answers["oq_12"] = None
    result = score_administration(oq_like, answers)
    # Reversed items answered 1 score 3. Total: 8 reversed x 3 + 35 x 1 = 59 over 43 answered -> 59 x 45/43 = 61.7.
    assert (result.status, result.total) == ("prorated", 62)
    assert result.subscales["symptom_distress"] == 3 * 3 + 22  # reversed 13, 24, 31
    assert result.subscales["interpersonal_relations"] == 4 * 3 + 7  # reversed 1, 20, 37, 43
    assert result.subscales["social_role"] is None  # two of its items missing, one tolerated


@pytest.mark.parametrize(
    ("code", "item_id", "answer", "expected"),
    [
        ("PHQ-9", "phq9_9", 4, "PHQ-9 item 'phq9_9': answer 4 is not allowed; expected one of 0, 1, 2, 3"),
        ("PHQ-9", "phq9_2", -1, "PHQ-9 item 'phq9_2': answer -1 is not allowed"),
        ("PHQ-9", "phq9_2", 1.5, "PHQ-9 item 'phq9_2': answer 1.5 is not allowed"),
        ("PHQ-9", "phq9_2", True, "PHQ-9 item 'phq9_2': expected a number"),
        ("PHQ-9", "phq9_2", "2", "PHQ-9 item 'phq9_2': expected a number"),
        ("PHQ-9", "phq9_2", math.nan, "PHQ-9 item 'phq9_2': answer nan is not allowed"),
        ("PHQ-9", "phq9_10", 1, "PHQ-9 item 'phq9_10': is not an item of PHQ-9"),
        ("PARTNERSHIP-CHECK", "pc_rapport", 11, "item 'pc_rapport': answer 11 is not allowed; expected 0 to 10"),
        ("PARTNERSHIP-CHECK", "pc_rapport", 7.5, "item 'pc_rapport': answer 7.5 is not allowed"),
        ("PARTNERSHIP-CHECK", "pc_tension", 4, "item 'pc_tension': answer 4 is not allowed"),
        ("PARTNERSHIP-CHECK", "pc_comment", 3, "item 'pc_comment': expected text"),
        ("PARTNERSHIP-CHECK", "pc_comment", "x" * 2001, "item 'pc_comment': is longer than 2000 characters"),
    ],
)
def test_an_answer_outside_the_allowed_values_is_rejected_naming_the_item(code, item_id, answer, expected):
    with pytest.raises(AnswerError, match=expected.replace("(", r"\(").replace(")", r"\)")) as caught:
        score_administration(load_instrument(code), {item_id: answer})
    assert caught.value.item_id == item_id
    assert isinstance(caught.value, ValueError)


def test_a_slider_answer_off_its_step_is_rejected(srs_like):
    with pytest.raises(
        AnswerError, match=r"SRS-LIKE item 'srs_3': answer 7.35 is not allowed; expected 0 to 10 in steps"
    ):
        score_administration(srs_like, {"srs_3": 7.35})


def _instruments() -> list[Instrument]:
    fixtures = sorted((Path(__file__).parent / "fixtures").glob("*.json"))
    return [*all_instruments(), *(load_instrument_file(path) for path in fixtures)]


INSTRUMENTS = _instruments()


def _allowed_values(item: Item) -> st.SearchStrategy[float]:
    if item.range is not None:
        steps = round((item.range.max - item.range.min) / item.range.step)
        low, step = item.range.min, item.range.step
        return st.integers(0, steps).map(lambda n: round(low + n * step, 6))
    return st.sampled_from([option.value for option in item.options])


@st.composite
def _administration(draw: st.DrawFn) -> tuple[Instrument, dict[str, float | None]]:
    instrument = draw(st.sampled_from(INSTRUMENTS))
    answers: dict[str, float | None] = {}
    for item in instrument.items:
        if item.type == "text":
            continue
        answers[item.id] = draw(st.none() | _allowed_values(item))
    return instrument, answers


@given(_administration())
def test_totals_always_lie_within_the_instrument_range(case):
    instrument, answers = case
    result = score_administration(instrument, answers)
    if result.total is not None:
        assert instrument.range_min <= result.total <= instrument.range_max
    for value in result.subscales.values():
        if value is not None:
            assert instrument.range_min <= value <= instrument.range_max
    assert result.status == "incomplete" or len(result.missing) <= instrument.scoring.missing_tolerated


@st.composite
def _bad_answer(draw: st.DrawFn) -> tuple[Instrument, str, object]:
    instrument = draw(st.sampled_from(INSTRUMENTS))
    item = draw(st.sampled_from([item for item in instrument.items if item.type != "text"]))
    value = draw(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-1000, 1000),
            st.booleans(),
            st.text(max_size=3),
        ).filter(
            lambda v: (
                isinstance(v, (bool, str))
                or not (isinstance(v, int | float) and math.isfinite(v) and item.allows(float(v)))
            )
        )
    )
    return instrument, item.id, value


@given(_bad_answer())
def test_any_answer_outside_the_allowed_values_is_rejected_naming_the_item(case):
    instrument, item_id, value = case
    with pytest.raises(AnswerError) as caught:
        score_administration(instrument, {item_id: value})
    assert f"item '{item_id}'" in str(caught.value)
    assert caught.value.item_id == item_id
