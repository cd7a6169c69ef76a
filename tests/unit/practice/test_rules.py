"""The alert rules' thresholds as versioned practice settings: defaults, changes with who and why, sources."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.alerts.evaluation import evaluate_administration
from services.alerts.models import SignalRecord
from services.audit.models import AuditEvent
from services.practice.rules import NothingChanged, change_rules, rule_settings, rules_in_force
from services.practice.settings import InvalidSetting
from services.signals import DEFAULT_SETTINGS, RUPTURE_DEV
from tests.factories import make_episode, make_user
from tests.unit.alerts.series import split_total, submit_partnership


def test_the_defaults_are_clinical_md_but_two_chosen_to_meet_its_targets_and_version_0(session: Any) -> None:
    assert rule_settings(session) == DEFAULT_SETTINGS.with_changes(tension_threshold=3, not_on_track_checkpoint=7)
    assert rule_settings(session).version == 0
    assert rule_settings(session, risk_window_minutes=30).risk_window_minutes == 30
    assert {row.name: row.source for row in rules_in_force(session)} == dict.fromkeys(
        [row.name for row in rules_in_force(session)], "default"
    )


def test_a_change_is_a_new_version_with_who_why_and_source(session: Any) -> None:
    admin = make_user(session, role="admin")
    change_rules(session, {"k": 1.5}, user_id=admin.id, reason="flag earlier")
    change_rules(session, {"sd_floor": 2.5}, user_id=None, reason="pooled SD 2.5", source="calibration")
    settings = rule_settings(session)
    assert (settings.k, settings.sd_floor, settings.version) == (1.5, 2.5, 2)
    rows = {row.name: row for row in rules_in_force(session)}
    assert (rows["k"].source, rows["k"].version.changed_by_id, rows["k"].version.reason) == (  # type: ignore[union-attr]
        "person",
        admin.id,
        "flag earlier",
    )
    assert (rows["k"].value, rows["k"].default) == (1.5, 2.0)
    assert rows["sd_floor"].source == "calibration"
    assert rows["repair_window"].source == "default"
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "practice_setting_changed")).all()
    assert [event.detail["source"] for event in events] == ["person", "calibration"]


@pytest.mark.parametrize(
    "changes",
    [{"k": 0.1}, {"k": 1.234}, {"repair_window": 1.5}, {"tension_threshold": 4}, {"sd_floor": True}],
)
def test_values_outside_their_range_are_refused(session: Any, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidSetting):
        change_rules(session, changes, user_id=None, reason="try")
    assert rule_settings(session).version == 0


def test_unknown_fields_and_no_change_are_refused(session: Any) -> None:
    with pytest.raises(KeyError):
        change_rules(session, {"low_cutoff": 30}, user_id=None, reason="no: the definition file holds it")
    with pytest.raises(NothingChanged):
        change_rules(session, {"k": 2.0}, user_id=None, reason="same")


def test_every_stored_signal_names_the_settings_version_that_produced_it(session: Any) -> None:
    episode = make_episode(session)
    for week, total in enumerate([38, 38, 38]):
        row = submit_partnership(session, episode, split_total(total), week=week)
        evaluate_administration(session, row.id, settings=rule_settings(session), notify=False)
    change_rules(session, {"k": 1.0, "sd_floor": 1.0}, user_id=None, reason="tighter")
    row = submit_partnership(session, episode, split_total(36), week=3)  # 36 <= 38 - 1 x 1: fires only now
    evaluate_administration(session, row.id, settings=rule_settings(session), notify=False)
    (dev,) = session.scalars(
        select(SignalRecord).where(SignalRecord.administration_id == row.id, SignalRecord.kind == RUPTURE_DEV)
    )
    assert dev.evidence["settings_version"] == 1
    assert (dev.evidence["k"], dev.evidence["sd_floor"]) == (1.0, 1.0)
    back = submit_partnership(session, episode, split_total(38), week=4)  # at the baseline: REPAIRED, version 1 too
    evaluate_administration(session, back.id, settings=rule_settings(session), notify=False)
    stored = session.scalars(select(SignalRecord).where(SignalRecord.episode_id == episode.id)).all()
    assert {record.kind for record in stored} >= {RUPTURE_DEV, "REPAIRED"}
    assert all("settings_version" in record.evidence for record in stored)
    assert {record.evidence["settings_version"] for record in stored if record.session >= 4} == {1}
