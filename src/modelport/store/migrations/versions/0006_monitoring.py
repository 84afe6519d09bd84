"""The prediction log (one row per logged request), versions' reference profiles, and
feedback (ground truth joined to logged requests).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("protocol", sa.String(length=10), nullable=False),
        sa.Column("deployment", sa.String(length=63), nullable=True),
        sa.Column("slot", sa.String(length=63), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=80), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prediction_log_request_id", "prediction_log", ["request_id"])
    # only two indexes: each costs the write path a few µs per request (a third, on model,
    # version and time, cost more than the other two together); a model's window is the time
    # index's range, filtered
    op.create_index("ix_prediction_log_at", "prediction_log", ["at"])
    op.create_table(
        "reference_profiles",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("sample", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id"),
    )

    op.create_table(
        "feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=128), nullable=True),
        sa.Column("truth", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feedback_request_id_row", "feedback", ["request_id", "row"], unique=True)


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("reference_profiles")
    op.drop_table("prediction_log")
