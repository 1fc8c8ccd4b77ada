"""the "home grid" safe zones drawn before they followed their grid are redrawn once

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 16:40:00.000000

A zone of kind ``home_grid`` promises the elder's home grid grown by ``buffer_m``; it was
stored as drawn at enrolment and kept that shape when a published plan, a grid's new outline
or a household's move gave the elder another home grid (0036 moved ``home_grid_id``, not the
zone). ``data.care.service.follow_home_grids`` redraws them from now on; this upgrade redraws
those already behind, in the deployment's metric CRS as the app draws them (GEOS buffer with
16 segments per quarter circle, as shapely's). Nothing to do before a metric CRS is chosen
(no data). Circles and drawn polygons are left as staff drew them. The downgrade keeps the
redrawn shapes: the old ones were the fault.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | Sequence[str] | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        WITH m AS (SELECT value::int AS epsg FROM deployment_setting WHERE key = 'metric_epsg'),
        drawn AS (
            SELECT z.elder_id,
                   ST_Transform(ST_Buffer(ST_Transform(g.geom, m.epsg),
                                          coalesce(z.buffer_m, 200), 16), 4326) AS geom
            FROM safe_zone z JOIN elder e ON e.id = z.elder_id
            JOIN grid g ON g.id = e.home_grid_id, m
            WHERE z.kind = 'home_grid'
        )
        UPDATE safe_zone z SET geom = d.geom, updated_at = now()
        FROM drawn d
        WHERE z.elder_id = d.elder_id AND NOT ST_Covers(z.geom, (
            SELECT g.geom FROM elder e JOIN grid g ON g.id = e.home_grid_id
            WHERE e.id = z.elder_id))
        """
    )


def downgrade() -> None:
    pass
