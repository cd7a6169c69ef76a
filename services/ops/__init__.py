"""Operational state: periodic job runs and process heartbeats, the re-drive, the beat lock, health."""

# The indexes the operations page needs on other tables: imported here so every metadata user (Alembic, tests) sees
# them.
from services.ops import indexes as indexes
