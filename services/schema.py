"""Schema management through Alembic: upgrade, heads, and drift against the models."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from services.config import PROJECT_ROOT
from services.models import Base

ALEMBIC_INI = PROJECT_ROOT / "infra" / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at infra/migrations."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "infra" / "migrations"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database at engine up to revision."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def heads() -> list[str]:
    """The migration heads (there must be exactly one)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when unversioned."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def drift(engine: Engine) -> list[Any]:
    """Differences between the migrated database and the models (empty when they match)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))
