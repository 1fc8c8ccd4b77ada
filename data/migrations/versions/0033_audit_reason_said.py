"""an audit row keeps what its reason says as sentence codes and values, not only English

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 13:40:00.000000

The audit log's reasons were English text ("created as planner; area community 131208"),
which the audit page showed as it was to administrators reading it in Chinese. ``reason_said``
keeps the same reason as a list of ``[code, {values}]`` (:mod:`data.access.reasons`), from
which the page says it in its own language; ``reason`` stays the English record the API
answers. Rows written before have no codes: the page says the sentences it knows and shows
the rest as written. The log stays append-only (the triggers refuse UPDATE and DELETE).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0033"
down_revision: str | Sequence[str] | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "audit_log",
        sa.Column(
            "reason_said",
            postgresql.JSONB(),
            nullable=True,
            comment="the reason as [[sentence code, {values}], ...] (data.access.reasons)",
        ),
    )


def downgrade() -> None:
    op.drop_column("audit_log", "reason_said")
