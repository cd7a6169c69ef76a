import math

import numpy as np
import pytest

from services.signals import (
    InsufficientEpisodesError,
    SignalSettings,
    TrajectoryModel,
    expected_score,
    fit_expected_trajectory,
    off_track,
    off_track_boundary,
)

O5 = TrajectoryModel(b0=0.0, b1=1.0, b2=-4.0, b3=0.0, sigma_pred=4.0)


def test_o5_expected_score_and_boundary():
    assert round(expected_score(O5, 20, 4), 3) == 13.562
    assert round(off_track_boundary(O5, 20, 4), 2) == 18.69
    assert off_track(O5, 20, 4, 19)
    assert not off_track(O5, 20, 4, 18.6)


def test_the_boundary_is_mirrored_for_higher_better_instruments():
    model = TrajectoryModel(b0=0.0, b1=1.0, b2=4.0, b3=0.0, sigma_pred=2.0)
    boundary = off_track_boundary(model, 20, 4, direction="higher_better")
    assert boundary == pytest.approx(20 + 4 * math.log(5) - 1.2816 * 2)
    assert off_track(model, 20, 4, boundary - 0.01, direction="higher_better")
    assert not off_track(model, 20, 4, boundary + 0.01, direction="higher_better")


def _episodes(rng: np.random.Generator, count: int, sigma: float) -> list[list[float | None]]:
    episodes: list[list[float | None]] = []
    for _ in range(count):
        y0 = float(rng.uniform(10, 27))
        length = int(rng.integers(2, 16))
        episode: list[float | None] = [y0]
        for t in range(1, length):
            mean = 1.0 + 0.95 * y0 + (-1.0 - 0.15 * y0) * math.log(t + 1)
            missing = t > 1 and rng.random() < 0.05
            episode.append(None if missing else mean + sigma * float(rng.standard_normal()))
        episodes.append(episode)
    return episodes


def test_the_fit_recovers_a_known_trajectory():
    model = fit_expected_trajectory(_episodes(np.random.default_rng(7), 1000, 3.0), instrument="PHQ-9")
    for y0 in (12.0, 18.0, 24.0):
        for t in (1, 4, 10):
            truth = 1.0 + 0.95 * y0 + (-1.0 - 0.15 * y0) * math.log(t + 1)
            assert model.expected(y0, t) == pytest.approx(truth, abs=0.35)
    assert model.b3 == pytest.approx(-0.15, abs=0.03)
    assert model.sigma_pred == pytest.approx(3.0, rel=0.05)
    assert model.n_episodes == 1000
    assert model.instrument == "PHQ-9"
    # One-sided 90%: about a tenth of fresh on-model scores lie beyond the boundary.
    fresh = _episodes(np.random.default_rng(8), 400, 3.0)
    flags = [off_track(model, e[0], t, y) for e in fresh for t, y in enumerate(e) if t and y is not None and e[0]]
    assert 0.07 < sum(flags) / len(flags) < 0.13


def test_the_fit_needs_the_configured_number_of_episodes():
    episodes = _episodes(np.random.default_rng(1), 299, 3.0)
    with pytest.raises(InsufficientEpisodesError, match="299 usable closed episodes; the fit needs at least 300"):
        fit_expected_trajectory(episodes)
    assert fit_expected_trajectory(episodes, settings=SignalSettings(off_track_min_episodes=50)).n_episodes == 299


def test_episodes_without_a_first_or_a_later_score_are_not_counted():
    episodes: list[list[float | None]] = [[None, 10.0], [12.0], [12.0, None], []]
    with pytest.raises(InsufficientEpisodesError, match="0 usable"):
        fit_expected_trajectory(episodes, min_episodes=1)


def test_identical_first_scores_cannot_separate_the_terms():
    episodes: list[list[float | None]] = [[15.0, 14.0 - t % 2, 12.0] for t in range(20)]
    with pytest.raises(InsufficientEpisodesError, match="do not vary enough"):
        fit_expected_trajectory(episodes, min_episodes=1)


def test_a_model_round_trips_through_plain_data():
    assert TrajectoryModel.from_dict(O5.as_dict()) == O5


def test_negative_time_is_refused():
    with pytest.raises(ValueError, match="cannot be negative"):
        expected_score(O5, 20, -1)
