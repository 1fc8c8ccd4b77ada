"""the battery of an elder's newest report, kept on ``zone_state`` as its other facts are

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 09:10:00.000000

The elders list showed the battery of the newest fix, read from the day partitions of
``position``; the elder's page read no partition (0023) and so showed only the newest
keep-alive's, "—" for a watch that sends fixes only: the list said 94 % and the elder's
page "—". And where a keep-alive came after the fix, the list showed the fix's older
figure.

Ingest already walks each elder's fixes and keep-alives in time order to advance the zone
state (``data.care.service._evaluate``); the state now remembers the battery of the newest
report that said one (``geo.care.safezone.ZoneState.battery``), written in the same
statement as the rest of the row. Both pages read it from here. Existing rows take the
battery of the fix at their ``last_fix_time``, if it is still kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "zone_state",
        sa.Column(
            "battery",
            sa.Float(),
            nullable=True,
            comment="per cent, from the elder's newest fix or keep-alive that gave one",
        ),
    )
    op.execute(
        """
        UPDATE zone_state s SET battery = (
            SELECT p.battery FROM position p
            WHERE p.elder_id = s.elder_id AND p.time = s.last_fix_time
            ORDER BY p.id DESC LIMIT 1)
        WHERE s.last_fix_time IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_column("zone_state", "battery")
