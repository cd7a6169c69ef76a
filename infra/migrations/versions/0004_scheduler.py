"""scheduler: who completed a review, reviews by due time, failed evaluations and messages, pending reports

The reminder pass reads open reviews by due time; the operations page lists failed evaluations and failed
messages, newest first; reconcile looks for pending reports (partial indexes over just those rows, declared in
services/ops/indexes.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILED_EVALUATION = sa.text("eval_failed_at IS NOT NULL")
FAILED_MESSAGE = sa.text("status = 'failed'")
PENDING_REPORT = sa.text("status IN ('pending', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("completed_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reviews_completed_by_id_users"), "users", ["completed_by_id"], ["id"]
        )
        batch_op.create_index("ix_reviews_status_due", ["status", "due_at"], unique=False)
    with op.batch_alter_table("administrations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_administrations_eval_failed",
            ["eval_failed_at"],
            unique=False,
            postgresql_where=FAILED_EVALUATION,
            sqlite_where=FAILED_EVALUATION,
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_failed",
            ["created_at"],
            unique=False,
            postgresql_where=FAILED_MESSAGE,
            sqlite_where=FAILED_MESSAGE,
        )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reports_pending",
            ["updated_at"],
            unique=False,
            postgresql_where=PENDING_REPORT,
            sqlite_where=PENDING_REPORT,
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index("ix_reports_pending", postgresql_where=PENDING_REPORT, sqlite_where=PENDING_REPORT)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_failed", postgresql_where=FAILED_MESSAGE, sqlite_where=FAILED_MESSAGE)
    with op.batch_alter_table("administrations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_administrations_eval_failed", postgresql_where=FAILED_EVALUATION, sqlite_where=FAILED_EVALUATION
        )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_status_due")
        batch_op.drop_constraint(batch_op.f("fk_reviews_completed_by_id_users"), type_="foreignkey")
        batch_op.drop_column("completed_by_id")
