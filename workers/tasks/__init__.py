"""Celery tasks, one module per domain. Importing this package registers them all."""

from workers.tasks import alerts, calibration, notifications, ops, reports, reviews, surveys

__all__ = ["alerts", "calibration", "notifications", "ops", "reports", "reviews", "surveys"]
