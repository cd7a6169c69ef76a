"""invitation tokens; default protocols

Survey links are minted when a message is sent (and again for a reminder, the kiosk or a copied link), so an
invitation can have several tokens: they move from invitations.token_hash to their own table. Hashes already
stored keep working. The practice's default measurement protocols are added when missing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Literal data as of this revision (instrument codes are those of services/measures/definitions).
DEFAULT_PROTOCOLS = [
    {
        "code": "standard",
        "name": "Standard: PHQ-9, GAD-7 and goals before, Partnership Check after",
        "pre_session": ["PHQ-9", "GAD-7", "GOAL-PROGRESS"],
        "post_session": ["PARTNERSHIP-CHECK"],
        "is_default": True,
    },
    {
        "code": "alliance_only",
        "name": "Partnership Check only",
        "pre_session": [],
        "post_session": ["PARTNERSHIP-CHECK"],
        "is_default": False,
    },
]


def _sqlite_foreign_keys(on: bool) -> None:
    """SQLite drops a column by rebuilding the table, which other tables' rows point at.

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
        "invitation_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("created_at", services.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"], ["invitations.id"], name=op.f("fk_invitation_tokens_invitation_id_invitations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_tokens_token_hash")),
    )
    with op.batch_alter_table("invitation_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitation_tokens_invitation_id"), ["invitation_id"], unique=False)

    # Links already sent keep working: their hashes move over.
    op.execute(
        """
        INSERT INTO invitation_tokens (invitation_id, token_hash, purpose, created_at)
        SELECT id, token_hash,
               CASE WHEN channel IN ('email', 'sms', 'kiosk', 'link') THEN channel ELSE 'link' END,
               COALESCE(sent_at, created_at)
        FROM invitations WHERE token_hash IS NOT NULL
        """
    )
    _sqlite_foreign_keys(on=False)
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_invitations_token_hash"), type_="unique")
        batch_op.drop_column("token_hash")
    _sqlite_foreign_keys(on=True)

    protocols = sa.table(
        "protocols",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("pre_session", sa.JSON),
        sa.column("post_session", sa.JSON),
        sa.column("is_default", sa.Boolean),
    )
    bind = op.get_bind()
    existing = set(bind.execute(sa.select(protocols.c.code)).scalars())
    has_default = bool(bind.execute(sa.select(protocols.c.code).where(protocols.c.is_default.is_(True))).first())
    missing = []
    for row in DEFAULT_PROTOCOLS:
        if row["code"] in existing:
            continue
        missing.append({**row, "is_default": bool(row["is_default"]) and not has_default})
    if missing:
        op.bulk_insert(protocols, missing)


def downgrade() -> None:
    _sqlite_foreign_keys(on=False)
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_invitations_token_hash"), ["token_hash"])
    _sqlite_foreign_keys(on=True)
    # One hash per invitation survives (the oldest); links minted later stop working.
    op.execute(
        """
        UPDATE invitations SET token_hash = (
            SELECT t.token_hash FROM invitation_tokens t WHERE t.invitation_id = invitations.id
            ORDER BY t.id LIMIT 1
        )
        """
    )
    with op.batch_alter_table("invitation_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_tokens_invitation_id"))
    op.drop_table("invitation_tokens")
