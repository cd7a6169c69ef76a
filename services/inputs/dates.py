"""The practice's plausible window for dates: nothing before 1900, nothing more than ten years ahead.

Year 1 and year 9999 are typing slips or probes; they also break arithmetic (a day after 9999-12-31 does not
exist), so every date a person enters is checked here before it is used.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TypeVar

from services.i18n import N_
from services.inputs.errors import InputError

D = TypeVar("D", bound=date)

EARLIEST_DATE = date(1900, 1, 1)
YEARS_AHEAD = 10


def plausible_window(today: date | None = None) -> tuple[date, date]:
    """The first and last date accepted: 1 January 1900 to 31 December ten years after today's year."""
    today = today or datetime.now(UTC).date()
    return EARLIEST_DATE, date(today.year + YEARS_AHEAD, 12, 31)


def check_plausible_date(value: D, *, today: date | None = None) -> D:
    """value when its date lies in the plausible window; InputError naming the window otherwise."""
    first, last = plausible_window(today)
    day = value.date() if isinstance(value, datetime) else value
    if not first <= day <= last:
        raise InputError(
            N_("The date %(value)s is not plausible: dates must be between %(first)s and %(last)s."),
            value=day.isoformat(),
            first=first.isoformat(),
            last=last.isoformat(),
        )
    return value


def parse_plausible_date(raw: str, *, today: date | None = None) -> date:
    """An ISO 8601 date (2026-03-02) within the plausible window; InputError otherwise."""
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        raise InputError(N_("%(value)r is not a date such as 2026-03-02."), value=raw) from None
    check_plausible_date(value, today=today)
    return value
