"""The worked examples of CLINICAL.md section 3, with their exact numbers."""

import pytest

from services.signals import (
    COMPONENT_DROP,
    LOW_ALLIANCE,
    REPAIRED,
    REVIEW_UNREPAIRED,
    RUPTURE_DEV,
    RUPTURE_DROP,
    UNREPAIRED,
    Signal,
    alliance_alert_state,
    alliance_signals,
    deviation_stats,
    evaluate_alliance,
)


def kinds(per_session: list[list[Signal]]) -> list[list[str]]:
    return [[signal.kind for signal in session] for session in per_session]


def evidence(per_session: list[list[Signal]], session: int, kind: str) -> dict[str, object]:
    (match,) = [signal for signal in per_session[session - 1] if signal.kind == kind]
    assert match.session == session
    return dict(match.evidence)


def test_b1_rupture_opens_an_alert_that_is_repaired_at_session_7():
    totals = [34, 36, 37, 36, 27, 31, 36, 37]
    result = evaluate_alliance(totals)
    assert kinds(result.signals) == [
        [LOW_ALLIANCE],
        [],
        [],
        [],
        [RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [REPAIRED],
        [],
    ]
    dev = evidence(result.signals, 5, RUPTURE_DEV)
    assert (dev["m"], dev["s"], dev["threshold"], dev["score"]) == (35.75, 3.0, 29.75, 27)
    assert dev["alert"] == "opened"
    assert dev["baseline"] == 35.75
    assert evidence(result.signals, 5, RUPTURE_DROP)["drop"] == 9
    assert evidence(result.signals, 5, LOW_ALLIANCE)["alert"] == "added"
    assert "alert" not in evidence(result.signals, 1, LOW_ALLIANCE)
    assert evidence(result.signals, 6, LOW_ALLIANCE)["alert"] == "added"
    repaired = evidence(result.signals, 7, REPAIRED)
    assert (repaired["score"], repaired["baseline"], repaired["opened_session"]) == (36, 35.75, 5)
    (alert,) = result.alerts
    assert (alert.opened_session, alert.baseline, alert.repaired_session) == (5, 35.75, 7)
    assert alert.opening_kinds == (RUPTURE_DEV, RUPTURE_DROP)
    assert result.open_alert is None
    assert result.reviews == ()


def test_b2_ceiling_scores_give_no_signal_at_all():
    totals = [39, 40, 39, 40, 38, 40]
    assert kinds(alliance_signals(totals)) == [[], [], [], [], [], []]
    at_5 = deviation_stats(totals[:4], totals[4])
    assert (at_5.m, at_5.s, at_5.threshold, at_5.fires) == (39.5, 3.0, 33.5, False)
    assert at_5.sd < 3.0
    assert totals[3] - totals[4] == 2


def test_b3_unrepaired_after_three_further_sessions_schedules_a_review():
    totals = [36, 37, 38, 29, 30, 31, 32]
    result = evaluate_alliance(totals)
    assert kinds(result.signals) == [
        [],
        [],
        [],
        [RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [LOW_ALLIANCE, UNREPAIRED],
    ]
    assert evidence(result.signals, 4, RUPTURE_DEV)["baseline"] == 37
    unrepaired = evidence(result.signals, 7, UNREPAIRED)
    assert (unrepaired["opened_session"], unrepaired["baseline"], unrepaired["sessions_open"]) == (4, 37, 3)
    assert [(review.session, review.reason) for review in result.reviews] == [(7, REVIEW_UNREPAIRED)]
    open_alert = alliance_alert_state(totals)
    assert open_alert is not None
    assert (open_alert.opened_session, open_alert.unrepaired_session) == (4, 7)


def test_b4_component_drop_opens_an_alert_that_totals_miss():
    totals = [40, 40, 39, 36]
    items = [[10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 9, 10], [10, 6, 10, 10]]
    result = evaluate_alliance(totals, items=items)
    assert kinds(result.signals) == [[], [], [], [COMPONENT_DROP]]
    assert kinds(alliance_signals(totals)) == [[], [], [], []]
    at_4 = deviation_stats(totals[:3], totals[3])
    assert round(at_4.m, 2) == 39.67
    assert round(at_4.threshold, 2) == 33.67
    assert at_4.fires is False
    assert totals[2] - totals[3] == 3
    drop = evidence(result.signals, 4, COMPONENT_DROP)
    assert (drop["component"], drop["score"], drop["mean"], drop["drop"]) == ("mutual_goals", 6, 10, 4)
    assert drop["alert"] == "opened"
    assert round(drop["baseline"], 2) == 39.67
    assert result.open_alert is not None
    assert result.open_alert.baseline == pytest.approx(119 / 3)


def test_a1_sd_floor_keeps_a_small_dip_on_a_tight_series_from_flagging():
    totals = [38.0, 38.5, 37.8, 33.0, 37.9]
    result = evaluate_alliance(totals)
    assert kinds(result.signals) == [[], [], [], [LOW_ALLIANCE], []]
    assert result.alerts == ()
    at_4 = deviation_stats(totals[:3], totals[3])
    assert round(at_4.sd, 2) == 0.36
    assert at_4.z_raw is not None
    assert round(at_4.z_raw) == -14
    assert round(at_4.threshold, 1) == 32.1
    assert at_4.fires is False
