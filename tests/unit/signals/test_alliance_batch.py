"""The vectorised evaluator used by the benchmark must decide exactly what the per-client engine decides."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.signals import SignalSettings, evaluate_alliance, evaluate_alliance_batch

from .strategies import Series, series, settings


def _pad(cases: list[Series]):
    n = len(cases)
    width = max(len(case.totals) for case in cases)
    totals = np.full((n, width), np.nan)
    items = np.full((n, width, 4), np.nan)
    tension = np.full((n, width), np.nan)
    therapist = np.full((n, width), np.nan)
    lengths = np.array([len(case.totals) for case in cases], dtype=np.int64)
    for i, case in enumerate(cases):
        for t, value in enumerate(case.totals):
            totals[i, t] = np.nan if value is None else value
            if case.items is not None and case.items[t] is not None:
                items[i, t] = [np.nan if v is None else v for v in case.items[t]]
            if case.tension is not None and case.tension[t] is not None:
                tension[i, t] = case.tension[t]
            if case.therapist is not None and case.therapist[t] is not None:
                therapist[i, t] = case.therapist[t]
    return totals, lengths, items, tension, therapist


def _assert_identical(cases: list[Series], cfg: SignalSettings) -> int:
    totals, lengths, items, tension, therapist = _pad(cases)
    batch = evaluate_alliance_batch(
        totals, lengths=lengths, items=items, tension=tension, therapist_totals=therapist, settings=cfg
    )
    compared = 0
    for i, case in enumerate(cases):
        result = evaluate_alliance(
            case.totals,
            items=case.items,
            tension=case.tension,
            therapist_totals=case.therapist,
            settings=cfg,
        )
        opened = {alert.opened_session: alert.baseline for alert in result.alerts}
        for t, session in enumerate(result.signals, start=1):
            assert batch.kinds_at(i, t) == {signal.kind for signal in session}, (i, t, case)
            assert bool(batch.opened[i, t - 1]) == (t in opened), (i, t, case)
            if t in opened:
                expected = opened[t]
                got = float(batch.baseline[i, t - 1])
                assert (math.isnan(got) and expected is None) or got == expected, (i, t, case)
            compared += 1
        assert not batch.opened[i, len(case.totals) :].any()
        assert not batch.kinds[i, len(case.totals) :].any()
    return compared


def _random_cases(rng: np.random.Generator, count: int) -> list[Series]:
    cases = []
    for _ in range(count):
        n = int(rng.integers(1, 21))
        mean = float(rng.normal(36.5, 3.0))
        sd = float(rng.uniform(0.3, 3.5))
        raw = mean + sd * rng.standard_normal(n)
        if rng.random() < 0.5:
            start = int(rng.integers(0, n))
            raw[start : start + int(rng.integers(1, 4))] -= rng.choice([3, 4.5, 6, 8, 10])
        decimals = rng.random() < 0.2
        values = np.clip(np.round(raw, 1) if decimals else np.round(raw), 0, 40)
        totals: list[float | None] = [None if rng.random() < 0.05 else float(v) for v in values]
        shares = rng.dirichlet([8, 8, 8, 8], size=n) * values[:, None]
        items: list[list[float | None] | None] = [
            None if rng.random() < 0.05 else [float(min(10, max(0, round(s)))) for s in row] for row in shares
        ]
        tension: list[float | None] = [
            None if rng.random() < 0.05 else float(rng.choice([0, 0, 0, 0, 0, 0, 1, 1, 2, 3])) for _ in range(n)
        ]
        therapist: list[float | None] = [
            None if rng.random() < 0.1 else float(np.clip(round(mean + rng.normal(-1, 3)), 0, 40)) for _ in range(n)
        ]
        cases.append(
            Series(
                totals,
                items if rng.random() < 0.8 else None,
                tension if rng.random() < 0.8 else None,
                therapist if rng.random() < 0.8 else None,
            )
        )
    return cases


@pytest.mark.parametrize(
    "cfg",
    [
        SignalSettings(),
        SignalSettings(k=1.0, sd_floor=2.0),
        SignalSettings(k=1.5, sd_floor=0.5, alliance_rc=4.0, low_cutoff_operator="<=", repair_window=1),
        SignalSettings(k=2.0, sd_floor=4.0, component_threshold=2.0, tension_threshold=3, repair_window=2),
    ],
    ids=["defaults", "k1-floor2", "k1.5-floor0.5", "k2-floor4"],
)
def test_batch_matches_the_engine_on_many_random_series(cfg):
    cases = _random_cases(np.random.default_rng(20250301), 1500)
    assert _assert_identical(cases, cfg) > 15_000


@hypothesis_settings(max_examples=60)
@given(cases=st.lists(series(max_size=10), min_size=1, max_size=8), cfg=settings)
def test_batch_matches_the_engine_on_edge_cases(cases, cfg):
    _assert_identical(cases, cfg)


def test_batch_without_items_tension_or_therapist_uses_total_rules_only():
    totals = np.array([[34, 36, 37, 36, 27, 31, 36, 37]], dtype=np.float64)
    batch = evaluate_alliance_batch(totals)
    assert [sorted(batch.kinds_at(0, t)) for t in range(1, 9)] == [
        ["LOW_ALLIANCE"],
        [],
        [],
        [],
        ["LOW_ALLIANCE", "RUPTURE_DEV", "RUPTURE_DROP"],
        ["LOW_ALLIANCE"],
        ["REPAIRED"],
        [],
    ]
    assert batch.alerts_opened().tolist() == [1]
    assert batch.baseline[0, 4] == 35.75
    assert batch.fired("REPAIRED")[0].tolist() == [False] * 6 + [True, False]


def test_batch_refuses_misshapen_input():
    with pytest.raises(ValueError, match="totals must be a 2-D array"):
        evaluate_alliance_batch(np.zeros(3))
    with pytest.raises(ValueError, match="tension must have shape"):
        evaluate_alliance_batch(np.zeros((2, 3)), tension=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="lengths must hold"):
        evaluate_alliance_batch(np.zeros((2, 3)), lengths=np.array([4, 1]))
