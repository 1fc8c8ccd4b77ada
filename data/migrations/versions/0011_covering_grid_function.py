"""the covering rule once: grid_covering(point[, day]) — the lowest-code grid that covers it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 12:40:00.000000

"A point belongs to the current grid that ``ST_Covers`` it; on a shared edge or vertex the
lowest code (bytewise, ``COLLATE "C"``) wins" was written out in four SQL statements
(assignment's check, the device ingest, zone states, ``/grids/on``). It is now one function,
and the in-process index (``geo.assignment.index``) is tested equal to it.

``day`` NULL means the current grids (``valid_to IS NULL``); a date means the grids valid on
that day. The function is ``STABLE`` and a single ``SELECT``, so the GiST index on
``grid.geom`` serves every call.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION grid_covering(pt geometry, day date DEFAULT NULL) RETURNS integer
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT g.id FROM grid g
            WHERE ST_Covers(g.geom, pt)
              AND CASE WHEN day IS NULL THEN g.valid_to IS NULL
                       ELSE g.valid_from <= day AND (g.valid_to IS NULL OR g.valid_to > day) END
            ORDER BY g.code COLLATE "C"
            LIMIT 1
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION grid_covering(geometry, date)")
