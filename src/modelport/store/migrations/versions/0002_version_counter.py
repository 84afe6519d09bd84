"""Per-model version counter, so a deleted version's number is never handed out again.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "registered_models",
        sa.Column("last_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE registered_models SET last_version = COALESCE("
        "(SELECT MAX(v.version) FROM model_versions v "
        "WHERE v.model_id = registered_models.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("registered_models") as batch:
        batch.drop_column("last_version")
