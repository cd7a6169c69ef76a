"""The alliance rules and alert state machine over many clients at once (numpy), for simulation and calibration.

It repeats the floating-point operations of `alliance.evaluate_alliance` in the same order, so its decisions are
identical to the per-client engine (a unit test checks this on many random series). It returns which kinds fired
and where alerts opened, not evidence: use the per-client engine for what a clinician sees.

Arrays are (clients, sessions); NaN marks a missing value. A client's sessions beyond `lengths[i]` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.signals.settings import DEFAULT_SETTINGS, SignalSettings
from services.signals.types import (
    ALLIANCE_KINDS,
    COMPONENT_DROP,
    LOW_ALLIANCE,
    PERSPECTIVE_GAP,
    REPAIRED,
    RUPTURE_DEV,
    RUPTURE_DROP,
    TENSION,
    UNREPAIRED,
)

KIND_BITS: dict[str, int] = {kind: 1 << position for position, kind in enumerate(ALLIANCE_KINDS)}

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class AllianceBatch:
    """Per client and session: a bitmask of the kinds that fired, whether an alert opened, and its baseline."""

    kinds: NDArray[np.uint16]
    opened: BoolArray
    baseline: FloatArray
    lengths: IntArray

    def kinds_at(self, client: int, session: int) -> frozenset[str]:
        """Return the kinds that fired for one client at one 1-based session."""
        mask = int(self.kinds[client, session - 1])
        return frozenset(kind for kind, bit in KIND_BITS.items() if mask & bit)

    def fired(self, kind: str) -> BoolArray:
        """Return a (clients, sessions) boolean array: where `kind` fired."""
        result: BoolArray = (self.kinds & KIND_BITS[kind]) != 0
        return result

    def alerts_opened(self) -> IntArray:
        """Return the number of alerts each client opened."""
        result: IntArray = self.opened.sum(axis=1).astype(np.int64)
        return result


def evaluate_alliance_batch(
    totals: FloatArray,
    *,
    lengths: IntArray | None = None,
    items: FloatArray | None = None,
    tension: FloatArray | None = None,
    therapist_totals: FloatArray | None = None,
    settings: SignalSettings | None = None,
) -> AllianceBatch:
    """Evaluate the alliance rules for many clients; totals is (clients, sessions), items (clients, sessions, 4)."""
    cfg = settings or DEFAULT_SETTINGS
    totals = np.asarray(totals, dtype=np.float64)
    if totals.ndim != 2:
        raise ValueError("totals must be a 2-D array (clients, sessions)")
    clients, sessions = totals.shape
    lengths_arr: IntArray = (
        np.full(clients, sessions, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
    )
    if lengths_arr.shape != (clients,) or (lengths_arr > sessions).any() or (lengths_arr < 0).any():
        raise ValueError("lengths must hold one session count per client, within the array")
    tension_arr = _optional(tension, (clients, sessions), "tension")
    therapist_arr = _optional(therapist_totals, (clients, sessions), "therapist_totals")
    items_arr = None
    if items is not None:
        items_arr = np.asarray(items, dtype=np.float64)
        if items_arr.ndim != 3 or items_arr.shape[:2] != (clients, sessions):
            raise ValueError("items must be a (clients, sessions, components) array")

    reference = np.full(clients, np.nan)
    count = np.zeros(clients, dtype=np.int64)
    sum_d = np.zeros(clients)
    sum_d2 = np.zeros(clients)
    last_d = np.zeros(clients)
    width = 0 if items_arr is None else items_arr.shape[2]
    item_sums = np.zeros((clients, width))
    item_counts = np.zeros((clients, width), dtype=np.int64)
    alert_open = np.zeros(clients, dtype=np.bool_)
    baseline_d = np.full(clients, np.nan)
    since = np.zeros(clients, dtype=np.int64)
    unrepaired_done = np.zeros(clients, dtype=np.bool_)

    kinds = np.zeros((clients, sessions), dtype=np.uint16)
    opened = np.zeros((clients, sessions), dtype=np.bool_)
    baseline_out = np.full((clients, sessions), np.nan)
    bit = {kind: np.uint16(value) for kind, value in KIND_BITS.items()}

    with np.errstate(invalid="ignore", divide="ignore"):
        for t in range(sessions):
            active = t < lengths_arr
            x = totals[:, t]
            observed = active & ~np.isnan(x)
            reference = np.where(observed & (count == 0), x, reference)
            d = x - reference

            n = count.astype(np.float64)
            mean_d = sum_d / n
            variance = (n * sum_d2 - sum_d * sum_d) / (n * (n - 1))
            s = np.maximum(np.sqrt(np.maximum(variance, 0.0)), cfg.sd_floor)
            dev = observed & (count >= cfg.deviation_min_history) & (d <= mean_d - cfg.k * s)
            drop = observed & (count >= 1) & (last_d - d >= cfg.alliance_rc)
            low = observed & ((x < cfg.low_cutoff) if cfg.low_cutoff_operator == "<" else (x <= cfg.low_cutoff))
            opening = dev | drop
            fired = np.where(dev, bit[RUPTURE_DEV], 0) | np.where(drop, bit[RUPTURE_DROP], 0)
            fired |= np.where(low, bit[LOW_ALLIANCE], 0)
            if tension_arr is not None:
                tense = active & (tension_arr[:, t] >= cfg.tension_threshold)
                opening |= tense
                fired |= np.where(tense, bit[TENSION], 0)
            session_items = None
            if items_arr is not None:
                session_items = items_arr[:, t, :]
                item_mean = item_sums / item_counts
                dropped = (
                    (item_counts >= cfg.component_min_history)
                    & ~np.isnan(session_items)
                    & (item_mean - session_items >= cfg.component_threshold)
                ).any(axis=1) & active
                opening |= dropped
                fired |= np.where(dropped, bit[COMPONENT_DROP], 0)
            if therapist_arr is not None:
                gap = observed & (therapist_arr[:, t] - x >= cfg.perspective_gap)
                opening |= gap
                fired |= np.where(gap, bit[PERSPECTIVE_GAP], 0)

            was_open = alert_open & active
            since = np.where(was_open, since + 1, since)
            repaired = was_open & observed & ~np.isnan(baseline_d) & ~opening & (d >= baseline_d)
            unrepaired = was_open & ~repaired & (since == cfg.repair_window) & ~unrepaired_done
            unrepaired_done |= unrepaired
            alert_open &= ~repaired
            fired |= np.where(repaired, bit[REPAIRED], 0) | np.where(unrepaired, bit[UNREPAIRED], 0)

            new = active & ~was_open & opening
            new_baseline = np.where(count >= 1, sum_d / n, np.where(observed, 0.0, np.nan))
            baseline_d = np.where(new, new_baseline, baseline_d)
            since = np.where(new, 0, since)
            unrepaired_done &= ~new
            alert_open |= new
            opened[:, t] = new
            baseline_out[:, t] = np.where(new, reference + new_baseline, np.nan)
            kinds[:, t] = fired

            sum_d = np.where(observed, sum_d + d, sum_d)
            sum_d2 = np.where(observed, sum_d2 + d * d, sum_d2)
            last_d = np.where(observed, d, last_d)
            count += observed
            if session_items is not None:
                seen = active[:, None] & ~np.isnan(session_items)
                item_sums = np.where(seen, item_sums + session_items, item_sums)
                item_counts += seen
    return AllianceBatch(kinds=kinds, opened=opened, baseline=baseline_out, lengths=lengths_arr)


def _optional(values: FloatArray | None, shape: tuple[int, int], name: str) -> FloatArray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    return array
