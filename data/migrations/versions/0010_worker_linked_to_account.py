"""a grid worker's account: worker.user_id links the worker record to an app_user

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00.000000

Households are read by the worker of their grid (``data.policy``): ``grid.worker_id`` names
the worker record, and this column names the account that worker signs in with. At most one
worker record per account; removing the account unlinks the record (the worker stays).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "worker",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("app_user.id", ondelete="SET NULL"),
            nullable=True,
            comment="the account this worker signs in with",
        ),
    )
    op.create_unique_constraint("uq_worker_user_id", "worker", ["user_id"])


def downgrade() -> None:
    op.drop_constraint("uq_worker_user_id", "worker", type_="unique")
    op.drop_column("worker", "user_id")
