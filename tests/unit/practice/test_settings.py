"""Practice settings: defaults until changed, each change a new audited version, unknown keys refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.audit.models import AuditEvent
from services.practice import settings as practice


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(practice.DEFAULTS, "test_window_hours", {"hours": 24})
    return "test_window_hours"


def test_default_until_changed_and_a_copy(session: Any, declared: str) -> None:
    value = practice.get_setting(session, declared)
    assert value == {"hours": 24}
    value["hours"] = 1
    assert practice.get_setting(session, declared) == {"hours": 24}
    assert practice.current_version(session, declared) is None


def test_each_change_is_a_new_version_and_audited(session: Any, declared: str) -> None:
    practice.set_setting(session, declared, {"hours": 48}, user_id=None, reason="longer links")
    second = practice.set_setting(session, declared, {"hours": 12}, user_id=None)
    assert second.version == 2
    assert practice.get_setting(session, declared) == {"hours": 12}
    assert [row.value for row in practice.setting_history(session, declared)] == [{"hours": 12}, {"hours": 48}]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "practice_setting_changed")).all()
    assert [event.detail["version"] for event in events] == [1, 2]
    assert events[0].detail["reason"] == "longer links"


def test_unknown_key_is_refused(session: Any) -> None:
    with pytest.raises(practice.UnknownSetting):
        practice.get_setting(session, "no_such_setting")
    with pytest.raises(practice.UnknownSetting):
        practice.set_setting(session, "no_such_setting", 1, user_id=None)


def test_numeric_settings_refuse_values_outside_their_range(session: Any) -> None:
    key = "survey_link_hours"
    limits = practice.NUMBER_RANGES[key]
    assert practice.get_number(session, key) == practice.DEFAULTS[key]
    for bad in (limits.low - 1, limits.high + 1, 2.5, "24", True, None):
        with pytest.raises(practice.InvalidSetting):
            practice.set_setting(session, key, bad, user_id=None)
    practice.set_setting(session, key, limits.high, user_id=None)
    assert practice.get_number(session, key) == limits.high


def test_a_stored_value_outside_the_range_reads_as_the_default(session: Any) -> None:
    from services.practice.models import PracticeSetting

    session.add(PracticeSetting(key="escalation_digest_minutes", version=1, value=-5))  # written around set_setting
    session.flush()
    assert practice.get_number(session, "escalation_digest_minutes") == practice.DEFAULTS["escalation_digest_minutes"]
