"""Silent-caller links (issue 14): the `caller_links` table, and `silent_caller` as an incident
source.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _sources(*values: str) -> sa.Enum:
    return sa.Enum(*values, name="incident_source", native_enum=False, create_constraint=True,
                   length=24)


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.alter_column("source", existing_type=_sources("device", "aml"),
                           type_=_sources("device", "aml", "silent_caller"),
                           existing_nullable=False)
    op.create_table(
        "caller_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("msisdn", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("holder_hash", sa.String(length=64), nullable=True),
        sa.Column("last_seen_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_caller_links_incident_id_incidents")),
        sa.ForeignKeyConstraint(["created_by"], ["operators.id"],
                                name=op.f("fk_caller_links_created_by_operators")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_caller_links_token_hash")),
    )
    op.create_index(op.f("ix_caller_links_incident_id"), "caller_links", ["incident_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_caller_links_incident_id"), table_name="caller_links")
    op.drop_table("caller_links")
    with op.batch_alter_table("incidents") as batch:
        batch.alter_column("source", existing_type=_sources("device", "aml", "silent_caller"),
                           type_=_sources("device", "aml"), existing_nullable=False)
