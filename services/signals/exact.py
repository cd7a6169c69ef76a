"""Exact comparisons for the rules: scores become whole numbers of millionths before any threshold is decided.

CLINICAL.md asks that "at or below m - k*s" and "at or above the baseline" hold exactly for totals with a few
decimals. Binary floating point cannot do that (30.6 against 36.6 - 2 x 3 comes out 30.599999999999998), so
every rule decides in integers: a score, a threshold or a setting is taken to six decimal places (the one
rounding, `units`), and means, variances and comparisons are then done in Python's exact integers. Instrument
definitions allow far fewer decimals than six, so the rounding never changes a score anyone entered. Square roots
are never taken for a decision: `k*s <= m - x` is decided as `k^2 s^2 <= (m - x)^2` with `m - x >= 0`.
Floats appear only in the evidence shown to people.
"""

from __future__ import annotations

from fractions import Fraction

SCALE = 1_000_000
"""Scores and thresholds are compared as whole numbers of 1/SCALE points."""


def units(value: float) -> int:
    """Return value as a whole number of millionths (the one documented rounding, half to even)."""
    return round(value * SCALE)


def ratio(value: float) -> Fraction:
    """Return a setting such as k = 2 or an SD floor of 2.5 as the exact decimal it was written as."""
    return Fraction(units(value), SCALE)


def at_or_above_mean(value: int, total: int, count: int) -> bool:
    """Return whether value >= total / count, all in units (count > 0)."""
    return value * count >= total
