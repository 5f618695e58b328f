"""conversation: the email commands' state on a case; 64-bit IMAP numbers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case") as batch_op:
        batch_op.add_column(
            sa.Column("nocopy", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("budget", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("target_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("scheduled_for", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("scheduled_what", sa.String(), nullable=True))
    # IMAP UIDVALIDITY and UIDs are unsigned 32-bit: above 2**31 they overflow INTEGER on
    # PostgreSQL. (SQLite's INTEGER is already 64-bit; batch mode rebuilds the table there.)
    with op.batch_alter_table("message") as batch_op:
        batch_op.alter_column("uidvalidity", type_=sa.BigInteger(), existing_nullable=True)
        batch_op.alter_column("uid", type_=sa.BigInteger(), existing_nullable=True)
    with op.batch_alter_table("mailbox_cursor") as batch_op:
        batch_op.alter_column("uidvalidity", type_=sa.BigInteger(), existing_nullable=False)
        batch_op.alter_column("last_uid", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("mailbox_cursor") as batch_op:
        batch_op.alter_column("last_uid", type_=sa.Integer(), existing_nullable=False)
        batch_op.alter_column("uidvalidity", type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("message") as batch_op:
        batch_op.alter_column("uid", type_=sa.Integer(), existing_nullable=True)
        batch_op.alter_column("uidvalidity", type_=sa.Integer(), existing_nullable=True)
    with op.batch_alter_table("case") as batch_op:
        for column in ("scheduled_what", "scheduled_for", "target_date", "budget", "nocopy"):
            batch_op.drop_column(column)
