"""Review due dates: business days in the practice's zone, the team's next supervision slot, holidays and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.config import ConfigError
from services.reviews.policy import (
    ReviewPolicy,
    add_business_days,
    follow_up_due_at,
    next_supervision_slot,
    parse_slot,
    review_due_at,
    review_policy,
)
from tests.conftest import build_settings

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def test_business_days_skip_weekends_and_holidays() -> None:
    assert add_business_days(date(2026, 2, 24), 5) == date(2026, 3, 3)  # Tuesday -> next Tuesday
    assert add_business_days(date(2026, 2, 27), 1) == date(2026, 3, 2)  # Friday -> Monday
    assert add_business_days(date(2026, 2, 28), 5) == date(2026, 3, 6)  # Saturday counts from Monday
    assert add_business_days(date(2026, 12, 24), 1, frozenset({date(2026, 12, 25)})) == date(2026, 12, 28)


def test_due_is_the_end_of_the_nth_business_day_in_the_practice_zone() -> None:
    policy = ReviewPolicy(business_days=5)
    # 23:30 on Tuesday in New York is already Wednesday in UTC: the local day counts.
    opened = datetime(2026, 2, 25, 4, 30, tzinfo=UTC)
    assert review_due_at(opened, policy, NEW_YORK) == datetime(2026, 3, 3, 17, 0, tzinfo=NEW_YORK).astimezone(UTC)
    assert review_due_at(opened, policy, LONDON) == datetime(2026, 3, 4, 17, 0, tzinfo=UTC)


def test_due_keeps_its_local_hour_across_a_dst_change() -> None:
    policy = ReviewPolicy(business_days=2)
    # London moves to BST on Sunday 29 March 2026: 17:00 local is 16:00 UTC afterwards.
    due = review_due_at(datetime(2026, 3, 27, 10, 0, tzinfo=UTC), policy, LONDON)
    assert due == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)


def test_next_supervision_slot_leaves_time_to_prepare_and_skips_holidays() -> None:
    thursday_two = (4, time(14, 0))
    policy = ReviewPolicy(mode="supervision_slot", slot_lead=timedelta(hours=24))
    # Opened Tuesday 09:00: Thursday 14:00 is more than a day away.
    assert review_due_at(datetime(2026, 2, 24, 9, 0, tzinfo=UTC), policy, LONDON, slot=thursday_two) == datetime(
        2026, 2, 26, 14, 0, tzinfo=UTC
    )
    # Opened Wednesday 15:00: Thursday 14:00 is too close, so the week after.
    assert review_due_at(datetime(2026, 2, 25, 15, 0, tzinfo=UTC), policy, LONDON, slot=thursday_two) == datetime(
        2026, 3, 5, 14, 0, tzinfo=UTC
    )
    assert next_supervision_slot(
        datetime(2026, 2, 24, 9, 0, tzinfo=UTC), thursday_two, LONDON, frozenset({date(2026, 2, 26)})
    ) == datetime(2026, 3, 5, 14, 0, tzinfo=UTC)


def test_a_team_without_a_slot_falls_back_to_business_days() -> None:
    policy = ReviewPolicy(mode="supervision_slot", business_days=5)
    opened = datetime(2026, 2, 24, 9, 0, tzinfo=UTC)
    assert review_due_at(opened, policy, LONDON, slot=None) == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert parse_slot(None, "14:00") is None
    assert parse_slot(4, "2pm") is None
    assert parse_slot(8, "14:00") is None
    assert parse_slot(4, "14:00") == (4, time(14, 0))


def test_follow_up_is_due_on_its_date_at_the_due_time() -> None:
    assert follow_up_due_at(date(2026, 7, 1), ReviewPolicy(), LONDON) == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


def test_policy_comes_from_settings_and_refuses_nonsense(tmp_path: Path) -> None:
    var = tmp_path
    settings = build_settings(
        var,
        review_due_business_days=3,
        extra={
            "review_due_policy": "supervision_slot",
            "review_due_time": "12:30",
            "review_reminder_hours": "2",
            "practice_holidays": "2026-12-25, 2026-12-26",
        },
    )
    policy = review_policy(settings)
    assert policy.mode == "supervision_slot"
    assert policy.business_days == 3
    assert policy.due_time == time(12, 30)
    assert policy.reminder_before == timedelta(hours=2)
    assert policy.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})
    assert review_policy(build_settings(var)) == ReviewPolicy()
    for extra in ({"review_due_policy": "weekly"}, {"review_due_time": "noon"}, {"practice_holidays": "Christmas"}):
        with pytest.raises(ConfigError):
            review_policy(build_settings(var, extra=extra))
    with pytest.raises(ConfigError):
        review_policy(build_settings(var, review_due_business_days=0))
