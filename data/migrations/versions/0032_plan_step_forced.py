"""a plan's move made despite the checks says so in a column, not in its English summary

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 12:30:00.000000

The planner's list of changes tells a move forced past the band and contiguity checks
("… despite the checks") from one that passed them. It read that from the step's English
summary ending in "(forced)": the words were the data. ``plan_step.forced`` keeps it; the
existing steps take it from their summaries.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | Sequence[str] | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "plan_step",
        sa.Column(
            "forced",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
            comment="a move made despite the band and contiguity checks",
        ),
    )
    op.execute("UPDATE plan_step SET forced = true WHERE summary LIKE '%(forced)'")


def downgrade() -> None:
    op.drop_column("plan_step", "forced")
