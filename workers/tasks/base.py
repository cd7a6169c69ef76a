"""Shared task options."""

from typing import Any

# For tasks that are idempotent by a natural key: redeliver them if a worker dies mid-task.
IDEMPOTENT: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}
