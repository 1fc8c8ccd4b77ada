"""ogc.buildings: building footprints for the vector-tile viewer's ground

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 14:20:00.000000

The vector-tile viewer drew grids, roads and facilities on a blank background: no buildings
and no names, where every other map shows the ground. Its tiles come from the ``ogc`` schema
only (0005), so the footprints get a view there: outline, kind and levels, no household count
(what a building holds stays behind the API, like the households themselves).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | Sequence[str] | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE OR REPLACE VIEW ogc.buildings AS SELECT b.id, b.source_id, b.building_type, "
        "b.levels, b.geom FROM public.building b"
    )
    op.execute("COMMENT ON VIEW ogc.buildings IS 'building footprints (no household counts)'")


def downgrade() -> None:
    op.execute("DROP VIEW ogc.buildings")
