"""API tokens that expire and carry a scope; kiosk devices as server-side rows that can be listed and revoked;
an index for the audit trail page's action filter

Existing API tokens keep the write scope they effectively had and expire 90 days after this migration.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 22:10:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import services.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=10), nullable=False, server_default="write"))
        batch.add_column(sa.Column("expires_at", services.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_api_tokens_revoked_by_id_users"), "users", ["revoked_by_id"], ["id"])
        batch.create_check_constraint(op.f("ck_api_tokens_scope"), "scope IN ('read', 'write')")
    expires = datetime.now(UTC) + timedelta(days=90)
    if op.get_bind().dialect.name == "sqlite":
        expires = expires.replace(tzinfo=None)
    op.execute(sa.text("UPDATE api_tokens SET expires_at = :at").bindparams(at=expires))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=services.db.UTCDateTime(timezone=True), nullable=False)
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["prefix"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"])

    op.create_table(
        "kiosk_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("paired_by_id", sa.Integer(), nullable=True),
        sa.Column("paired_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_secret_hash", sa.String(length=64), nullable=True),
        sa.Column("secret_rotated_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_agent_hash", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", services.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["paired_by_id"], ["users.id"], name=op.f("fk_kiosk_devices_paired_by_id_users")),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["users.id"], name=op.f("fk_kiosk_devices_revoked_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_devices")),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_table("kiosk_devices")
    op.drop_index("ix_api_tokens_prefix", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f("ck_api_tokens_scope"), type_="check")
        batch.drop_constraint(op.f("fk_api_tokens_revoked_by_id_users"), type_="foreignkey")
        batch.drop_column("revoked_by_id")
        batch.drop_column("expires_at")
        batch.drop_column("scope")
