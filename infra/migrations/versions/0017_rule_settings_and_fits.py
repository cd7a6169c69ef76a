"""rule settings and expected-recovery fits: where a settings version came from, and the monthly OFF_TRACK fits

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-06 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice_settings") as batch:
        batch.add_column(sa.Column("source", sa.String(length=20), nullable=False, server_default="person"))
    op.create_table(
        "trajectory_fits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_code", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("b0", sa.Float(), nullable=False),
        sa.Column("b1", sa.Float(), nullable=False),
        sa.Column("b2", sa.Float(), nullable=False),
        sa.Column("b3", sa.Float(), nullable=False),
        sa.Column("sigma_pred", sa.Float(), nullable=False),
        sa.Column("n_episodes", sa.Integer(), nullable=False),
        sa.Column("n_observations", sa.Integer(), nullable=False),
        sa.Column("r_squared", sa.Float(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trajectory_fits")),
        sa.UniqueConstraint("instrument_code", "period", name=op.f("uq_trajectory_fits_instrument_code_period")),
    )


def downgrade() -> None:
    op.drop_table("trajectory_fits")
    with op.batch_alter_table("practice_settings") as batch:
        batch.drop_column("source")
