"""Hypothesis strategies for alliance series (shared by the property and batch tests)."""

from dataclasses import dataclass

from hypothesis import strategies as st

from services.signals import SignalSettings


@dataclass(frozen=True)
class Series:
    totals: list[float | None]
    items: list[list[float | None] | None] | None
    tension: list[float | None] | None
    therapist: list[float | None] | None


def _maybe(values: st.SearchStrategy[float], missing: float = 0.1) -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), values) if missing else values


@st.composite
def series(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 14, quarters: bool = False) -> Series:
    n = draw(st.integers(min_size, max_size))
    # Mostly near the ceiling, like real alliance scores, with room for dips.
    base = draw(st.integers(20, 40))
    step = 0.25 if quarters else 1.0
    total = st.integers(-16, 4).map(lambda k: min(40.0, max(0.0, base + k * step * (4 if quarters else 1))))
    totals = draw(st.lists(st.one_of(st.none(), total) if draw(st.booleans()) else total, min_size=n, max_size=n))
    items = None
    if draw(st.booleans()):
        item = st.integers(0, 10).map(float)
        row = st.lists(st.one_of(st.none(), item) if draw(st.booleans()) else item, min_size=4, max_size=4)
        items = draw(st.lists(st.one_of(st.none(), row), min_size=n, max_size=n))
    tension = None
    if draw(st.booleans()):
        tension = draw(
            st.lists(st.one_of(st.none(), st.sampled_from([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])), min_size=n, max_size=n)
        )
    therapist = None
    if draw(st.booleans()):
        therapist = draw(st.lists(st.one_of(st.none(), st.integers(25, 40).map(float)), min_size=n, max_size=n))
    return Series(totals, items, tension, therapist)


settings = st.builds(
    SignalSettings,
    k=st.sampled_from([1.0, 1.5, 2.0, 2.5]),
    sd_floor=st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.0]),
    alliance_rc=st.sampled_from([3.0, 4.0, 5.37, 6.0]),
    low_cutoff_operator=st.sampled_from(["<", "<="]),
    repair_window=st.integers(1, 4),
    component_threshold=st.sampled_from([2.0, 3.0]),
    tension_threshold=st.integers(1, 3),
)
