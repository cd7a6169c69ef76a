import dataclasses

import pytest

from services.signals import DEFAULT_SETTINGS, SignalSettings


def test_defaults_are_the_values_in_the_specification():
    s = SignalSettings()
    assert (s.k, s.sd_floor, s.alliance_rc, s.low_cutoff, s.low_cutoff_operator) == (2.0, 3.0, 5.37, 36.0, "<")
    assert (s.repair_window, s.silence_days, s.component_threshold, s.perspective_gap) == (3, 14, 3.0, 6.0)
    assert (s.tension_threshold, s.review_alert_window) == (2, 4)
    assert (s.deviation_min_history, s.component_min_history) == (2, 2)
    assert (s.not_on_track_checkpoint, s.not_on_track_fraction) == (4, 0.5)
    assert (s.off_track_z, s.off_track_min_episodes, s.risk_window_minutes) == (1.2816, 300, 60)
    assert dict(s.cutoff_overrides) == {}
    assert s == DEFAULT_SETTINGS


def test_settings_are_frozen_including_the_overrides():
    s = SignalSettings(cutoff_overrides={"GAD-7": 10})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.k = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.cutoff_overrides["GAD-7"] = 8  # type: ignore[index]


def test_with_changes_returns_a_validated_copy():
    changed = DEFAULT_SETTINGS.with_changes(k=1.5, sd_floor=2.0)
    assert (changed.k, changed.sd_floor, DEFAULT_SETTINGS.k) == (1.5, 2.0, 2.0)
    with pytest.raises(ValueError, match="sd_floor must be a positive number"):
        DEFAULT_SETTINGS.with_changes(sd_floor=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k": 0}, "k must be a positive number"),
        ({"alliance_rc": -1}, "alliance_rc must be a positive number"),
        ({"repair_window": 0}, "repair_window must be a whole number"),
        ({"tension_threshold": 1.5}, "tension_threshold must be a whole number"),
        ({"deviation_min_history": 1}, "deviation_min_history must be at least 2"),
        ({"low_cutoff_operator": "="}, "low_cutoff_operator must be"),
        ({"not_on_track_fraction": 0}, "not_on_track_fraction"),
    ],
)
def test_impossible_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        SignalSettings(**changes)


def test_settings_serialise_to_plain_data():
    data = SignalSettings(cutoff_overrides={"GAD-7": 10}).as_dict()
    assert data["cutoff_overrides"] == {"GAD-7": 10}
    assert SignalSettings(**data) == SignalSettings(cutoff_overrides={"GAD-7": 10})
