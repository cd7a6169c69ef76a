"""Simulation benchmark for the alliance rupture rules (CLINICAL.md section 3); run with `make bench-signals`.

10,000 synthetic clients from the section 3 simulation model: half stable, half with one rupture of known depth
(3, 4.5, 6, 8 or 10 points) at a known position. Every client has totals, the four component items, the tension
answer and the therapist's total, so every opening rule is exercised. Seeded and reproducible.

The model fixes totals only. How items, tension and therapist totals behave is our assumption (the constants
below); figures for "all rules" depend on it, figures for "total-based rules" do not.

The last line of output is one JSON object (rates as fractions).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.measures import load_instrument
from services.practice.rules import rule_defaults, signal_settings
from services.signals import (
    COMPONENT_DROP,
    NOT_ON_TRACK,
    PERSPECTIVE_GAP,
    RUPTURE_DEV,
    RUPTURE_DROP,
    TENSION,
    SignalSettings,
    episode_outcome,
    evaluate_alliance,
    outcome_signals,
)

SEED = 20250301
WORKERS = min(2, os.cpu_count() or 1)
CLIENTS = 10_000
DEPTHS = (3.0, 4.5, 6.0, 8.0, 10.0)
MAX_SESSIONS = 20
COMPONENTS = 4

# Section 3 model (fixed by CLINICAL.md).
STABLE_MEAN, STABLE_MEAN_SD, MEAN_CAP = 36.5, 3.0, 39.5
WITHIN_SD_MEAN, WITHIN_SD_SD, WITHIN_SD_MIN = 1.5, 0.6, 0.3

# Our assumptions for the parts the model leaves open.
PROFILE_CONCENTRATION = 8.0  # Dirichlet weights: how unevenly a client's shortfall from 40 spreads over items
FOCAL_SHARE = 0.7  # share of a rupture's dip that falls on one component (goals or bond, say)
ITEM_SWAP_RATE = 0.25  # sessions where one point moves between two items (item-level noise)
TENSION_STABLE = (0.880, 0.115, 0.004, 0.001)  # P(tension = 0, 1, 2, 3) in an ordinary session
TENSION_DIP_PER_POINT = 0.06  # P(tension >= 2) during a dip = 0.06 x depth, at most 0.6
THERAPIST_BIAS_MEAN, THERAPIST_BIAS_SD = -1.0, 1.5  # therapists rate a little below their clients
THERAPIST_NOISE_SD = 1.2
THERAPIST_SEES = 0.3  # fraction of a client's dip the therapist's own rating shows

TARGETS = {"detection_8pt": 0.90, "detection_6pt": 0.70, "false_alerts_per_100_sessions": 2.0, "flag_rate": 0.15}
REFERENCE_TOTAL_ONLY = {3.0: 0.12, 4.5: 0.35, 6.0: 0.72, 8.0: 0.94, 10.0: 0.97}

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Population:
    totals: FloatArray
    items: FloatArray
    tension: FloatArray
    therapist: FloatArray
    lengths: IntArray
    depth: FloatArray  # 0 for stable clients
    dip_start: IntArray  # 0-based session index of the dip's first session, -1 for stable clients
    in_dip: BoolArray

    @property
    def stable(self) -> BoolArray:
        result: BoolArray = self.depth == 0
        return result


def simulate(rng: np.random.Generator, clients: int = CLIENTS) -> Population:
    """Draw the synthetic population."""
    ruptured = np.arange(clients) >= clients // 2
    depth = np.zeros(clients)
    depth[ruptured] = np.resize(np.array(DEPTHS), int(ruptured.sum()))
    lengths = np.where(ruptured, rng.integers(8, MAX_SESSIONS + 1, clients), rng.integers(6, MAX_SESSIONS + 1, clients))
    mean = np.minimum(rng.normal(STABLE_MEAN, STABLE_MEAN_SD, clients), MEAN_CAP)
    within = np.maximum(np.abs(rng.normal(WITHIN_SD_MEAN, WITHIN_SD_SD, clients)), WITHIN_SD_MIN)

    duration = rng.integers(1, 4, clients)
    # The dip starts at session 3 or later and leaves at least one session after it to return.
    latest = lengths - duration - 1
    dip_start = np.where(ruptured, 2 + np.floor(rng.random(clients) * (latest - 1)).astype(np.int64), -1)
    session = np.arange(MAX_SESSIONS)[None, :]
    in_dip = ruptured[:, None] & (session >= dip_start[:, None]) & (session < (dip_start + duration)[:, None])
    active = session < lengths[:, None]
    dip = np.where(in_dip, depth[:, None], 0.0)

    noise = rng.standard_normal((clients, MAX_SESSIONS))
    usual = np.clip(np.rint(mean[:, None] + within[:, None] * noise), 0, 40)
    totals = np.clip(np.rint(mean[:, None] - dip + within[:, None] * noise), 0, 40)

    items = _items(rng, usual, totals, clients)
    tension = _tension(rng, depth, in_dip, clients)
    bias = rng.normal(THERAPIST_BIAS_MEAN, THERAPIST_BIAS_SD, clients)
    therapist = np.clip(
        np.rint(
            mean[:, None]
            + bias[:, None]
            - THERAPIST_SEES * dip
            + THERAPIST_NOISE_SD * rng.standard_normal((clients, MAX_SESSIONS))
        ),
        0,
        40,
    )
    totals[~active] = np.nan
    items[~active] = np.nan
    tension[~active] = np.nan
    therapist[~active] = np.nan
    return Population(totals, items, tension, therapist, lengths.astype(np.int64), depth, dip_start, in_dip & active)


def _items(rng: np.random.Generator, usual: FloatArray, totals: FloatArray, clients: int) -> FloatArray:
    """Spread each session's shortfall from 40 over the four components; a dip lands mostly on one of them."""
    profile = rng.dirichlet([PROFILE_CONCENTRATION] * COMPONENTS, clients)
    focal = np.full((clients, COMPONENTS), (1 - FOCAL_SHARE) / (COMPONENTS - 1))
    focal[np.arange(clients), rng.integers(0, COMPONENTS, clients)] = FOCAL_SHARE
    base = 40 - usual
    extra = np.maximum(usual - totals, 0)
    shortfall = base + extra
    shares = base[..., None] * profile[:, None, :] + extra[..., None] * focal[:, None, :]
    deficit = np.floor(shares)
    remainder = shortfall - deficit.sum(axis=-1)
    rank = np.argsort(np.argsort(-(shares - deficit), axis=-1), axis=-1)
    deficit += rank < remainder[..., None]

    swap = rng.random(totals.shape) < ITEM_SWAP_RATE
    source = rng.integers(0, COMPONENTS, totals.shape)
    target = (source + rng.integers(1, COMPONENTS, totals.shape)) % COMPONENTS
    from_value = np.take_along_axis(deficit, source[..., None], -1)[..., 0]
    to_value = np.take_along_axis(deficit, target[..., None], -1)[..., 0]
    swap &= (from_value >= 1) & (to_value <= 9)
    np.put_along_axis(deficit, source[..., None], (from_value - swap)[..., None], -1)
    np.put_along_axis(deficit, target[..., None], (to_value + swap)[..., None], -1)

    for _ in range(COMPONENTS):
        over = np.maximum(deficit - 10, 0)
        if not over.any():
            break
        deficit -= over
        lightest = np.argmin(deficit, axis=-1)[..., None]
        np.put_along_axis(deficit, lightest, np.take_along_axis(deficit, lightest, -1) + over.sum(-1)[..., None], -1)
    items: FloatArray = 10 - deficit
    return items


def _tension(rng: np.random.Generator, depth: FloatArray, in_dip: BoolArray, clients: int) -> FloatArray:
    draw = rng.random((clients, MAX_SESSIONS))
    cumulative = np.cumsum(TENSION_STABLE)
    usual = (draw >= cumulative[0]).astype(np.float64) + (draw >= cumulative[1]) + (draw >= cumulative[2])
    high = np.minimum(TENSION_DIP_PER_POINT * depth, 0.6)[:, None]
    dip_draw = rng.random((clients, MAX_SESSIONS))
    during = np.where(dip_draw < high, np.where(dip_draw < 0.3 * high, 3.0, 2.0), np.where(dip_draw < high + 0.3, 1, 0))
    return np.where(in_dip, during, usual)


@dataclass(frozen=True)
class Outcome:
    """Per client: the 1-based sessions at which the production engine opened an alert, and the kinds per session."""

    opened: list[list[int]]
    kinds: list[list[frozenset[str]]]


_POPULATION: Population | None = None


def _series(population: Population, i: int, rules: str) -> dict[str, Any]:
    n = int(population.lengths[i])
    totals = population.totals[i, :n].tolist()
    extra: dict[str, Any] = {}
    if rules in ("all", "total+component"):
        extra["items"] = population.items[i, :n].tolist()
    if rules in ("all", "total+tension"):
        extra["tension"] = population.tension[i, :n].tolist()
    if rules in ("all", "total+gap"):
        extra["therapist_totals"] = population.therapist[i, :n].tolist()
    return {"totals": totals, **extra}


def _evaluate_chunk(job: tuple[range, dict[str, Any], str]) -> tuple[list[list[int]], list[list[frozenset[str]]]]:
    clients, settings_data, rules = job
    assert _POPULATION is not None
    settings = SignalSettings(**settings_data)
    opened: list[list[int]] = []
    kinds: list[list[frozenset[str]]] = []
    for i in clients:
        result = evaluate_alliance(**_series(_POPULATION, i, rules), settings=settings)
        opened.append([alert.opened_session for alert in result.alerts])
        kinds.append([frozenset(signal.kind for signal in session) for session in result.signals])
    return opened, kinds


def evaluate(population: Population, settings: SignalSettings, *, rules: str = "all", pool: Any = None) -> Outcome:
    """Run the production engine (`services.signals.evaluate_alliance`, what the worker runs) on every client."""
    clients = population.totals.shape[0]
    step = 500
    jobs = [(range(start, min(start + step, clients)), settings.as_dict(), rules) for start in range(0, clients, step)]
    parts = pool.map(_evaluate_chunk, jobs) if pool is not None else [_evaluate_chunk(job) for job in jobs]
    return Outcome(
        opened=[row for part in parts for row in part[0]],
        kinds=[row for part in parts for row in part[1]],
    )


def measure(population: Population, outcome: Outcome) -> dict[str, Any]:
    """Detection by depth, false alerts and flag rate on stable clients, sessions to detection."""
    stable = population.stable
    detected = np.zeros(len(outcome.opened), dtype=np.bool_)
    delays = []
    for i, sessions in enumerate(outcome.opened):
        if stable[i]:
            continue
        during = [s for s in sessions if population.in_dip[i, s - 1]]
        if during:
            detected[i] = True
            delays.append(during[0] - int(population.dip_start[i]))
    result: dict[str, Any] = {}
    for depth in DEPTHS:
        group = population.depth == depth
        result[_depth_key(depth)] = float(detected[group].mean())
    stable_ids = np.flatnonzero(stable)
    opened_stable = sum(len(outcome.opened[i]) for i in stable_ids)
    result["false_alerts_per_100_sessions"] = float(opened_stable / population.lengths[stable].sum() * 100)
    result["flag_rate"] = float(np.mean([bool(outcome.opened[i]) for i in stable_ids]))
    result["median_sessions_to_detection"] = float(np.median(delays)) if delays else math.nan
    return result


def opening_mix(population: Population, outcome: Outcome) -> dict[str, float]:
    """Share of the alerts opened on stable clients at which each opening kind fired (they can co-occur)."""
    counts = dict.fromkeys((RUPTURE_DEV, RUPTURE_DROP, COMPONENT_DROP, TENSION, PERSPECTIVE_GAP), 0)
    total = 0
    for i in np.flatnonzero(population.stable):
        for session in outcome.opened[i]:
            total += 1
            for kind in counts:
                counts[kind] += kind in outcome.kinds[i][session - 1]
    return {kind: count / max(total, 1) for kind, count in counts.items()}


def _depth_key(depth: float) -> str:
    return f"detection_{str(depth).replace('.0', '').replace('.', '_')}pt"


def _row(label: str, m: dict[str, Any], *, judge: bool = True) -> str:
    detections = " ".join(f"{m[_depth_key(d)]:6.1%}" for d in DEPTHS)
    median = m["median_sessions_to_detection"]
    verdict = ("yes" if meets(m) else "no") if judge else "-"
    return (
        f"{label:<32} {detections}  {m['false_alerts_per_100_sessions']:7.2f}  {m['flag_rate']:6.1%}"
        f"  {'-' if math.isnan(median) else f'{median:.1f}':>6}  {verdict:>7}"
    )


def _header(title: str) -> str:
    depths = " ".join(f"{f'{d:g}pt':>6}" for d in DEPTHS)
    return f"\n{title}\n{'':<32} {depths}  {'FA/100s':>7}  {'flag':>6}  {'median':>6}  {'targets':>7}"


def meets(m: dict[str, Any]) -> bool:
    return bool(
        m["detection_8pt"] >= TARGETS["detection_8pt"]
        and m["detection_6pt"] >= TARGETS["detection_6pt"]
        and m["false_alerts_per_100_sessions"] <= TARGETS["false_alerts_per_100_sessions"]
        and m["flag_rate"] <= TARGETS["flag_rate"]
    )


def _time_chunk(job: tuple[range, dict[str, Any], str]) -> int:
    """Evaluate a chunk and return only how many series it evaluated (no results to send back)."""
    clients, settings_data, rules = job
    assert _POPULATION is not None
    settings = SignalSettings(**settings_data)
    for i in clients:
        evaluate_alliance(**_series(_POPULATION, i, rules), settings=settings)
    return len(clients)


def throughput(population: Population, settings: SignalSettings, pool: Any) -> tuple[float, float]:
    """Series per second of the production engine with all rules: one process, and the 2-process pool."""
    clients = population.totals.shape[0]
    jobs = [(range(start, min(start + 500, clients)), settings.as_dict(), "all") for start in range(0, clients, 500)]
    best_one = best_pool = math.inf
    for _ in range(2):
        start = time.perf_counter()
        assert sum(map(_time_chunk, jobs)) == clients
        best_one = min(best_one, time.perf_counter() - start)
        start = time.perf_counter()
        assert sum(pool.map(_time_chunk, jobs)) == clients
        best_pool = min(best_pool, time.perf_counter() - start)
    return clients / best_one, clients / best_pool


def not_on_track_rate(rng: np.random.Generator, episodes: int = 4000) -> dict[str, float]:
    """Illustrative flag rate of the rational NOT_ON_TRACK tier on a simulated PHQ-9 caseload (our assumptions)."""
    flagged = recovered = reached = 0
    settings = signal_settings(rule_defaults())
    for _ in range(episodes):
        y0 = float(np.clip(np.rint(rng.normal(16.5, 4.5)), 10, 27))
        slope = rng.normal(-3.2, 2.2)  # points per ln(t + 1); some clients worsen
        length = int(rng.integers(6, 13))
        scores = [y0] + [
            float(np.clip(np.rint(y0 + slope * math.log(t + 1) + rng.normal(0, 2.5)), 0, 27)) for t in range(1, length)
        ]
        per_session = outcome_signals(scores, instrument="PHQ-9", settings=settings)
        flagged += any(signal.kind == NOT_ON_TRACK for session in per_session for signal in session)
        reached += length >= settings.not_on_track_checkpoint
        gad_first = float(np.clip(np.rint(y0 * 0.8 + rng.normal(0, 2)), 0, 21))
        gad_last = float(np.clip(np.rint(gad_first + slope * 0.8 * math.log(length) + rng.normal(0, 2)), 0, 21))
        recovered += episode_outcome(y0, scores[-1], gad_first, gad_last).recovery
    return {
        "not_on_track_flag_rate": flagged / episodes,
        # Of the episodes long enough to reach the checkpoint (a later checkpoint checks fewer clients at all).
        "not_on_track_flag_rate_reaching_checkpoint": flagged / max(reached, 1),
        "not_on_track_checked_share": reached / episodes,
        "simulated_recovery_rate": recovered / episodes,
    }


def production_settings(**changes: Any) -> SignalSettings:
    """What the worker runs for the Partnership Check: the practice defaults over the definition file."""
    values = {**rule_defaults(), **changes}
    return signal_settings(values).for_instrument(load_instrument("PARTNERSHIP-CHECK"))


def main() -> int:
    started = time.perf_counter()
    global _POPULATION
    population = _POPULATION = simulate(np.random.default_rng(SEED))
    defaults = production_settings()
    stable = population.stable
    print("Alliance rupture rules: simulation benchmark (CLINICAL.md section 3), production engine")
    print(
        f"seed {SEED}; {population.totals.shape[0]:,} clients: {int(stable.sum()):,} stable "
        f"({int(population.lengths[stable].sum()):,} sessions), {int((~stable).sum()):,} with one rupture "
        f"({int((~stable).sum()) // len(DEPTHS):,} per depth)"
    )
    print("evaluated by services.signals.evaluate_alliance, the function the worker's evaluation calls, with the")
    print("practice defaults (services.practice.settings) over the Partnership Check's definition file")
    print("detection = an alert opened during the dip; FA/100s = alerts opened per 100 stable sessions;")
    print("flag = share of stable clients with any alert; median = sessions from dip onset to the alert (1 = at once);")
    print("targets = detection >= 90% at 8 pt and >= 70% at 6 pt, <= 2 false alerts per 100 sessions, <= 15% flagged")

    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        headline = measure(population, outcome := evaluate(population, defaults, pool=pool))
        total_only = measure(population, evaluate(population, defaults, rules="total", pool=pool))
        print(
            _header(
                f"Default settings (k {defaults.k:g}, SD floor {defaults.sd_floor:g}, RC {defaults.alliance_rc:g}, "
                f"component {defaults.component_threshold:g}, gap {defaults.perspective_gap:g}, "
                f"tension >= {defaults.tension_threshold})"
            )
        )
        print(_row("all rules", headline))
        print(_row("total-based rules only", total_only))
        for rules in ("total+component", "total+tension", "total+gap"):
            label = rules.replace("total+", "totals + ")
            print(_row(label, measure(population, evaluate(population, defaults, rules=rules, pool=pool))))
        reference = {_depth_key(d): v for d, v in REFERENCE_TOTAL_ONLY.items()}
        reference |= {"false_alerts_per_100_sessions": 0.9, "flag_rate": 0.10, "median_sessions_to_detection": math.nan}
        print(_row("CLINICAL.md reference (totals)", reference, judge=False))
        mix = opening_mix(population, outcome)
        print("alerts opened on stable clients, share at which each opening rule fired:")
        print("  " + ", ".join(f"{kind} {share:.0%}" for kind, share in mix.items()))

        print(_header("k x SD floor (all rules)"))
        grid: dict[str, dict[str, Any]] = {}
        for k in (1.5, 2.0, 2.5):
            for floor in (2.0, 3.0, 4.0):
                cfg = defaults.with_changes(k=k, sd_floor=floor)
                grid[f"k{k:g}_floor{floor:g}"] = measure(population, evaluate(population, cfg, pool=pool))
                print(_row(f"k {k:g}, floor {floor:g}", grid[f"k{k:g}_floor{floor:g}"]))

        print(_header(f"Other thresholds (all rules, k {defaults.k:g}, floor {defaults.sd_floor:g})"))
        variants = {
            "component threshold 3": defaults.with_changes(component_threshold=3.0),
            "component threshold 4": defaults.with_changes(component_threshold=4.0),
            "tension threshold 2": defaults.with_changes(tension_threshold=2),
            "tension threshold 3": defaults.with_changes(tension_threshold=3),
            "perspective gap 6": defaults.with_changes(perspective_gap=6.0),
            "perspective gap 8": defaults.with_changes(perspective_gap=8.0),
        }
        others = {}
        for label, cfg in variants.items():
            others[label] = m = measure(population, evaluate(population, cfg, pool=pool))
            print(_row(label, m))

        one_rate, pool_rate = throughput(population, defaults, pool)
    print(f"\nthroughput of the production engine (all rules, full evidence): {one_rate:,.0f} series/s in one process,")
    print(f"            {pool_rate:,.0f} series/s in {WORKERS} processes (the worker's pool on this machine's cores)")
    print("one evaluator: the benchmark, the alert evaluation and the bulk history path call the same function,")
    print("so there is no second evaluator to compare")

    outcome_rates = not_on_track_rate(np.random.default_rng(SEED + 2))
    print(
        f"\nNOT_ON_TRACK (rational tier, PHQ-9, checkpoint {defaults.not_on_track_checkpoint}) on a simulated "
        f"caseload: flags {outcome_rates['not_on_track_flag_rate']:.0%} of clients (simulated recovery rate "
        f"{outcome_rates['simulated_recovery_rate']:.0%}; illustrative, our trajectory assumptions; target <= 20%);"
    )
    print(
        f"{outcome_rates['not_on_track_checked_share']:.0%} of simulated episodes reach the checkpoint, and "
        f"{outcome_rates['not_on_track_flag_rate_reaching_checkpoint']:.0%} of those are flagged"
    )

    met = {
        "detection_8pt": headline["detection_8pt"] >= TARGETS["detection_8pt"],
        "detection_6pt": headline["detection_6pt"] >= TARGETS["detection_6pt"],
        "false_alerts_per_100_sessions": headline["false_alerts_per_100_sessions"]
        <= TARGETS["false_alerts_per_100_sessions"],
        "flag_rate": headline["flag_rate"] <= TARGETS["flag_rate"],
        "not_on_track_flag_rate": outcome_rates["not_on_track_flag_rate"] <= 0.20,
        "engine_series_per_s": pool_rate >= 20_000,
    }
    verdicts = ", ".join(f"{key} {'yes' if ok else 'NO'}" for key, ok in met.items())
    print(f"targets met with defaults: {verdicts}")
    print(f"elapsed {time.perf_counter() - started:.1f} s")
    summary = {
        **headline,
        "engine_series_per_s": round(pool_rate),
        "engine_series_per_s_one_process": round(one_rate),
        "engine_processes": WORKERS,
        "evaluator": "services.signals.evaluate_alliance",
        "settings": {key: value for key, value in defaults.as_dict().items() if key != "cutoff_overrides"},
        "total_rules_only": total_only,
        "opening_mix": mix,
        "grid": grid,
        "other_thresholds": others,
        "targets_met": met,
        **outcome_rates,
        "seed": SEED,
        "clients": CLIENTS,
    }
    print(json.dumps(_finite(summary), sort_keys=True))
    return 0


def _finite(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


if __name__ == "__main__":
    sys.exit(main())
