"""Aggregate queries for reports and the stored monthly reports."""

# The indexes the report needs on other tables: imported here so every metadata user (Alembic, tests) sees them.
from services.reporting import indexes as indexes
