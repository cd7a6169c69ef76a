"""When a case review is due: within N business days, or at the team's next supervision slot, in the practice's zone.

The defaults are the practice policy unless Settings.extra overrides them (the environment variable in brackets is
how a deployment sets each one; Settings.review_due_business_days is RAPPORT_REVIEW_DUE_BUSINESS_DAYS).

- business_days: due at the end of the working day (due_time, local) on the Nth business day after the day the
  review opened. Business days are Monday to Friday minus the practice's holidays; a review opened on a Saturday
  counts from Monday.
- supervision_slot: due at the team's next supervision slot (Team.supervision_weekday and supervision_time, local)
  that is at least slot_lead away, so the supervisor has time to read the case; a slot on a holiday is skipped. A
  team without a slot falls back to business days.

Local wall-clock times are turned into UTC with zoneinfo, so a due time keeps its local hour across a DST change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.config import ConfigError, Settings

DueMode = Literal["business_days", "supervision_slot"]
DUE_MODES: tuple[DueMode, ...] = ("business_days", "supervision_slot")

EXTRA_KEYS = {
    "review_due_policy": "RAPPORT_REVIEW_DUE_POLICY",
    "review_due_time": "RAPPORT_REVIEW_DUE_TIME",
    "review_reminder_hours": "RAPPORT_REVIEW_REMINDER_HOURS",
    "review_slot_lead_hours": "RAPPORT_REVIEW_SLOT_LEAD_HOURS",
    "practice_holidays": "RAPPORT_PRACTICE_HOLIDAYS",
}


@dataclass(frozen=True)
class ReviewPolicy:
    """How due dates and reminders of case reviews are set."""

    # business_days or supervision_slot [RAPPORT_REVIEW_DUE_POLICY]
    mode: DueMode = "business_days"
    # [RAPPORT_REVIEW_DUE_BUSINESS_DAYS]
    business_days: int = 5
    # Local time a review is due on its day (and a follow-up check on its date) [RAPPORT_REVIEW_DUE_TIME, HH:MM].
    due_time: time = time(17, 0)
    # One reminder this long before the due time; one more once it is overdue [RAPPORT_REVIEW_REMINDER_HOURS].
    reminder_before: timedelta = timedelta(hours=24)
    # A supervision slot sooner than this after the review opens is too close: the next one is used.
    slot_lead: timedelta = timedelta(hours=24)
    # Dates that are not business days [RAPPORT_PRACTICE_HOLIDAYS, comma-separated YYYY-MM-DD].
    holidays: frozenset[date] = field(default_factory=frozenset)
    # How far ahead a follow-up check may be set.
    follow_up_max_days: int = 180

    def __post_init__(self) -> None:
        if self.mode not in DUE_MODES:
            raise ConfigError(f"RAPPORT_REVIEW_DUE_POLICY must be one of {', '.join(DUE_MODES)}, got {self.mode!r}")
        if self.business_days < 1:
            raise ConfigError(f"RAPPORT_REVIEW_DUE_BUSINESS_DAYS must be at least 1, got {self.business_days}")


def _parse_time(raw: str) -> time:
    try:
        hours, minutes = (int(part) for part in raw.strip().split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ConfigError(f"{EXTRA_KEYS['review_due_time']} must be HH:MM, got {raw!r}") from None


def _parse_holidays(raw: str) -> frozenset[date]:
    days = set()
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            days.add(date.fromisoformat(part.strip()))
        except ValueError:
            raise ConfigError(f"{EXTRA_KEYS['practice_holidays']} must list YYYY-MM-DD dates, got {part!r}") from None
    return frozenset(days)


def _hours(settings: Settings, key: str, default: timedelta) -> timedelta:
    raw = settings.extra.get(key)
    if raw is None or not str(raw).strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{EXTRA_KEYS[key]} must be a number of hours, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{EXTRA_KEYS[key]} must not be negative, got {raw!r}")
    return timedelta(hours=value)


def review_policy(settings: Settings) -> ReviewPolicy:
    """The practice's review policy: defaults, the business-day setting, and Settings.extra overrides."""
    d = ReviewPolicy()
    raw_mode = str(settings.extra.get("review_due_policy") or d.mode).strip()
    mode = next((candidate for candidate in DUE_MODES if candidate == raw_mode), None)
    if mode is None:
        raise ConfigError(f"RAPPORT_REVIEW_DUE_POLICY must be one of {', '.join(DUE_MODES)}, got {raw_mode!r}")
    raw_time = settings.extra.get("review_due_time")
    return ReviewPolicy(
        mode=mode,
        business_days=settings.review_due_business_days,
        due_time=_parse_time(raw_time) if raw_time else d.due_time,
        reminder_before=_hours(settings, "review_reminder_hours", d.reminder_before),
        slot_lead=_hours(settings, "review_slot_lead_hours", d.slot_lead),
        holidays=_parse_holidays(settings.extra.get("practice_holidays") or ""),
    )


def is_business_day(day: date, holidays: frozenset[date] = frozenset()) -> bool:
    """Monday to Friday and not a practice holiday."""
    return day.isoweekday() <= 5 and day not in holidays


def add_business_days(day: date, count: int, holidays: frozenset[date] = frozenset()) -> date:
    """The date count business days after day (day itself never counts)."""
    current = day
    left = count
    while left > 0:
        current += timedelta(days=1)
        if is_business_day(current, holidays):
            left -= 1
    return current


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time on day, as an aware UTC datetime."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def business_days_due(opened_at: datetime, policy: ReviewPolicy, tz: ZoneInfo) -> datetime:
    """Due at due_time on the Nth business day after the local day the review opened."""
    opened_day = opened_at.astimezone(tz).date()
    return local_moment(add_business_days(opened_day, policy.business_days, policy.holidays), policy.due_time, tz)


def parse_slot(weekday: int | None, hhmm: str | None) -> tuple[int, time] | None:
    """A team's supervision slot as (ISO weekday, local time), or None when it has none or it is malformed."""
    if weekday is None or not hhmm or not 1 <= weekday <= 7:
        return None
    try:
        hours, minutes = (int(part) for part in hhmm.split(":"))
        return weekday, time(hours, minutes)
    except ValueError:
        return None


def next_supervision_slot(
    after: datetime, slot: tuple[int, time], tz: ZoneInfo, holidays: frozenset[date] = frozenset()
) -> datetime:
    """The first slot (weekday and local time) strictly after `after`, skipping holidays; in UTC."""
    weekday, at = slot
    local_day = after.astimezone(tz).date()
    day = local_day + timedelta(days=(weekday - local_day.isoweekday()) % 7)
    while True:
        moment = local_moment(day, at, tz)
        if moment > after and day not in holidays:
            return moment
        day += timedelta(days=7)


def review_due_at(
    opened_at: datetime,
    policy: ReviewPolicy,
    tz: ZoneInfo,
    *,
    slot: tuple[int, time] | None = None,
) -> datetime:
    """When a review opened at opened_at is due, for a team with this supervision slot (None: no slot)."""
    if policy.mode == "supervision_slot" and slot is not None:
        return next_supervision_slot(opened_at + policy.slot_lead, slot, tz, policy.holidays)
    return business_days_due(opened_at, policy, tz)


def follow_up_due_at(day: date, policy: ReviewPolicy, tz: ZoneInfo) -> datetime:
    """A follow-up check is due on its date at the policy's due time (local)."""
    return local_moment(day, policy.due_time, tz)
