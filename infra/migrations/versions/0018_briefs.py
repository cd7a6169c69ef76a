"""briefs: a session's feedback marked as discussed with the client, and goal revisions agreed together

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "brief_discussions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=False),
        sa.Column("discussed_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_brief_discussions_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(["episode_id"], ["episodes.id"], name=op.f("fk_brief_discussions_episode_id_episodes")),
        sa.ForeignKeyConstraint(["clinician_id"], ["users.id"], name=op.f("fk_brief_discussions_clinician_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brief_discussions")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_brief_discussions_appointment_id")),
    )
    op.create_index("ix_brief_discussions_clinician_at", "brief_discussions", ["clinician_id", "discussed_at"])
    op.create_index(op.f("ix_brief_discussions_episode_id"), "brief_discussions", ["episode_id"])
    op.create_table(
        "goal_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("goals", sa.JSON(), nullable=False),
        sa.Column("revised_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revised_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["episode_id"], ["episodes.id"], name=op.f("fk_goal_revisions_episode_id_episodes")),
        sa.ForeignKeyConstraint(["revised_by_id"], ["users.id"], name=op.f("fk_goal_revisions_revised_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goal_revisions")),
        sa.UniqueConstraint("episode_id", "version", name=op.f("uq_goal_revisions_episode_id_version")),
    )
    op.create_index(op.f("ix_goal_revisions_episode_id"), "goal_revisions", ["episode_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_goal_revisions_episode_id"), table_name="goal_revisions")
    op.drop_table("goal_revisions")
    op.drop_index(op.f("ix_brief_discussions_episode_id"), table_name="brief_discussions")
    op.drop_index("ix_brief_discussions_clinician_at", table_name="brief_discussions")
    op.drop_table("brief_discussions")
