"""The empirical OFF_TRACK tier: an expected-recovery curve fitted on a practice's own closed episodes.

y_t = b0 + b1 y0 + (b2 + b3 y0) ln(t + 1), where y0 is the episode's first score and t counts administrations
after the first (t = 0 is the first). A later score is off track when it is worse than the one-sided 90% bound,
yhat_t + z sigma_pred for higher-worse instruments (after Finch, Lambert & Schaalje 2001).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from services.measures.instrument import Direction
from services.signals.settings import DEFAULT_SETTINGS, SignalSettings

_PARAMETERS = 4


class InsufficientEpisodesError(ValueError):
    """Too few usable closed episodes to fit the expected trajectory."""


@dataclass(frozen=True, slots=True)
class TrajectoryModel:
    """A fitted expected-trajectory model and how much data it rests on."""

    b0: float
    b1: float
    b2: float
    b3: float
    sigma_pred: float
    n_episodes: int = 0
    n_observations: int = 0
    instrument: str | None = None
    # When it was fitted (ISO date) and how well: R^2 of the fit on its own observations.
    fitted_on: str | None = None
    r_squared: float | None = None
    # Set when the fit is over a labelled reference cohort rather than the practice's own episodes (the demo).
    reference: str | None = None

    def expected(self, y0: float, t: float) -> float:
        """Return the expected score t administrations after a first score of y0."""
        if t < 0:
            raise ValueError("t counts administrations after the first and cannot be negative")
        return self.b0 + self.b1 * y0 + (self.b2 + self.b3 * y0) * math.log(t + 1)

    def as_dict(self) -> dict[str, Any]:
        """Return the model as JSON-friendly data (the monthly refit stores it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrajectoryModel:
        """Rebuild a model stored with `as_dict`."""
        return cls(**dict(data))


def fit_expected_trajectory(
    episodes: Sequence[Sequence[float | None]],
    *,
    settings: SignalSettings | None = None,
    min_episodes: int | None = None,
    instrument: str | None = None,
) -> TrajectoryModel:
    """Fit the expected trajectory by least squares on closed episodes (each a list of scores in order)."""
    cfg = settings or DEFAULT_SETTINGS
    needed = cfg.off_track_min_episodes if min_episodes is None else min_episodes
    rows: list[tuple[float, float, float]] = []
    used = 0
    for episode in episodes:
        if not episode or episode[0] is None:
            continue
        y0 = float(episode[0])
        later = [(t, float(y)) for t, y in enumerate(episode) if t >= 1 and y is not None]
        if later:
            used += 1
            rows.extend((y0, math.log(t + 1), y) for t, y in later)
    if used < needed:
        raise InsufficientEpisodesError(f"{used} usable closed episodes; the fit needs at least {needed}")
    if len(rows) <= _PARAMETERS:
        raise InsufficientEpisodesError(f"{len(rows)} observations cannot fit {_PARAMETERS} parameters")
    data = np.asarray(rows, dtype=np.float64)
    y0s, logs, ys = data[:, 0], data[:, 1], data[:, 2]
    design = np.column_stack([np.ones_like(y0s), y0s, logs, y0s * logs])
    coefficients, _, rank, _ = np.linalg.lstsq(design, ys, rcond=None)
    if rank < _PARAMETERS:
        raise InsufficientEpisodesError("the episodes do not vary enough (first scores or lengths) to fit")
    residuals = ys - design @ coefficients
    sigma = math.sqrt(float(residuals @ residuals) / (len(rows) - _PARAMETERS))
    b0, b1, b2, b3 = (float(value) for value in coefficients)
    spread = ys - ys.mean()
    total = float(spread @ spread)
    r_squared = 1.0 - float(residuals @ residuals) / total if total > 0 else None
    return TrajectoryModel(
        b0=b0,
        b1=b1,
        b2=b2,
        b3=b3,
        sigma_pred=sigma,
        n_episodes=used,
        n_observations=len(rows),
        instrument=instrument,
        r_squared=r_squared,
    )


def expected_score(model: TrajectoryModel, y0: float, t: float) -> float:
    """Return yhat_t for a first score y0."""
    return model.expected(y0, t)


def off_track_boundary(
    model: TrajectoryModel,
    y0: float,
    t: float,
    *,
    direction: Direction = "higher_worse",
    settings: SignalSettings | None = None,
) -> float:
    """Return the score beyond which a client is off track at t (one-sided, z from the settings)."""
    z = (settings or DEFAULT_SETTINGS).off_track_z
    margin = z * model.sigma_pred
    expected = model.expected(y0, t)
    return expected + margin if direction == "higher_worse" else expected - margin


def off_track(
    model: TrajectoryModel,
    y0: float,
    t: float,
    y: float,
    *,
    direction: Direction = "higher_worse",
    settings: SignalSettings | None = None,
) -> bool:
    """Return whether score y at t is worse than the off-track boundary."""
    boundary = off_track_boundary(model, y0, t, direction=direction, settings=settings)
    return y > boundary if direction == "higher_worse" else y < boundary
