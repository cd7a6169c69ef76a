"""Every threshold of the signal rules, with the defaults from CLINICAL.md; a practice may change them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Literal

LowCutoffOperator = Literal["<", "<="]


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """Thresholds for the alliance and outcome rules (CLINICAL.md sections 3 and 4)."""

    # Alliance (section 3).
    k: float = 2.0
    sd_floor: float = 3.0
    alliance_rc: float = 5.37
    low_cutoff: float = 36.0
    low_cutoff_operator: LowCutoffOperator = "<"
    repair_window: int = 3
    silence_days: int = 14
    component_threshold: float = 3.0
    perspective_gap: float = 6.0
    tension_threshold: int = 2
    deviation_min_history: int = 2
    component_min_history: int = 2
    review_alert_window: int = 4
    # Outcome (section 4).
    not_on_track_checkpoint: int = 4
    not_on_track_fraction: float = 0.5
    off_track_z: float = 1.2816
    off_track_min_episodes: int = 300
    risk_window_minutes: int = 60
    cutoff_overrides: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("k", "sd_floor", "alliance_rc", "component_threshold", "perspective_gap", "off_track_z"):
            value = getattr(self, name)
            # Zero would make a constant series fire, because the rules compare with <= and >=.
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"SignalSettings.{name} must be a positive number, got {value!r}")
        for name in (
            "repair_window",
            "silence_days",
            "tension_threshold",
            "deviation_min_history",
            "component_min_history",
            "review_alert_window",
            "not_on_track_checkpoint",
            "off_track_min_episodes",
            "risk_window_minutes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SignalSettings.{name} must be a whole number of at least 1, got {value!r}")
        if self.deviation_min_history < 2:
            raise ValueError("SignalSettings.deviation_min_history must be at least 2 (a sample SD needs two)")
        if not math.isfinite(self.low_cutoff):
            raise ValueError("SignalSettings.low_cutoff must be finite")
        if self.low_cutoff_operator not in ("<", "<="):
            raise ValueError(
                f"SignalSettings.low_cutoff_operator must be '<' or '<=', got {self.low_cutoff_operator!r}"
            )
        if not 0 < self.not_on_track_fraction <= 1:
            raise ValueError("SignalSettings.not_on_track_fraction must lie in (0, 1]")
        # Freeze the mapping too, so a shared settings object cannot be changed behind a caller's back.
        object.__setattr__(self, "cutoff_overrides", MappingProxyType(dict(self.cutoff_overrides)))

    def with_changes(self, **changes: Any) -> SignalSettings:
        """Return a copy with some thresholds changed (validated like the original)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-friendly data."""
        result: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            result[item.name] = dict(value) if isinstance(value, Mapping) else value
        return result


DEFAULT_SETTINGS = SignalSettings()
