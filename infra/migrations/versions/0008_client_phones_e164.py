"""client phones as E.164: rewrite stored numbers that phonenumbers can read; leave the others for the front desk

Numbers without a country code are read in RAPPORT_PHONE_REGION (default GB), as the web form and the API read
them from now on. A number that cannot be read is kept as it is: the next edit of that client asks for a valid one.
The downgrade keeps the E.164 form (it is a valid number in the old format too).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04 22:00:00.000000
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.clients.phones import DEFAULT_REGION, PhoneNumberError, is_region, normalise_phone

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

clients = sa.table("clients", sa.column("id", sa.Integer()), sa.column("phone", sa.String(40)))


def upgrade() -> None:
    region = (os.environ.get("RAPPORT_PHONE_REGION") or DEFAULT_REGION).upper()
    if not is_region(region):
        region = DEFAULT_REGION
    connection = op.get_bind()
    rows = connection.execute(sa.select(clients.c.id, clients.c.phone).where(clients.c.phone.is_not(None))).all()
    for client_id, phone in rows:
        try:
            e164 = normalise_phone(phone, region=region)
        except PhoneNumberError:
            continue
        if e164 != phone:
            connection.execute(sa.update(clients).where(clients.c.id == client_id).values(phone=e164))


def downgrade() -> None:
    pass
