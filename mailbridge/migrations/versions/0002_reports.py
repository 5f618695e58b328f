"""reports: feedback, chasing and routing measures on cases; member and DU records; indexes

Existing cases get 0 chasers, escalations and reroutes (the daemon had sent none before this
revision) and no routing record (first DU unknown), so they are left out of first time right.
The indexes are the covering ones the reports read (see Case.__table_args__).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:59:33.874181
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailbridge.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_unit",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("created_at", mailbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "member",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("ward", sa.String(), nullable=False),
        sa.Column("party", sa.String(), nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("created_at", mailbridge.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column(
                "feedback_at", mailbridge.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("chasers_sent", sa.Integer(), server_default="0", nullable=True)
        )
        batch_op.add_column(
            sa.Column("escalations", sa.Integer(), server_default="0", nullable=True)
        )
        batch_op.add_column(sa.Column("first_delivery_unit", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column(
                "first_assigned_at",
                mailbridge.store.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("reroutes", sa.Integer(), server_default="0", nullable=True))
        batch_op.add_column(sa.Column("misroute_flag_seconds", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_case_report_due",
            ["due_at", "resolved_at", "delay_advised_at", "delivery_unit", "kind"],
            unique=False,
        )
        batch_op.create_index(
            "ix_case_report_member", ["member", "received_at", "kind"], unique=False
        )
        batch_op.create_index(
            "ix_case_report_open",
            ["resolved_at", "received_at", "delivery_unit", "kind"],
            unique=False,
        )
        batch_op.create_index(
            "ix_case_report_received",
            [
                "received_at",
                "delivery_unit",
                "status",
                "first_delivery_unit",
                "first_response_at",
                "resolved_at",
                "closed_at",
                "feedback",
                "chasers_sent",
                "escalations",
                "reroutes",
                "misroute_flag_seconds",
                "kind",
            ],
            unique=False,
        )
        batch_op.create_index(
            "ix_case_report_routing",
            ["first_delivery_unit", "reroutes", "misroute_flag_seconds", "received_at", "kind"],
            unique=False,
        )
        batch_op.create_index(
            "ix_case_report_status",
            [
                "delivery_unit",
                "status",
                "received_at",
                "first_response_at",
                "resolved_at",
                "closed_at",
                "feedback",
                "chasers_sent",
                "escalations",
                "kind",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_report_status")
        batch_op.drop_index("ix_case_report_routing")
        batch_op.drop_index("ix_case_report_received")
        batch_op.drop_index("ix_case_report_open")
        batch_op.drop_index("ix_case_report_member")
        batch_op.drop_index("ix_case_report_due")
        batch_op.drop_column("misroute_flag_seconds")
        batch_op.drop_column("reroutes")
        batch_op.drop_column("first_assigned_at")
        batch_op.drop_column("first_delivery_unit")
        batch_op.drop_column("escalations")
        batch_op.drop_column("chasers_sent")
        batch_op.drop_column("feedback_at")
        batch_op.drop_column("feedback")

    op.drop_table("member")
    op.drop_table("delivery_unit")
