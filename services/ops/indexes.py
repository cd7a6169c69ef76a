"""Indexes the operations page needs on other domains' tables (created by migration 0004).

The page lists what failed for good, newest first, with its reason. Failed rows are few, and without these the
query would read the whole administrations and notifications tables; partial indexes over just the failed rows
keep the page a handful of index reads at any size. Reconcile looks for reports still pending or running: one row
per scope and month adds up (a hundred clinicians for three years is 3,600), so those get a partial index too.
"""

from sqlalchemy import Index, text

from services.notifications.models import Notification
from services.reporting.models import Report
from services.surveys.models import Administration

FAILED_EVALUATIONS = Index(
    "ix_administrations_eval_failed",
    Administration.eval_failed_at,
    postgresql_where=text("eval_failed_at IS NOT NULL"),
    sqlite_where=text("eval_failed_at IS NOT NULL"),
)

FAILED_NOTIFICATIONS = Index(
    "ix_notifications_failed",
    Notification.created_at,
    postgresql_where=text("status = 'failed'"),
    sqlite_where=text("status = 'failed'"),
)

PENDING_REPORTS = Index(
    "ix_reports_pending",
    Report.updated_at,
    postgresql_where=text("status IN ('pending', 'running')"),
    sqlite_where=text("status IN ('pending', 'running')"),
)
