"""The beat schedule: every periodic job in one place.

Exactly one beat sends it: run beat with `--scheduler workers.beat:RapportScheduler` (infra/Procfile), which holds
the beat lock (services.ops.beat_lock) and leaves any second beat idle as a standby.

Every job is also keyed by its period, so a repeat or a doubled run is a no-op:
- entries with `"kwargs": {PERIOD: None}` run every N seconds; the scheduler fills in the key of the period it
  sends for (services.ops.operations.period_key: the period's start in the practice's zone), and the task claims
  that key in job_runs before doing anything;
- crontab entries key themselves by their own period (the digest slot, the report month); crontab times are in the
  practice's time zone because the Celery app's timezone is Settings.timezone.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from services.config import Settings
from services.ops.liveness import RECONCILE_EVERY

# The keyword argument the scheduler fills with the period key.
PERIOD = "period"
EVERY_MINUTE = 60.0


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Periodic jobs. Each task keys its work by period, so a repeated or doubled run is a no-op."""
    return {
        # Re-drive whatever the database says is still pending (evaluations, messages, invitations, reports), and
        # the claims of dead worker processes: every 30 s, so a claim is re-driven at most 30 s after its process's
        # heartbeat goes stale (services.ops.liveness: the worst case stays under two minutes).
        "reconcile-every-30-seconds": {
            "task": "ops.reconcile",
            "schedule": RECONCILE_EVERY.total_seconds(),
            "kwargs": {PERIOD: None},
            "options": {"expires": RECONCILE_EVERY.total_seconds() - 5},
        },
        # Whichever worker takes it records its heartbeat (`rapport health worker`, the operations page).
        "heartbeat": {
            "task": "ops.heartbeat",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        "survey-invitations-every-minute": {
            "task": "surveys.dispatch",
            "schedule": EVERY_MINUTE,
            "options": {"expires": 55},
        },
        # Case reviews the rules call for (unrepaired, silent, repeated ruptures, deterioration) and their reminders.
        "case-reviews-every-minute": {
            "task": "reviews.scan",
            "schedule": EVERY_MINUTE,
            "kwargs": {PERIOD: None},
            "options": {"expires": 55},
        },
        # Alerts not acknowledged in time: to the supervisor, and risk alerts to the on-call list.
        "escalations-every-minute": {
            "task": "alerts.escalate",
            "schedule": EVERY_MINUTE,
            "kwargs": {PERIOD: None},
            "options": {"expires": 55},
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
        # The audit trail's hash chain, walked every night; a break emails the admins (services.audit.chain).
        "audit-verify-every-night": {
            "task": "ops.verify_audit",
            "schedule": crontab(hour=2, minute=41),
            "options": {"expires": 6 * 3600},
        },
        # Monthly reports for the month just ended, on the 1st at 06:30 practice time (the app's timezone is the
        # practice's); the task keys its run by that month, so a repeat or a second beat is a no-op.
        "monthly-reports": {
            "task": "reports.monthly",
            "schedule": crontab(day_of_month="1", hour=6, minute=30),
            "options": {"expires": 12 * 3600},
        },
        # The expected-recovery fit (OFF_TRACK tier) on the month's closed episodes, on the 1st at 05:10 practice
        # time, keyed by that month like the reports.
        "monthly-expected-recovery": {
            "task": "calibration.fit_expected_recovery",
            "schedule": crontab(day_of_month="1", hour=5, minute=10),
            "options": {"expires": 12 * 3600},
        },
    }


def scheduled_jobs(settings: Settings) -> list[str]:
    """The task names the schedule runs (job_runs uses them as job names), for the operations page."""
    return sorted({str(entry["task"]) for entry in beat_schedule(settings).values()})
