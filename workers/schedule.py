"""The beat schedule: every periodic job in one place."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from services.config import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Periodic jobs. Each task keys its work by period, so a repeated or doubled run is a no-op."""
    return {
        "reconcile-every-minute": {
            "task": "ops.reconcile",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "heartbeat": {
            "task": "ops.heartbeat",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        # Twice-daily digest for clinicians who chose it (hours match services.alerts.digest.DIGEST_TIMES).
        "alert-digests-twice-daily": {
            "task": "alerts.send_digests",
            "schedule": crontab(hour="8,16", minute=0),
            "options": {"expires": 3600},
        },
        "prune-every-night": {
            "task": "ops.prune_sessions",
            "schedule": crontab(hour=3, minute=17),
            "options": {"expires": 3600},
        },
    }
