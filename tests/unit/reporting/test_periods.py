"""Periods are calendar months in the practice's zone; scopes parse strictly; percentiles match PostgreSQL's."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.periods import (
    PeriodError,
    ReportScope,
    month_just_ended,
    month_of,
    months_ending,
    shift_period,
)
from services.reporting.sql import percentile_cont

LONDON = ZoneInfo("Europe/London")


def test_month_boundaries_are_local_midnights_in_utc() -> None:
    october = month_of("2026-10", LONDON)
    assert october.start == datetime(2026, 9, 30, 23, tzinfo=UTC)  # BST
    assert october.end == datetime(2026, 11, 1, 0, tzinfo=UTC)  # GMT after 25 October
    assert (october.first_day, october.last_day) == (date(2026, 10, 1), date(2026, 10, 31))
    february = month_of("2028-02", ZoneInfo("America/New_York"))
    assert february.last_day == date(2028, 2, 29)
    assert february.start == datetime(2028, 2, 1, 5, tzinfo=UTC)


def test_trend_windows_run_across_years() -> None:
    months = months_ending("2026-02", LONDON, 12)
    assert [m.period for m in months][:3] == ["2025-03", "2025-04", "2025-05"]
    assert months[-1].period == "2026-02"
    assert all(a.end == b.start for a, b in itertools.pairwise(months))
    assert shift_period("2026-01", -1) == "2025-12"
    assert shift_period("2025-12", 1) == "2026-01"
    assert month_just_ended(datetime(2026, 1, 1, 0, 30, tzinfo=UTC), LONDON) == "2025-12"


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-10", "2026-1", "2026/10", "", "abcd-ef", "0999-10"])
def test_malformed_periods_are_refused(bad: str) -> None:
    with pytest.raises(PeriodError):
        month_of(bad, LONDON)


def test_scopes_parse_strictly() -> None:
    assert ReportScope.parse("practice") == ReportScope("practice")
    assert str(ReportScope.parse("team:12")) == "team:12"
    assert ReportScope.parse("clinician:3").slug == "clinician-3"
    for bad in ("team", "team:", "team:x", "team:-1", "clinic:1", "practice:1", "team:0", "team:1/../x"):
        with pytest.raises(PeriodError):
            ReportScope.parse(bad)


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=60), st.floats(0, 1))
def test_percentiles_interpolate_as_postgresql_does(values: list[float], fraction: float) -> None:
    assert percentile_cont(values, fraction) == pytest.approx(float(np.percentile(values, fraction * 100)))


def test_percentile_of_nothing_is_none() -> None:
    assert percentile_cont([], 0.5) is None
