"""When invitations go out, are reminded and expire; and what calendar imports may fetch.

The defaults are the practice policy unless Settings.extra overrides them (the environment variable in
brackets is how a deployment sets each one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.config import ConfigError, Settings


@dataclass(frozen=True)
class InvitationPolicy:
    """Timing of survey invitations and limits of calendar imports."""

    # Pre-session invitations go out this long before the appointment [RAPPORT_INVITE_LEAD_HOURS].
    pre_lead: timedelta = timedelta(hours=24)
    # One reminder when an invitation is still unanswered this long after it was sent [RAPPORT_REMINDER_AFTER_HOURS].
    reminder_after: timedelta = timedelta(hours=12)
    # No reminder for an invitation that expires sooner than this: it would arrive too late to help.
    reminder_margin: timedelta = timedelta(hours=1)
    # Post-session invitations (and copied links) stay open this long [RAPPORT_INVITE_EXPIRY_HOURS].
    expiry: timedelta = timedelta(hours=72)
    # A pre-session invitation may still be answered this long after the session starts (waiting room, kiosk).
    pre_grace: timedelta = timedelta(minutes=30)
    # A kiosk hand-out lasts this long at least [RAPPORT_KIOSK_EXPIRY_MINUTES].
    kiosk_expiry: timedelta = timedelta(minutes=120)
    # Appointments that ended longer ago than this get no post-session invitation (old imports, downtime).
    post_window: timedelta = timedelta(hours=24)
    # Calendar imports from a URL [RAPPORT_IMPORT_TIMEOUT_SECONDS, RAPPORT_IMPORT_MAX_BYTES,
    # RAPPORT_IMPORT_ALLOW_PRIVATE_URLS: only for a calendar server inside the practice's own network].
    import_timeout_seconds: float = 10.0
    import_max_bytes: int = 2 * 1024 * 1024
    import_allow_private_urls: bool = False


EXTRA_KEYS = {
    "invite_lead_hours": "RAPPORT_INVITE_LEAD_HOURS",
    "reminder_after_hours": "RAPPORT_REMINDER_AFTER_HOURS",
    "invite_expiry_hours": "RAPPORT_INVITE_EXPIRY_HOURS",
    "kiosk_expiry_minutes": "RAPPORT_KIOSK_EXPIRY_MINUTES",
    "import_timeout_seconds": "RAPPORT_IMPORT_TIMEOUT_SECONDS",
    "import_max_bytes": "RAPPORT_IMPORT_MAX_BYTES",
    "import_allow_private_urls": "RAPPORT_IMPORT_ALLOW_PRIVATE_URLS",
}


def _number(settings: Settings, key: str, default: float, *, minimum: float) -> float:
    raw = settings.extra.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{EXTRA_KEYS[key]} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{EXTRA_KEYS[key]} must be at least {minimum:g}, got {raw!r}")
    return value


def _flag(settings: Settings, key: str, default: bool) -> bool:
    raw = str(settings.extra.get(key, "")).strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{EXTRA_KEYS[key]} must be true or false, got {raw!r}")


def invitation_policy(settings: Settings) -> InvitationPolicy:
    """The practice's invitation policy: defaults, overridden by Settings.extra."""
    d = InvitationPolicy()
    return InvitationPolicy(
        pre_lead=timedelta(hours=_number(settings, "invite_lead_hours", d.pre_lead / timedelta(hours=1), minimum=0)),
        reminder_after=timedelta(
            hours=_number(settings, "reminder_after_hours", d.reminder_after / timedelta(hours=1), minimum=0.25)
        ),
        expiry=timedelta(hours=_number(settings, "invite_expiry_hours", d.expiry / timedelta(hours=1), minimum=1)),
        kiosk_expiry=timedelta(
            minutes=_number(settings, "kiosk_expiry_minutes", d.kiosk_expiry / timedelta(minutes=1), minimum=5)
        ),
        import_timeout_seconds=_number(settings, "import_timeout_seconds", d.import_timeout_seconds, minimum=1),
        import_max_bytes=int(_number(settings, "import_max_bytes", d.import_max_bytes, minimum=1024)),
        import_allow_private_urls=_flag(settings, "import_allow_private_urls", d.import_allow_private_urls),
    )
