"""Rapport's Celery app with a fast beat schedule, for the fault tier: `celery -A tests.fault.fast_beat beat ...`.

Every periodic job of workers.schedule that runs on an interval runs every RAPPORT_TEST_BEAT_SECONDS instead (the
crontab jobs are left out), so a test sees several periods in seconds. The entries are the production ones, period
placeholders included.
"""

from __future__ import annotations

import os

from workers import runtime
from workers.app import celery_app
from workers.schedule import beat_schedule

SECONDS = float(os.environ.get("RAPPORT_TEST_BEAT_SECONDS", "2"))

celery_app.conf.beat_schedule = {
    name: {**entry, "schedule": SECONDS}
    for name, entry in beat_schedule(runtime.settings()).items()
    if isinstance(entry["schedule"], float)
}
app = celery_app
