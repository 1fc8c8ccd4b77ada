"""the live inboxes look for alerts acknowledged or closed lately, through two indexes

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 14:00:00.000000

An open alerts inbox heard of new alerts only: a colleague's "I'm on it", a close, or an alert
closed by itself (the watch reporting again) showed on reload. Every look of the live inboxes
now also asks which alerts were acknowledged or closed in the last half minute
(``data.care.queries.alert_changes_since``); these indexes keep that look off the whole table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | Sequence[str] | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alert_acknowledged_at", "alert", ["acknowledged_at"])
    op.create_index("ix_alert_closed_at", "alert", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_closed_at", table_name="alert")
    op.drop_index("ix_alert_acknowledged_at", table_name="alert")
