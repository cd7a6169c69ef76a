"""Read-only helpers for the manager pages: the report queries live in services/reporting/queries.py."""

from __future__ import annotations

from datetime import datetime

from services.reporting.periods import period_containing, shift_period
from services.reporting.queries import list_reports

__all__ = ["list_reports", "period_choices"]

MONTHS_OFFERED = 24


def period_choices(now: datetime, tz_name: str) -> list[str]:
    """The months a manager may ask a report for: this month (so far) and the 23 before it, newest first."""
    from zoneinfo import ZoneInfo

    current = period_containing(now, ZoneInfo(tz_name))
    return [shift_period(current, -i) for i in range(MONTHS_OFFERED)]
