"""A/B experiments: the resource, its history, exposures and reported outcomes.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("deployment", sa.String(length=63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_experiments_deployment", "experiments", ["deployment"])
    op.create_table(
        "experiment_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment", sa.String(length=63), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_experiment_history_experiment", "experiment_history", ["experiment"])
    op.create_table(
        "experiment_exposures",
        sa.Column("experiment", sa.String(length=63), nullable=False),
        sa.Column("unit_id", sa.String(length=128), nullable=False),
        sa.Column("variant", sa.String(length=63), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("experiment", "unit_id"),
    )
    op.create_table(
        "metric_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("metric", sa.String(length=63), nullable=False),
        sa.Column("unit_id", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_metric_events_metric_unit", "metric_events", ["metric", "unit_id"])
    op.create_index("ix_metric_events_request_id", "metric_events", ["request_id"])


def downgrade() -> None:
    op.drop_table("metric_events")
    op.drop_table("experiment_exposures")
    op.drop_table("experiment_history")
    op.drop_table("experiments")
