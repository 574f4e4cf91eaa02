"""Model runs: fitted models stored in the workspace (the MMM first).

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
    op.create_table(
        "model_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("usable", sa.Boolean, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("data_start", sa.String(10), nullable=False),
        sa.Column("data_end", sa.String(10), nullable=False),
        sa.Column("frequency", sa.String(4), nullable=False),
        sa.Column("periods", sa.Integer, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("artifact", sa.String(500), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_model_runs_kind", "model_runs", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_model_runs_kind", table_name="model_runs")
    op.drop_table("model_runs")
