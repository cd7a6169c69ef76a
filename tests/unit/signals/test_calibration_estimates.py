"""CLINICAL.md section 6's estimates: pooled within-client SD, Cronbach's alpha and its RC, the 10th percentile."""

import math

import pytest

from services.calibration.estimates import (
    TooLittleData,
    calibrate_alliance,
    cronbach_alpha,
    pooled_within_client_sd,
)
from services.measures.reliable_change import rc


def test_the_pooled_sd_weights_each_client_by_their_degrees_of_freedom():
    # Client A deviations 1, -1 (SS 2, df 1); client B 2, 0, -2 (SS 8, df 2); one-session clients add nothing.
    assert pooled_within_client_sd([[37, 35], [38, 36, 34], [40]]) == pytest.approx(math.sqrt(10 / 3))
    with pytest.raises(TooLittleData):
        pooled_within_client_sd([[40], [39]])


def test_alpha_matches_the_textbook_formula():
    items = [[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 4, 6]]
    # item variances 5/3, 11/12, 5/3; totals 6, 9, 12, 14
    totals = [6, 9, 12, 14]
    mean = sum(totals) / 4
    total_variance = sum((t - mean) ** 2 for t in totals) / 3
    expected = 3 / 2 * (1 - (5 / 3 + 11 / 12 + 5 / 3) / total_variance)
    assert cronbach_alpha(items) == pytest.approx(expected)
    with pytest.raises(TooLittleData):
        cronbach_alpha([[10, 10], [10, 10]])


def test_calibration_gives_the_rc_of_its_alpha_and_the_tenth_percentile():
    series = [[36, 38, 37, 39], [30, 32, 31], [39, 40, 40, 38, 39]]
    items = [[9, 9, 9, 9], [7, 8, 8, 7], [10, 10, 9, 10], [8, 8, 7, 8], [9, 10, 10, 10], [6, 7, 7, 6]]
    result = calibrate_alliance(series, items)
    totals = sorted(value for client in series for value in client)
    assert result.sessions == len(totals) == 12
    assert result.clients == 3
    # The 10th percentile of [30, 31, 32, 36, ...], interpolated at position 1.1: 31 + 0.1 x (32 - 31).
    assert result.low_cutoff == pytest.approx(31.1)
    mean = sum(totals) / len(totals)
    sd = math.sqrt(sum((t - mean) ** 2 for t in totals) / (len(totals) - 1))
    assert result.reliable_change == pytest.approx(rc(sd, result.alpha))
    assert 0 < result.alpha < 1
