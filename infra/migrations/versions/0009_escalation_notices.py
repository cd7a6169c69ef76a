"""escalation notices: one row per person told about an escalated alert, so messages go out as digests

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("created_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", services.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_escalation_notices_alert_id_alerts")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_escalation_notices_user_id_users")),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_escalation_notices_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_notices")),
        sa.UniqueConstraint("alert_id", "user_id", name=op.f("uq_escalation_notices_alert_id_user_id")),
    )
    op.create_index(
        "ix_escalation_notices_user_notified", "escalation_notices", ["user_id", "notified_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_escalation_notices_user_notified", table_name="escalation_notices")
    op.drop_table("escalation_notices")
