"""Guardian SMS that are retried and tracked part by part: each notification names its stage
(opened, dispatched, resolved, false_alarm), counts its attempts, and knows when to try again
and when to give up; `sms_parts` holds one row per SMS of a concatenated message (or per gateway
reference), so a delivery report for any part finds its notification.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("stage", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", TS, nullable=True))
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
        batch.create_index("ix_notifications_next_attempt_at", ["next_attempt_at"])
    op.create_table(
        "sms_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("gateway_ref", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sms_parts_notification_id", "sms_parts", ["notification_id"])
    op.create_index("ix_sms_parts_gateway_ref", "sms_parts", ["gateway_ref"])


def downgrade() -> None:
    op.drop_index("ix_sms_parts_gateway_ref", table_name="sms_parts")
    op.drop_index("ix_sms_parts_notification_id", table_name="sms_parts")
    op.drop_table("sms_parts")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_next_attempt_at")
        batch.drop_column("expires_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
        batch.drop_column("stage")
