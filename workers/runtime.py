"""Per-process settings and database for tasks (opened lazily, reset after fork)."""

from __future__ import annotations

from services.config import Settings, load_settings
from services.db import Database, get_database, reset_databases

_settings: Settings | None = None


def settings() -> Settings:
    """The process's settings: given by use_settings, else read once from the environment."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def use_settings(value: Settings) -> None:
    """Make value the settings tasks and enqueueing use in this process (the web app and tests call it)."""
    global _settings
    _settings = value


def database() -> Database:
    """The worker process's database."""
    return get_database(settings().database_url)


def reset_after_fork() -> None:
    """Forget inherited connections: a forked child must open its own."""
    reset_databases()
