"""Calibration estimates from a practice's own closed episodes (CLINICAL.md section 6), as pure functions.

The SD floor is the pooled within-client SD of session totals; the Partnership Check's reliability is Cronbach's
alpha over its items, and with the SD of all totals it gives the reliable-change value (Jacobson & Truax 1991);
a practice-specific low cutoff is the 10th percentile of its session totals. They are proposals: a person adopts
them (a new version of the alert rules with source "calibration"), never the task on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.measures.reliable_change import rc


class TooLittleData(ValueError):
    """Not enough data for the estimate."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The estimates and what they rest on."""

    sd_floor: float
    alpha: float
    reliable_change: float
    low_cutoff: float
    clients: int
    sessions: int


def pooled_within_client_sd(series: Sequence[Sequence[float]]) -> float:
    """sqrt(sum of squared deviations from each client's own mean / sum of (n_i - 1)), over clients with >= 2."""
    squares = 0.0
    freedom = 0
    for totals in series:
        if len(totals) < 2:
            continue
        values = np.asarray(totals, dtype=np.float64)
        squares += float(((values - values.mean()) ** 2).sum())
        freedom += len(values) - 1
    if freedom == 0:
        raise TooLittleData("the pooled SD needs a client with at least two totals")
    return math.sqrt(squares / freedom)


def cronbach_alpha(items: Sequence[Sequence[float]]) -> float:
    """Cronbach's alpha of complete administrations (rows: administrations, columns: items)."""
    data = np.asarray(items, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] < 2:
        raise TooLittleData("alpha needs at least two administrations of at least two items")
    k = data.shape[1]
    total_variance = float(data.sum(axis=1).var(ddof=1))
    if total_variance == 0:
        raise TooLittleData("every total is the same: alpha is undefined")
    item_variances = float(data.var(axis=0, ddof=1).sum())
    return float(k / (k - 1) * (1 - item_variances / total_variance))


def calibrate_alliance(series: Sequence[Sequence[float]], items: Sequence[Sequence[float]]) -> Calibration:
    """Every section 6 estimate for one alliance instrument: per-client totals in order, and item rows."""
    totals = [value for client in series for value in client]
    if len(totals) < 2:
        raise TooLittleData("calibration needs session totals")
    alpha = cronbach_alpha(items)
    if not 0 < alpha < 1:
        raise TooLittleData(f"alpha {alpha:.3f} gives no reliable-change value")
    sd = float(np.asarray(totals, dtype=np.float64).std(ddof=1))
    return Calibration(
        sd_floor=pooled_within_client_sd(series),
        alpha=alpha,
        reliable_change=rc(sd, alpha),
        low_cutoff=float(np.percentile(totals, 10)),
        clients=len(series),
        sessions=len(totals),
    )
