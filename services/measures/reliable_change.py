"""Reliable change and clinical cutoffs after Jacobson & Truax (1991)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided 95%: a change this many Sdiff away from zero is unlikely to be measurement error alone.
Z_95 = 1.96


def _check(sd: float, reliability: float) -> None:
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd!r}")
    if not 0 <= reliability < 1:
        raise ValueError(f"reliability must lie in [0, 1), got {reliability!r}")


def se(sd: float, reliability: float) -> float:
    """Return the standard error of measurement, SD1 x sqrt(1 - r)."""
    _check(sd, reliability)
    return sd * math.sqrt(1 - reliability)


def sdiff(sd: float, reliability: float) -> float:
    """Return the standard error of a difference between two scores, sqrt(2) x SE."""
    return math.sqrt(2) * se(sd, reliability)


def rc(sd: float, reliability: float, z: float = Z_95) -> float:
    """Return the reliable-change value: the smallest change that is reliable, z x Sdiff."""
    return z * sdiff(sd, reliability)


def rci(first: float, second: float, sd: float, reliability: float) -> float:
    """Return the reliable change index (second - first) / Sdiff."""
    return (second - first) / sdiff(sd, reliability)


def is_reliable(first: float, second: float, sd: float, reliability: float, z: float = Z_95) -> bool:
    """Return whether the change from first to second is reliable: |x2 - x1| >= z x Sdiff."""
    return abs(second - first) >= rc(sd, reliability, z)


def cutoff_a(clinical_mean: float, clinical_sd: float) -> float:
    """Return cutoff a: two SDs beyond the clinical mean, M1 - 2 SD1."""
    return clinical_mean - 2 * clinical_sd


def cutoff_b(general_mean: float, general_sd: float) -> float:
    """Return cutoff b: two SDs into the general-population range, M0 + 2 SD0."""
    return general_mean + 2 * general_sd


def cutoff_c(clinical_mean: float, clinical_sd: float, general_mean: float, general_sd: float) -> float:
    """Return cutoff c, where the two distributions meet: (SD0 M1 + SD1 M0) / (SD0 + SD1)."""
    return (general_sd * clinical_mean + clinical_sd * general_mean) / (general_sd + clinical_sd)


@dataclass(frozen=True, slots=True)
class ClinicalCutoffs:
    """Jacobson & Truax cutoffs a, b and c for one instrument's norms."""

    a: float
    b: float
    c: float


def clinical_cutoffs(
    clinical_mean: float, clinical_sd: float, general_mean: float, general_sd: float
) -> ClinicalCutoffs:
    """Return cutoffs a, b and c (1 = clinical population, 0 = general population)."""
    if not clinical_sd > 0 or not general_sd > 0:
        raise ValueError("standard deviations must be positive")
    return ClinicalCutoffs(
        a=cutoff_a(clinical_mean, clinical_sd),
        b=cutoff_b(general_mean, general_sd),
        c=cutoff_c(clinical_mean, clinical_sd, general_mean, general_sd),
    )
