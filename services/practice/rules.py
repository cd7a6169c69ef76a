"""The alert rules' thresholds in force: the practice's versioned `alert_rules` setting over CLINICAL.md's defaults.

One setting holds every practice-level threshold of the rules, so one version number names the thresholds that
decided a signal (`SignalSettings.version`; 0 while nothing was changed). Each value on the settings page says
where it came from: CLINICAL.md's default, a calibrated proposal someone adopted, or a person's change, with who,
when and why (the version that last changed it). The risk window's default is the environment's
`RAPPORT_RISK_WINDOW_MINUTES` (60 unless set) until the practice changes it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.i18n import N_, UserError
from services.practice.models import PracticeSetting
from services.practice.settings import DEFAULTS, FIELD_RANGES, current_version, set_setting
from services.signals import SignalSettings

KEY = "alert_rules"
RULE_FIELDS: tuple[str, ...] = tuple(DEFAULTS[KEY])
DEFAULT_SOURCE = "default"


class NothingChanged(UserError):
    """The values given are the ones already in force."""


@dataclass(frozen=True)
class RuleValue:
    """One threshold in force, its default and where its value came from."""

    name: str
    value: float
    default: float
    source: str  # "default" (CLINICAL.md), "calibration" (a calibrated proposal adopted) or "person"
    version: PracticeSetting | None  # the version that last changed it (None: never changed)


def rule_defaults(*, risk_window_minutes: int | None = None) -> dict[str, Any]:
    """CLINICAL.md's defaults, with the environment's risk window when one is given."""
    values = dict(DEFAULTS[KEY])
    if risk_window_minutes is not None:
        values["risk_window_minutes"] = risk_window_minutes
    return values


def rule_values(session: Session, *, risk_window_minutes: int | None = None) -> tuple[dict[str, Any], int]:
    """The thresholds in force as plain values, and the version they are (0: the defaults)."""
    row = current_version(session, KEY)
    values = rule_defaults(risk_window_minutes=risk_window_minutes)
    if row is not None and isinstance(row.value, Mapping):
        values.update({name: row.value[name] for name in RULE_FIELDS if name in row.value})
    return values, row.version if row is not None else 0


def signal_settings(values: Mapping[str, Any], *, version: int = 0) -> SignalSettings:
    """The rules' settings object for these plain values."""
    return SignalSettings(
        k=float(values["k"]),
        sd_floor=float(values["sd_floor"]),
        repair_window=int(values["repair_window"]),
        silence_days=int(values["silence_days"]),
        component_threshold=float(values["component_threshold"]),
        perspective_gap=float(values["perspective_gap"]),
        tension_threshold=int(values["tension_threshold"]),
        not_on_track_checkpoint=int(values["not_on_track_checkpoint"]),
        risk_window_minutes=int(values["risk_window_minutes"]),
        version=version,
    )


def rule_settings(session: Session, *, risk_window_minutes: int | None = None) -> SignalSettings:
    """The settings every evaluation, review scan and report of the practice uses now."""
    values, version = rule_values(session, risk_window_minutes=risk_window_minutes)
    return signal_settings(values, version=version)


def rules_in_force(session: Session, *, risk_window_minutes: int | None = None) -> list[RuleValue]:
    """Each threshold in force with its default and the version that last changed it."""
    defaults = rule_defaults(risk_window_minutes=risk_window_minutes)
    history = session.scalars(
        select(PracticeSetting).where(PracticeSetting.key == KEY).order_by(PracticeSetting.version)
    ).all()
    current = dict(defaults)
    changed_by: dict[str, PracticeSetting] = {}
    for row in history:
        if not isinstance(row.value, Mapping):
            continue
        for name in RULE_FIELDS:
            if name in row.value and row.value[name] != current[name]:
                current[name] = row.value[name]
                changed_by[name] = row
    return [
        RuleValue(
            name=name,
            value=current[name],
            default=defaults[name],
            source=changed_by[name].source if name in changed_by else DEFAULT_SOURCE,
            version=changed_by.get(name),
        )
        for name in RULE_FIELDS
    ]


def change_rules(
    session: Session,
    changes: Mapping[str, Any],
    *,
    user_id: int | None,
    reason: str | None,
    source: str = "person",
    risk_window_minutes: int | None = None,
) -> PracticeSetting:
    """Store the thresholds in force with these changed as a new version (validated, audited; flushes)."""
    unknown = set(changes) - set(FIELD_RANGES[KEY])
    if unknown:
        raise KeyError(f"not an alert-rule setting: {', '.join(sorted(unknown))}")
    values, _ = rule_values(session, risk_window_minutes=risk_window_minutes)
    proposed = {**values, **changes}
    if proposed == values:
        raise NothingChanged(N_("Nothing changes: these are the values in force."))
    return set_setting(session, KEY, proposed, user_id=user_id, reason=reason, source=source)
