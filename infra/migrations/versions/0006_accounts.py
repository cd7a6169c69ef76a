"""accounts: password-reset links; a staff member's language is null until they choose one

Until now nobody could choose a language, so the stored "en" was only the column default: it becomes null (pages
then follow the browser's language). A stored "es" was set on purpose and is kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_foreign_keys(on: bool) -> None:
    """SQLite changes a column by rebuilding the table, which other tables' rows point at (as in 0002).

    Its foreign-key checks can only be switched off between transactions, so on SQLite (local use only) the
    migration commits what it did so far, rebuilds with the checks off, and verifies every reference after.
    """
    if op.get_bind().dialect.name != "sqlite":
        return
    if on:
        violations = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise RuntimeError(f"foreign keys broken by the table rebuild: {violations[:5]}")
    op.execute("COMMIT")
    op.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    op.execute("BEGIN")


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", services.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", services.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_password_resets_requested_by_id_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_password_resets_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index("ix_password_resets_user_created", "password_resets", ["user_id", "created_at"], unique=False)
    _sqlite_foreign_keys(on=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("language", existing_type=sa.String(length=8), nullable=True)
    _sqlite_foreign_keys(on=True)
    op.execute("UPDATE users SET language = NULL WHERE language = 'en'")


def downgrade() -> None:
    op.execute("UPDATE users SET language = 'en' WHERE language IS NULL")
    _sqlite_foreign_keys(on=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("language", existing_type=sa.String(length=8), nullable=False)
    _sqlite_foreign_keys(on=True)
    op.drop_index("ix_password_resets_user_created", table_name="password_resets")
    op.drop_table("password_resets")
