"""Report periods (calendar months in the practice's time zone, as UTC instants) and report scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.i18n import N_, UserError
from services.inputs import EARLIEST_DATE, plausible_window

ScopeKind = Literal["practice", "team", "clinician"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("practice", "team", "clinician")


class PeriodError(UserError):
    """A period or scope given by a person or a caller is malformed."""


def parse_period(period: str) -> tuple[int, int]:
    """Split "YYYY-MM" into (year, month), refusing anything else."""
    year_text, sep, month_text = period.partition("-")
    if sep != "-" or len(year_text) != 4 or len(month_text) != 2 or not (year_text + month_text).isdigit():
        raise PeriodError(N_("period must look like YYYY-MM, got %(period)r"), period=period)
    year, month = int(year_text), int(month_text)
    if not 1 <= month <= 12 or not EARLIEST_DATE.year <= year <= plausible_window()[1].year:
        raise PeriodError(
            N_("period out of range: %(period)r (months between %(first)s and %(last)s)"),
            period=period,
            first=f"{EARLIEST_DATE.year}-01",
            last=f"{plausible_window()[1].year}-12",
        )
    return year, month


def shift_period(period: str, months: int) -> str:
    """The period `months` calendar months after (negative: before) period."""
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True)
class Month:
    """One calendar month in the practice's zone: its local first and last days and its UTC instants [start, end)."""

    period: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime


def month_of(period: str, tz: ZoneInfo) -> Month:
    """The calendar month period in zone tz, with its boundaries as UTC instants (DST-correct)."""
    year, month = parse_period(period)
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(following, time(0), tzinfo=tz).astimezone(UTC)
    return Month(period=period, first_day=first, last_day=following - timedelta(days=1), start=start, end=end)


def months_ending(period: str, tz: ZoneInfo, count: int) -> tuple[Month, ...]:
    """count consecutive months ending with period, oldest first."""
    if count < 1:
        raise PeriodError("count must be at least 1")
    return tuple(month_of(shift_period(period, -offset), tz) for offset in range(count - 1, -1, -1))


def period_containing(at: datetime, tz: ZoneInfo) -> str:
    """The period (YYYY-MM) an instant falls in, in zone tz."""
    local = at.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def month_just_ended(now: datetime, tz: ZoneInfo) -> str:
    """The last complete calendar month before now, in zone tz."""
    return shift_period(period_containing(now, tz), -1)


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: the whole practice, one team, or one clinician's caseload."""

    kind: ScopeKind
    id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_KINDS:
            raise PeriodError("unknown scope kind %(kind)r", kind=self.kind)
        if (self.kind == "practice") != (self.id is None):
            raise PeriodError("the practice scope has no id; team and clinician scopes need one")
        if self.id is not None and self.id < 1:
            raise PeriodError("a scope id must be a positive whole number")

    @classmethod
    def parse(cls, text: str) -> ReportScope:
        """Read "practice", "team:ID" or "clinician:ID"."""
        raw = text.strip()
        if raw == "practice":
            return cls("practice")
        kind, sep, ident = raw.partition(":")
        if not sep or kind not in ("team", "clinician") or not ident.isdigit() or len(ident) > 12:
            raise PeriodError("scope must be practice, team:ID or clinician:ID, got %(scope)r", scope=text)
        return cls("team" if kind == "team" else "clinician", int(ident))

    def __str__(self) -> str:
        return "practice" if self.id is None else f"{self.kind}:{self.id}"

    @property
    def slug(self) -> str:
        """A file-name-safe form ("practice", "team-3")."""
        return "practice" if self.id is None else f"{self.kind}-{self.id}"


PRACTICE = ReportScope("practice")
