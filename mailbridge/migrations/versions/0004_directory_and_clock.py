"""directory loaded into the database, case links, and the clock's next-action time

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import mailbridge.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = mailbridge.store.types.UTCDateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "officer",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("addresses", _json(), server_default="[]", nullable=False),
        sa.Column("delivery_unit", sa.String(length=120), nullable=True),
        sa.Column("manager", sa.String(length=120), nullable=True),
        sa.Column("deputy", sa.String(length=120), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("absent_until", sa.Date(), nullable=True),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("reported_absent_until", sa.Date(), nullable=True),
        sa.Column("undeliverable_at", UTC_TIME, nullable=True),
        sa.Column("undeliverable_reason", sa.String(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "case_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("other_case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["other_case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "other_case_id", "kind"),
    )
    op.create_index(op.f("ix_case_link_case_id"), "case_link", ["case_id"], unique=False)
    op.create_index(
        op.f("ix_case_link_other_case_id"), "case_link", ["other_case_id"], unique=False
    )
    op.create_table(
        "case_place",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "place"),
    )
    op.create_index(op.f("ix_case_place_case_id"), "case_place", ["case_id"], unique=False)
    op.create_index("ix_case_place_place", "case_place", ["place", "received_at"], unique=False)
    with op.batch_alter_table("case") as batch_op:
        batch_op.add_column(sa.Column("next_action_at", UTC_TIME, nullable=True))
        batch_op.add_column(sa.Column("member_replied_at", UTC_TIME, nullable=True))
        batch_op.create_index(op.f("ix_case_next_action_at"), ["next_action_at"], unique=False)
    with op.batch_alter_table("delivery_unit") as batch_op:
        batch_op.add_column(sa.Column("leads", _json(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("escalation_manager", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("escalation_reviewed", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", UTC_TIME, nullable=True))
    with op.batch_alter_table("member") as batch_op:
        batch_op.add_column(sa.Column("addresses", _json(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("digest", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", UTC_TIME, nullable=True))
    # Cases open before this revision: the first sweep looks at each of them once.
    op.execute(
        "UPDATE \"case\" SET next_action_at = updated_at WHERE status NOT IN ('resolved', 'closed')"
        " OR (status = 'resolved' AND closed_at IS NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("member") as batch_op:
        for column in ("updated_at", "digest", "addresses"):
            batch_op.drop_column(column)
    with op.batch_alter_table("delivery_unit") as batch_op:
        for column in ("updated_at", "escalation_reviewed", "escalation_manager", "leads"):
            batch_op.drop_column(column)
    with op.batch_alter_table("case") as batch_op:
        batch_op.drop_index(op.f("ix_case_next_action_at"))
        batch_op.drop_column("member_replied_at")
        batch_op.drop_column("next_action_at")
    op.drop_index("ix_case_place_place", table_name="case_place")
    op.drop_index(op.f("ix_case_place_case_id"), table_name="case_place")
    op.drop_table("case_place")
    op.drop_index(op.f("ix_case_link_other_case_id"), table_name="case_link")
    op.drop_index(op.f("ix_case_link_case_id"), table_name="case_link")
    op.drop_table("case_link")
    op.drop_table("officer")
