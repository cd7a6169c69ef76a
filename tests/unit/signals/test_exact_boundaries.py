"""'At or below m - k*s' and 'at or above the baseline' hold exactly for decimal totals (CLINICAL.md section 3)."""

from fractions import Fraction

from hypothesis import assume, example, given
from hypothesis import strategies as st

from services.signals import (
    REPAIRED,
    RUPTURE_DEV,
    SignalSettings,
    deviation_stats,
    evaluate_alliance,
    outcome_signals,
)
from services.signals.alliance import repaired_against

tenths = st.integers(200, 400).map(lambda n: Fraction(n, 10))
hundredths = st.integers(2000, 4000).map(lambda n: Fraction(n, 100))


def test_the_worked_boundary_30_6_against_36_6_with_s_3_is_a_deviation():
    # 36.6 - 2 x 3.0 is 30.599999999999998 in binary floating point: the old engine said no.
    at = deviation_stats([35.6, 37.6], 30.6)
    assert (at.m, at.s, at.fires) == (36.6, 3.0, True)
    assert not deviation_stats([35.6, 37.6], 30.601).fires
    per_session = evaluate_alliance([36.6, 36.6, 36.6, 30.6]).signals
    assert RUPTURE_DEV in [signal.kind for signal in per_session[3]]


def test_the_worked_boundary_39_4_against_a_baseline_of_39_4_is_repaired():
    result = evaluate_alliance([39.3, 39.5, 30.0, 39.4])
    assert result.alerts[0].opened_session == 3
    assert result.alerts[0].baseline == 39.4
    assert [signal.kind for signal in result.signals[3]] == [REPAIRED]
    assert result.alerts[0].repaired_session == 4
    assert evaluate_alliance([39.3, 39.5, 30.0, 39.39]).alerts[0].repaired_session is None
    assert repaired_against(39.4, [39.3, 39.5])
    assert not repaired_against(39.39, [39.3, 39.5])


@st.composite
def level_series(draw: st.DrawFn) -> list[Fraction]:
    """Two to seven totals in tenths around a level, whose mean is exactly that level."""
    level = draw(tenths)
    offsets = draw(st.lists(st.integers(-5, 5).map(lambda n: Fraction(n, 10)), min_size=1, max_size=6))
    return [level + offset for offset in offsets] + [level - sum(offsets)]


@given(
    earlier=level_series(),
    k=st.sampled_from([Fraction(1), Fraction(3, 2), Fraction(2), Fraction(5, 2)]),
    floor=st.sampled_from([Fraction(2), Fraction(5, 2), Fraction(3), Fraction(7, 2)]),
)
@example(earlier=[Fraction(366, 10)] * 3, k=Fraction(2), floor=Fraction(3))
def test_a_total_exactly_at_m_minus_k_floor_fires_and_one_thousandth_above_does_not(earlier, k, floor):
    n = len(earlier)
    mean = sum(earlier) / n
    variance = sum((x - mean) ** 2 for x in earlier) / (n - 1)
    assume(variance < floor * floor)  # s is the floor
    boundary = mean - k * floor  # at most three decimals
    cfg = SignalSettings(k=float(k), sd_floor=float(floor))
    values = [float(x) for x in earlier]
    assert deviation_stats(values, float(boundary), cfg).fires
    assert not deviation_stats(values, float(boundary + Fraction(1, 1000)), cfg).fires
    assert deviation_stats(values, float(boundary - Fraction(1, 1000)), cfg).fires


@given(
    middle=hundredths,
    spread=st.integers(301, 900).map(lambda n: Fraction(n, 100)),
    k=st.sampled_from([Fraction(1), Fraction(3, 2), Fraction(2)]),
)
def test_a_total_exactly_at_m_minus_k_sd_fires_when_the_sd_is_above_the_floor(middle, spread, k):
    # Three equally spaced totals have SD equal to their spacing: a rational s above the floor of 3.
    earlier = [middle - spread, middle, middle + spread]
    boundary = middle - k * spread
    cfg = SignalSettings(k=float(k))
    values = [float(x) for x in earlier]
    at = deviation_stats(values, float(boundary), cfg)
    assert at.fires
    assert at.s == float(spread)
    assert not deviation_stats(values, float(boundary + Fraction(1, 100)), cfg).fires


@given(
    level=hundredths,
    steps=st.lists(st.integers(0, 100).map(lambda n: Fraction(n, 100)), min_size=1, max_size=6),
    dip=st.integers(100, 200),
)
def test_a_return_exactly_to_the_baseline_repairs_and_just_below_does_not(level, steps, dip):
    earlier = [level + step for step in steps]  # within one point: no signal before the dip
    baseline = sum(earlier) / len(earlier)
    assume((baseline * 1000).denominator == 1)
    low = float(min(earlier) - dip / 10)  # far below: RUPTURE_DROP at least (RC 5.37), whatever the history
    assume(low >= 0)
    series = [float(x) for x in earlier]
    back = evaluate_alliance([*series, low, float(baseline)])
    assert back.alerts[0].opened_session == len(earlier) + 1
    assert back.alerts[0].repaired_session == len(earlier) + 2
    short = evaluate_alliance([*series, low, float(baseline - Fraction(1, 1000))])
    assert short.alerts[0].repaired_session is None


@given(first=st.integers(10, 21), checkpoint_drop=st.sampled_from([Fraction(3), Fraction(29, 10)]))
def test_the_outcome_thresholds_are_exact_too(first, checkpoint_drop):
    # PHQ-9: improved by less than 3 (half of 6) at the fourth score is NOT_ON_TRACK; exactly 3 is not.
    scores = [float(first), float(first), float(first), float(first - checkpoint_drop)]
    kinds = [signal.kind for signal in outcome_signals(scores, instrument="PHQ-9")[3]]
    assert ("NOT_ON_TRACK" in kinds) == (checkpoint_drop < 3 and first - checkpoint_drop >= 10)
