from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.signals import (
    COMPONENT_DROP,
    LOW_ALLIANCE,
    PERSPECTIVE_GAP,
    REPAIRED,
    REVIEW_REPEAT_ALERT,
    RUPTURE_DEV,
    RUPTURE_DROP,
    TENSION,
    UNREPAIRED,
    SignalSettings,
    alliance_signals,
    evaluate_alliance,
    silent_after_rupture,
)


def kinds(totals, **kwargs):
    return [[signal.kind for signal in session] for session in alliance_signals(totals, **kwargs)]


def test_tension_at_the_first_session_opens_with_the_current_total_as_baseline():
    result = evaluate_alliance([38, 38], tension=[2, 0])
    assert [[s.kind for s in session] for session in result.signals] == [[TENSION], [REPAIRED]]
    assert result.alerts[0].baseline == 38
    assert result.signals[0][0].evidence["tension"] == 2


def test_tension_below_the_threshold_is_not_a_signal():
    assert kinds([38, 38, 38], tension=[1, 1, None]) == [[], [], []]


def test_a_drop_with_one_earlier_session_uses_the_previous_total_as_baseline():
    result = evaluate_alliance([39, 33, 39])
    assert [[s.kind for s in session] for session in result.signals] == [
        [],
        [RUPTURE_DROP, LOW_ALLIANCE],
        [REPAIRED],
    ]
    assert result.alerts[0].baseline == 39


def test_perspective_gap_compares_therapist_and_client_totals_of_the_same_session():
    result = alliance_signals([38, 33, 38], therapist_totals=[38, 39, None])
    assert [[s.kind for s in session] for session in result] == [[], [PERSPECTIVE_GAP, LOW_ALLIANCE], [REPAIRED]]
    gap = result[1][0].evidence
    assert (gap["therapist_total"], gap["client_total"], gap["gap"]) == (39, 33, 6)


def test_component_drop_needs_two_earlier_sessions_and_names_the_largest_drop():
    # Session 2 drops two items by 4 with only one earlier session: no COMPONENT_DROP yet.
    items = [[10, 10, 10, 10], [6, 6, 10, 10], [9, 9, 4, 9]]
    result = alliance_signals([40, 32, 31], items=items)
    assert [[s.kind for s in session] for session in result] == [
        [],
        [RUPTURE_DROP, LOW_ALLIANCE],
        [COMPONENT_DROP, LOW_ALLIANCE],
    ]
    later = alliance_signals([40, 40, 40, 30], items=[*[[10, 10, 10, 10]] * 3, [7, 10, 3, 10]])
    assert [s.kind for s in later[3]] == [RUPTURE_DEV, RUPTURE_DROP, COMPONENT_DROP, LOW_ALLIANCE]
    drop = later[3][2]
    assert (drop.evidence["component"], drop.evidence["drop"]) == ("realistic_goals", 7)
    assert [c["component"] for c in drop.evidence["components"]] == ["realistic_goals", "rapport"]


def test_a_missing_total_counts_as_a_session_but_feeds_no_total_rule():
    result = evaluate_alliance([36, 37, 38, 29, None, None, 30], tension=[0, 0, 0, 0, 3, 0, 0])
    assert [[s.kind for s in session] for session in result.signals] == [
        [],
        [],
        [],
        [RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE],
        [TENSION],
        [],
        [LOW_ALLIANCE, UNREPAIRED],
    ]


def test_a_drop_after_a_missing_session_compares_with_the_last_observed_total():
    assert kinds([38, None, 32]) == [[], [], [RUPTURE_DROP, LOW_ALLIANCE]]


def test_an_alert_opened_with_no_total_at_all_cannot_be_repaired():
    result = evaluate_alliance([None, 39, 40, 40, 40], tension=[3, 0, 0, 0, 0])
    assert result.alerts[0].baseline is None
    assert [[s.kind for s in session] for session in result.signals] == [[TENSION], [], [], [UNREPAIRED], []]


def test_unrepaired_is_emitted_once_and_a_later_repair_still_closes_the_alert():
    result = evaluate_alliance([36, 37, 38, 29, 30, 31, 32, 33, 37])
    flat = [[s.kind for s in session] for session in result.signals]
    assert sum(UNREPAIRED in session for session in flat) == 1
    assert flat[8] == [REPAIRED]
    assert result.alerts[0].repaired_session == 9


def test_a_second_alert_within_four_sessions_calls_for_a_review():
    result = evaluate_alliance([38, 38, 38, 38], tension=[2, 0, 3, 0])
    assert [alert.opened_session for alert in result.alerts] == [1, 3]
    assert [(review.session, review.reason) for review in result.reviews] == [(3, REVIEW_REPEAT_ALERT)]


def test_later_opening_signals_add_evidence_to_the_open_alert():
    result = evaluate_alliance([38, 38, 30, 30, 30], tension=[0, 0, 0, 3, 0])
    assert len(result.alerts) == 1
    tension = result.signals[3][0]
    assert tension.kind == TENSION
    assert (tension.evidence["alert"], tension.evidence["opened_session"]) == ("added", 3)


def test_the_low_cutoff_operator_is_a_setting():
    assert kinds([36, 36]) == [[], []]
    assert kinds([36, 36], settings=SignalSettings(low_cutoff_operator="<=")) == [[LOW_ALLIANCE], [LOW_ALLIANCE]]


def test_low_alliance_never_opens_an_alert():
    result = evaluate_alliance([20, 20, 20, 20])
    assert all(session == [] or [s.kind for s in session] == [LOW_ALLIANCE] for session in result.signals)
    assert result.alerts == ()


def test_a_smaller_k_and_floor_flag_smaller_dips():
    totals = [38, 39, 38, 39, 35]
    assert kinds(totals) == [[], [], [], [], [LOW_ALLIANCE]]
    strict = SignalSettings(k=1.0, sd_floor=2.0)
    assert kinds(totals, settings=strict) == [[], [], [], [], [RUPTURE_DEV, LOW_ALLIANCE]]


def test_signals_know_their_alert_role_severity_and_source():
    (dev, drop, low) = alliance_signals([34, 36, 37, 36, 27])[4]
    assert dev.opens_alert
    assert drop.opens_alert
    assert not low.opens_alert
    assert (dev.severity, low.severity) == ("amber", "info")
    assert not dev.is_design_rule
    (component,) = alliance_signals([40, 40, 40, 36], items=[*[[10, 10, 10, 10]] * 3, [10, 6, 10, 10]])[3]
    assert component.is_design_rule


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"totals": [38, float("nan")]}, ValueError, r"totals\[1\] must be finite"),
        ({"totals": [38, True]}, TypeError, r"totals\[1\] must be a number"),
        ({"totals": [38, 38], "tension": [0]}, ValueError, "tension has 1 sessions but totals has 2"),
        ({"totals": [38], "items": [[10, 10, 10]]}, ValueError, r"items\[0\] has 3 scores, expected 4"),
        ({"totals": [38], "therapist_totals": ["38"]}, TypeError, r"therapist_totals\[0\] must be a number"),
    ],
)
def test_malformed_input_is_refused(kwargs, error, message):
    totals = kwargs.pop("totals")
    with pytest.raises(error, match=message):
        alliance_signals(totals, **kwargs)


def test_silence_after_a_rupture_starts_at_fourteen_days():
    last = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert not silent_after_rupture(last, last + timedelta(days=13, hours=23, minutes=59))
    assert silent_after_rupture(last, last + timedelta(days=14))
    assert not silent_after_rupture(last, last + timedelta(days=20), SignalSettings(silence_days=21))
    madrid = timezone(timedelta(hours=1))
    assert silent_after_rupture(last, datetime(2025, 3, 15, 10, 0, tzinfo=madrid))


def test_silence_needs_timezone_aware_times():
    with pytest.raises(ValueError, match="last_administration_at must be timezone-aware"):
        silent_after_rupture(datetime(2025, 3, 1), datetime(2025, 3, 20, tzinfo=UTC))
