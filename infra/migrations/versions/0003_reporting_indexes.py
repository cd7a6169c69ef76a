"""reporting indexes: administrations by instrument and completion time

The monthly report counts one month of one or two instruments at a time (Partnership Checks, therapist ratings,
PHQ-9 and GAD-7 at the not-on-track checkpoint); EXPLAIN ANALYZE on the large demo showed full scans of
administrations for each. Declared in services/reporting/indexes.py.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("administrations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_administrations_instrument_completed", ["instrument_code", "completed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("administrations", schema=None) as batch_op:
        batch_op.drop_index("ix_administrations_instrument_completed")
