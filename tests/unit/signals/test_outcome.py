import json
from pathlib import Path

import pytest

from services.measures import AnswerError, load_instrument_file
from services.signals import (
    NOT_ON_TRACK,
    OFF_TRACK,
    RELIABLE_DETERIORATION,
    RISK,
    SignalSettings,
    TrajectoryModel,
    episode_outcome,
    outcome_signals,
)

FIXTURES = Path(__file__).parents[1] / "measures" / "fixtures"


def kinds(per_session):
    return [[signal.kind for signal in session] for session in per_session]


def test_o3_reliable_recovery():
    result = episode_outcome(18, 8, 14, 7)
    assert result.caseness_start
    assert result.reliable_improvement
    assert not result.reliable_deterioration
    assert result.recovery
    assert result.reliable_recovery
    assert (result.phq9_change, result.gad7_change) == (-10, -7)


def test_o4_reliable_deterioration_not_recovered():
    result = episode_outcome(12, 9, 6, 11)
    assert result.caseness_start
    assert result.reliable_deterioration
    assert not result.reliable_improvement
    assert not result.recovery
    assert not result.reliable_recovery


def test_recovery_without_reliable_improvement():
    result = episode_outcome(11, 8, 7, 6)
    assert (result.recovery, result.reliable_improvement, result.reliable_recovery) == (True, False, False)


def test_opposite_reliable_changes_cancel_both_labels():
    result = episode_outcome(20, 13, 5, 10)
    assert not result.reliable_improvement
    assert not result.reliable_deterioration


def test_not_a_case_at_the_start_cannot_recover():
    result = episode_outcome(9, 2, 7, 1)
    assert (result.caseness_start, result.recovery, result.reliable_improvement) == (False, False, True)


def test_the_gad7_caseness_cutoff_is_a_setting():
    nhs = episode_outcome(5, 3, 9, 6)
    assert nhs.caseness_start
    assert nhs.recovery
    elsewhere = episode_outcome(5, 3, 9, 6, settings=SignalSettings(cutoff_overrides={"GAD-7": 10}))
    assert not elsewhere.caseness_start


def test_episode_scores_outside_the_ranges_are_refused():
    with pytest.raises(ValueError, match="PHQ-9 last score 28"):
        episode_outcome(10, 28, 5, 5)


def test_reliable_deterioration_is_measured_from_the_first_score():
    per_session = outcome_signals([12, 15, 17, 18, 11], instrument="PHQ-9")
    assert kinds(per_session) == [[], [], [], [RELIABLE_DETERIORATION, NOT_ON_TRACK], []]
    evidence = per_session[3][0].evidence
    assert (evidence["first"], evidence["score"], evidence["worse_by"], evidence["rc"]) == (12, 18, 6, 6)
    assert per_session[3][0].severity == "red"


def test_reliable_deterioration_is_direction_aware_for_higher_better_instruments():
    ors = load_instrument_file(FIXTURES / "ors_like.json")
    per_session = outcome_signals([24.0, 30.0, 19.0, 18.9, 30.0], instrument=ors)
    assert kinds(per_session) == [[], [], [RELIABLE_DETERIORATION], [RELIABLE_DETERIORATION, NOT_ON_TRACK], []]
    assert per_session[2][0].evidence["worse_by"] == 5


@pytest.mark.parametrize(
    ("scores", "fires"),
    [
        ([16, 15, 15, 14], True),  # improved by 2 < 3, still >= 10
        ([16, 15, 14, 13], False),  # improved by 3: not < 3
        ([12, 12, 11, 9], False),  # below the cutoff at the checkpoint
        ([16, 16, 16, 10], False),  # improved by 6
        ([10, 11, 12, 12], True),  # worse, still a case
    ],
)
def test_not_on_track_fires_only_at_the_checkpoint(scores, fires):
    per_session = outcome_signals([*scores, scores[-1]], instrument="PHQ-9")
    assert [NOT_ON_TRACK in session for session in kinds(per_session)] == [False, False, False, fires, False]
    if fires:
        evidence = per_session[3][-1].evidence
        assert (evidence["needed"], evidence["tier"], evidence["heuristic"]) == (3.0, "rational", True)


def test_not_on_track_for_a_higher_better_instrument_means_still_below_its_cutoff():
    ors = load_instrument_file(FIXTURES / "ors_like.json")
    assert NOT_ON_TRACK in kinds(outcome_signals([18.0, 19.0, 19.5, 20.0], instrument=ors))[3]
    assert kinds(outcome_signals([18.0, 19.0, 19.5, 25.0], instrument=ors))[3] == []
    assert kinds(outcome_signals([18.0, 19.0, 19.5, 20.5], instrument=ors))[3] == []  # improved by 2.5


def test_o5_off_track_replaces_the_rational_tier_when_a_model_is_fitted():
    model = TrajectoryModel(b0=0.0, b1=1.0, b2=-4.0, b3=0.0, sigma_pred=4.0)
    per_session = outcome_signals([20, 19, 18, 18, 19, 18], instrument="PHQ-9", model=model)
    # Boundaries for a first score of 20 at t = 1..5: 22.35, 20.73, 19.58, 18.69, 17.96.
    assert [OFF_TRACK in session for session in kinds(per_session)] == [False, False, False, False, True, True]
    assert not any(NOT_ON_TRACK in session for session in kinds(per_session))
    at_t4 = per_session[4][0].evidence
    assert at_t4["t"] == 4
    assert round(at_t4["expected"], 3) == 13.562
    assert round(at_t4["boundary"], 2) == 18.69
    on_track = outcome_signals([20, 15, 14, 13, 18], instrument="PHQ-9", model=model)
    assert kinds(on_track)[4] == []


def test_risk_fires_on_any_positive_risk_answer_even_when_the_total_is_missing():
    per_session = outcome_signals(
        [14, None, 12],
        instrument="PHQ-9",
        risk_answers=[{"phq9_9": 0, "phq9_1": 3}, {"phq9_9": 2}, {"phq9_9": None}],
    )
    assert kinds(per_session) == [[], [RISK], []]
    risk = per_session[1][0]
    assert (risk.evidence["item"], risk.evidence["answer"], risk.evidence["escalate_after_minutes"]) == (
        "phq9_9",
        2,
        60,
    )
    assert risk.severity == "risk"


def test_core10_risk_item_is_read_from_its_definition():
    per_session = outcome_signals([20], instrument="CORE-10", risk_answers=[{"core10_6": 1}])
    assert per_session[0][0].evidence["items"] == {"core10_6": 1}


def test_a_risk_answer_outside_its_values_is_rejected_naming_the_item():
    with pytest.raises(AnswerError, match="PHQ-9 item 'phq9_9': answer 5 is not allowed"):
        outcome_signals([10], instrument="PHQ-9", risk_answers=[{"phq9_9": 5}])


def test_scores_outside_the_instrument_range_are_refused():
    with pytest.raises(ValueError, match=r"scores\[1\] = 28 lies outside the PHQ-9 range 0-27"):
        outcome_signals([10, 28], instrument="PHQ-9")


def test_evidence_is_plain_json():
    model = TrajectoryModel(b0=0.0, b1=1.0, b2=-4.0, b3=0.0, sigma_pred=4.0)
    per_session = outcome_signals(
        [20, 26, 19, 19, 19], instrument="PHQ-9", model=model, risk_answers=[None, {"phq9_9": 1}, None, None, None]
    )
    for session in per_session:
        for signal in session:
            json.dumps(signal.evidence)


def _not_on_track_sessions(scores: list[float | None], **changes: object) -> list[int]:
    cfg = SignalSettings(**changes)  # type: ignore[arg-type]
    per_session = outcome_signals(scores, instrument="PHQ-9", settings=cfg)
    return [i + 1 for i, session in enumerate(per_session) if any(s.kind == NOT_ON_TRACK for s in session)]


def test_the_checkpoint_counts_administrations_from_the_first_score():
    # Two incomplete administrations before the first score: the fourth administration from the first score is
    # episode session 6, not session 4.
    assert _not_on_track_sessions([None, None, 18, 18, 17, 17, 17]) == [6]
    assert _not_on_track_sessions([18, 18, 17, 17, 17]) == [4]


def test_an_incomplete_checkpoint_defers_the_check_to_the_next_complete_score_once():
    assert _not_on_track_sessions([18, 18, 17, None, 17, 17, 17]) == [5]
    assert _not_on_track_sessions([18, 18, 17, None, None, 16, 16]) == [6]
    # Deferred, and improved enough by then: no flag, and no second chance later.
    assert _not_on_track_sessions([18, 18, 17, None, 14, 18, 18]) == []


def test_the_checkpoint_is_a_setting():
    assert _not_on_track_sessions([18, 18, 17, 17, 17, 17], not_on_track_checkpoint=6) == [6]
    assert _not_on_track_sessions([18, 17, 17], not_on_track_checkpoint=6) == []
