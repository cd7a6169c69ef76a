"""audit chain: each audit row carries its position and a hash of its content and of the row before it

Existing rows are chained in id order. On PostgreSQL a trigger also refuses TRUNCATE of the trail.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-04 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.db
from services.audit.chain import GENESIS, detail_text, event_hash

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("at", services.db.UTCDateTime(timezone=True)),
    sa.column("actor_id", sa.Integer()),
    sa.column("actor_label", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject_type", sa.String()),
    sa.column("subject_id", sa.Integer()),
    sa.column("client_id", sa.Integer()),
    sa.column("ip", sa.String()),
    sa.column("detail", sa.JSON()),
    sa.column("seq", sa.BigInteger()),
    sa.column("row_hash", sa.String()),
)


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_events", sa.Column("row_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_events_seq", "audit_events", ["seq"], unique=True)
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    seq, last = _chain_existing_rows()
    op.execute(
        sa.text("INSERT INTO audit_chain (id, seq, last_hash) VALUES (1, :seq, :last)").bindparams(seq=seq, last=last)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();"
        )


def _chain_existing_rows() -> tuple[int, str]:
    """Chain the rows written before this migration, in id order (the append-only trigger paused meanwhile)."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_events).order_by(_events.c.id)).all()
    if not rows:
        return 0, GENESIS
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
    last = GENESIS
    for seq, row in enumerate(rows, start=1):
        last = event_hash(
            last,
            seq=seq,
            at=row.at,
            actor_id=row.actor_id,
            actor_label=row.actor_label,
            action=row.action,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            client_id=row.client_id,
            ip=row.ip,
            detail_json=detail_text(row.detail),
        )
        bind.execute(sa.update(_events).where(_events.c.id == row.id).values(seq=seq, row_hash=last))
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change")
    else:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;"
        )
    return len(rows), last


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
    op.drop_table("audit_chain")
    op.drop_index("ix_audit_events_seq", table_name="audit_events")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("row_hash")
        batch_op.drop_column("seq")
