"""Every threshold of the signal rules, with the defaults from CLINICAL.md.

Where each value comes from: the practice's versioned settings (`services.practice.rules` builds this object from
them; `version` names the version, 0 while CLINICAL.md's defaults apply) and, for the instrument-specific values
(low cutoff and its operator, reliable-change value, direction), the instrument's definition file through
`for_instrument`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from services.measures.instrument import Instrument

LowCutoffOperator = Literal["<", "<=", ">", ">="]
Direction = Literal["higher_worse", "higher_better"]


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """Thresholds for the alliance and outcome rules (CLINICAL.md sections 3 and 4)."""

    # Alliance (section 3).
    k: float = 2.0
    sd_floor: float = 3.0
    # Instrument-specific: `for_instrument` replaces them with the definition's (None turns the rule off).
    alliance_rc: float | None = 5.37
    low_cutoff: float | None = 36.0
    low_cutoff_operator: LowCutoffOperator = "<"
    alliance_direction: Direction = "higher_better"
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
    # The practice-settings version these thresholds come from (0: CLINICAL.md's defaults); evidence names it.
    version: int = 0

    def __post_init__(self) -> None:
        for name in ("k", "sd_floor", "alliance_rc", "component_threshold", "perspective_gap", "off_track_z"):
            value = getattr(self, name)
            if value is None and name == "alliance_rc":
                continue
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
        if self.low_cutoff is not None and not math.isfinite(self.low_cutoff):
            raise ValueError("SignalSettings.low_cutoff must be finite")
        if self.alliance_direction not in ("higher_worse", "higher_better"):
            raise ValueError(f"SignalSettings.alliance_direction cannot be {self.alliance_direction!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValueError("SignalSettings.version must be a whole number of at least 0")
        if self.low_cutoff_operator not in ("<", "<=", ">", ">="):
            raise ValueError(
                f"SignalSettings.low_cutoff_operator must be '<', '<=', '>' or '>=', got {self.low_cutoff_operator!r}"
            )
        if not 0 < self.not_on_track_fraction <= 1:
            raise ValueError("SignalSettings.not_on_track_fraction must lie in (0, 1]")
        # Freeze the mapping too, so a shared settings object cannot be changed behind a caller's back.
        object.__setattr__(self, "cutoff_overrides", MappingProxyType(dict(self.cutoff_overrides)))

    def with_changes(self, **changes: Any) -> SignalSettings:
        """Return a copy with some thresholds changed (validated like the original)."""
        return replace(self, **changes)

    def for_instrument(self, instrument: Instrument) -> SignalSettings:
        """Return these settings with the alliance thresholds of this instrument's definition file.

        The low cutoff's value and operator, the reliable-change value and the direction come from the file
        (the practice may override the cutoff's value through `cutoff_overrides`); a definition without a cutoff
        or a reliable-change value turns LOW_ALLIANCE or RUPTURE_DROP off. An operator that names the flagged
        side from above (">", ">=") suits a higher-worse alliance instrument.
        """
        cutoff = instrument.cutoff
        low: float | None = None
        operator: LowCutoffOperator = self.low_cutoff_operator
        if cutoff is not None:
            low = float(self.cutoff_overrides.get(instrument.code, cutoff.value))
            operator = cutoff.operator
        rc = instrument.reliable_change.value if instrument.reliable_change is not None else None
        return replace(
            self, alliance_rc=rc, low_cutoff=low, low_cutoff_operator=operator, alliance_direction=instrument.direction
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-friendly data."""
        result: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            result[item.name] = dict(value) if isinstance(value, Mapping) else value
        return result


DEFAULT_SETTINGS = SignalSettings()
