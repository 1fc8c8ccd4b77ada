"""an elder's last receipt of a fix kept on their zone state, not read from every partition

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 20:15:00.000000

The elder record's "last fix received" was ``max(received_at)`` over the elder's positions,
and it had to read every day partition (migration 0019): ingest stores a late fix up to the
retention period old, which lands in an old day while being the one received last, so no
time bound is exact. With 1.1 M fixes of 20 elders over 43 days it read all 52 partitions,
52 ms an elder, against 0.2 ms for the column (a scratch benchmark, load 2.4–4.9). The
list of elders meanwhile took the receipt of the newest fix by time, so the two pages could
disagree on when a watch was last heard from.

``zone_state.last_received_at`` now holds it. Ingest sets it, in the statement that writes a
batch's zone states (``data.care.queries.save_zone_states``, under the row lock ingest takes
first), to the greatest of its value and the receipt of the fixes it stored for the elder; a
fix dropped as a repeat changes nothing, as it added no row to the maximum. This migration
fills it from the positions stored so far. It takes ``zone_state``'s lock for its length, so
no batch stores fixes between the fill and the commit; API servers must run the new code from
then on (a server still on the old code stores fixes without setting it).

It is a fact about the watch, not a position: purging old positions (retention), or deleting
the trail when consent is withdrawn, leaves it, like ``device.last_heard_at`` of a
keep-alive. Forgetting an elder deletes it with the zone state.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE zone_state ADD COLUMN last_received_at timestamptz")
    op.execute(
        "COMMENT ON COLUMN zone_state.last_received_at IS 'when a fix of the elder was last "
        "received (stored), whatever its own time; kept when positions are purged'"
    )
    op.execute(
        """
        UPDATE zone_state s SET last_received_at = p.received
        FROM (SELECT elder_id, max(received_at) AS received FROM position GROUP BY elder_id) p
        WHERE p.elder_id = s.elder_id
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE zone_state DROP COLUMN last_received_at")
