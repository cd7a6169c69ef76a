"""claims tied to liveness: the worker process that claimed an outbox message or an evaluation, and how many send
attempts ended with their outcome unknown (the worker died mid-send)

Revision ID: 0016
Revises: 0017
Create Date: 2026-12-06 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db

revision: str = "0016"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("unknown_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("administrations") as batch:
        batch.add_column(sa.Column("eval_claimed_by", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("eval_claimed_at", services.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("administrations") as batch:
        batch.drop_column("eval_claimed_at")
        batch.drop_column("eval_claimed_by")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("unknown_attempts")
        batch.drop_column("claimed_by")
