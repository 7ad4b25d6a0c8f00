"""Pending downlinks (issue 9, protocol 1.2 delivery receipts): every operator downlink is a
`pending_downlinks` row, repeated until the device's RECEIPT confirms it or it expires, so a
dropped datagram or a modem asleep in PSM loses nothing, across a server restart too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pending_downlinks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("last_channel", sa.String(length=12), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_sent_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_pending_downlinks_device_id_devices")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_pending_downlinks_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_downlinks")),
    )
    op.create_index(op.f("ix_pending_downlinks_incident_id"), "pending_downlinks",
                    ["incident_id"])
    op.create_index("ix_pending_downlinks_state_device", "pending_downlinks",
                    ["state", "device_id"])


def downgrade() -> None:
    op.drop_index("ix_pending_downlinks_state_device", table_name="pending_downlinks")
    op.drop_index(op.f("ix_pending_downlinks_incident_id"), table_name="pending_downlinks")
    op.drop_table("pending_downlinks")
