"""Celery tasks, one module per domain. Importing this package registers them all."""

from workers.tasks import notifications, ops

__all__ = ["notifications", "ops"]
