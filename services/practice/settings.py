"""Reading and changing practice settings: each key has a default here; a change is a new version, audited."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.audit.operations import record_event
from services.practice.models import PracticeSetting

# Every practice setting with its default (a JSON value). A key not listed here cannot be read or set.
DEFAULTS: dict[str, Any] = {
    # What the survey shows a client who answers a risk item above 0 (services.practice.crisis), per language.
    "crisis_info": {
        "en": {
            "region": "GB",
            "heading": "If you need help now",
            "body": "If you are in danger or thinking about harming yourself, call your local emergency number now, "
            "or contact a crisis line.",
            "phones": [],
        },
        "es": {
            "region": "GB",
            "heading": "Si necesita ayuda ahora",
            "body": "Si está en peligro o piensa en hacerse daño, llame ahora al número de emergencias de su zona "
            "o contacte con una línea de crisis.",
            "phones": [],
        },
    },
    # How long a survey link the front desk hands out (copied, QR code, "send now") stays open, in hours.
    "survey_link_hours": 24,
    # A person gets at most one escalation message per this many minutes (services.alerts.escalation).
    "escalation_digest_minutes": 15,
    # A client's measures are overdue with no completed questionnaire in their last this many sessions (front desk).
    "measures_overdue_sessions": 3,
    # The share of scheduled measures the practice aims to have completed, in percent (the completion funnel).
    "completion_goal_percent": 70,
}


@dataclass(frozen=True)
class NumberRange:
    """The values a numeric setting may take (whole numbers, low to high inclusive)."""

    low: int
    high: int

    def accepts(self, value: object) -> bool:
        """True when value is a whole number within the range (a bool is not a number here)."""
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high


# The numeric settings and their allowed ranges: set_setting refuses a value outside it, get_number never returns one.
NUMBER_RANGES: dict[str, NumberRange] = {
    "survey_link_hours": NumberRange(1, 24 * 14),
    "escalation_digest_minutes": NumberRange(1, 24 * 60),
    "measures_overdue_sessions": NumberRange(1, 20),
    "completion_goal_percent": NumberRange(1, 100),
}


class UnknownSetting(KeyError):
    """A setting key that is not declared in DEFAULTS."""


class InvalidSetting(ValueError):
    """A value a setting may not take (a numeric setting outside its range)."""


def _check_key(key: str) -> None:
    if key not in DEFAULTS:
        raise UnknownSetting(key)


def current_version(session: Session, key: str) -> PracticeSetting | None:
    """The version of key in force, or None while the default applies."""
    _check_key(key)
    return session.scalars(
        select(PracticeSetting).where(PracticeSetting.key == key).order_by(PracticeSetting.version.desc()).limit(1)
    ).first()


def get_setting(session: Session, key: str) -> Any:
    """The value of key in force: the newest stored version, else a copy of its default."""
    row = current_version(session, key)
    return copy.deepcopy(DEFAULTS[key]) if row is None else row.value


def get_number(session: Session, key: str) -> int:
    """A numeric setting in force; its default should a stored value ever fall outside the declared range."""
    value = get_setting(session, key)
    return value if NUMBER_RANGES[key].accepts(value) else int(DEFAULTS[key])


def setting_history(session: Session, key: str) -> list[PracticeSetting]:
    """Every stored version of key, newest first."""
    _check_key(key)
    return list(
        session.scalars(
            select(PracticeSetting).where(PracticeSetting.key == key).order_by(PracticeSetting.version.desc())
        )
    )


def set_setting(
    session: Session, key: str, value: Any, *, user_id: int | None, reason: str | None = None
) -> PracticeSetting:
    """Store value as the new version of key (flushes) and audit who changed it."""
    _check_key(key)
    limits = NUMBER_RANGES.get(key)
    if limits is not None and not limits.accepts(value):
        raise InvalidSetting(f"{key} must be a whole number from {limits.low} to {limits.high}")
    latest = session.scalar(select(func.max(PracticeSetting.version)).where(PracticeSetting.key == key))
    row = PracticeSetting(key=key, version=(latest or 0) + 1, value=value, changed_by_id=user_id, reason=reason)
    session.add(row)
    session.flush()
    record_event(
        session,
        action="practice_setting_changed",
        actor_id=user_id,
        subject_type="practice_setting",
        subject_id=row.id,
        detail={"key": key, "version": row.version, "reason": reason},
    )
    return row
