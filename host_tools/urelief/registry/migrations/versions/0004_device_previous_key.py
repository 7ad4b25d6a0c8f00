"""Device key rotation: the previous key (id and sealed secret) stays valid until the device
uses the new one (docs/protocol.md section 8).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("prev_key_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("prev_key_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("prev_key_sealed")
        batch.drop_column("prev_key_id")
