"""Celery tasks, one module per domain. Importing this package registers them all."""

from workers.tasks import alerts, notifications, ops, reports, surveys

__all__ = ["alerts", "notifications", "ops", "reports", "surveys"]
