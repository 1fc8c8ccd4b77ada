"""plans: a scheduled switch, undo/redo steps, grid lineage

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 14:00:00.000000

A plan published with a future effective date no longer touches the current grids: it is
kept as published with ``effective`` and no ``switched_at``, and the switch (old grids
closed, new ones opened, everything reassigned) runs by itself on the effective date, in one
transaction (:func:`data.planning.service.switch_due`). ``plan_step`` keeps every edit of a
draft (moves, locks, re-splits) with who did it and when, so undo and redo survive a reload
and can be audited. ``grid_lineage`` links each grid a plan closed to the grids it opened,
with the area they share; new grids get new codes, an old code is never given to a new shape.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("plan", sa.Column("effective", sa.Date(), nullable=True))
    op.add_column("plan", sa.Column("switched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("plan", sa.Column("published_by", sa.String(128), nullable=True))
    op.add_column("plan_grid", sa.Column("published_code", sa.String(64), nullable=True))
    # Plans published before this revision switched at once.
    op.execute(
        "UPDATE plan SET switched_at = published_at, effective = published_at::date "
        "WHERE status <> 'draft'"
    )
    op.create_table(
        "plan_step",
        sa.Column(
            "plan_id", sa.Integer(), sa.ForeignKey("plan.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("summary", sa.String(200), nullable=False, server_default=""),
        sa.Column("changes", JSONB(), nullable=False, server_default="[]"),
        sa.Column("locks", JSONB(), nullable=False, server_default="[]"),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.Column("state", sa.String(8), nullable=False, server_default="done"),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("plan_id", "seq"),
        sa.CheckConstraint("state IN ('done', 'undone', 'dropped')", name="plan_step_state"),
    )
    op.create_table(
        "grid_lineage",
        sa.Column(
            "plan_id", sa.Integer(), sa.ForeignKey("plan.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "old_grid_id",
            sa.Integer(),
            sa.ForeignKey("grid.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "new_grid_id",
            sa.Integer(),
            sa.ForeignKey("grid.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("shared_m2", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("old_grid_id", "new_grid_id"),
    )
    op.create_index("ix_grid_lineage_new_grid_id", "grid_lineage", ["new_grid_id"])


def downgrade() -> None:
    op.drop_index("ix_grid_lineage_new_grid_id", table_name="grid_lineage")
    op.drop_table("grid_lineage")
    op.drop_table("plan_step")
    op.drop_column("plan_grid", "published_code")
    op.drop_column("plan", "published_by")
    op.drop_column("plan", "switched_at")
    op.drop_column("plan", "effective")
