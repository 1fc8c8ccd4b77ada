"""A planner's change of one grid (shape or worker), and what follows any change of grids.

``data.district.grids.update_grid`` changes the grid and reassigns the points; the people
tied to a grid follow here, where a published plan's switch sends them too: open cases to
the grid's worker (``data.incidents``) and elders' "home grid" zones to the grid's outline
(``data.care``). ``data.district`` cannot ask them itself: care reads the district.
"""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from sqlalchemy import text

from data.access.queries import AreaScope, Db
from data.assignment.service import TableResult
from data.care.service import follow_home_grids
from data.crs import metric_epsg, require_epsg
from data.district.grids import GridRef, update_grid
from data.incidents.service import follow_grid_workers
from data.settings import Settings


def follow_grids(
    db: Db, grid_ids: Sequence[int], *, actor: str, epsg: int, settings: Settings
) -> dict[str, int]:
    """Hand the grids' open cases to their workers and redraw their elders' home-grid zones;
    how many of each changed."""
    handed = follow_grid_workers(
        db, list(grid_ids), actor=actor, webhook_url=settings.case_webhook_url
    )
    return {
        "cases_handed_over": handed,
        "zones_redrawn": follow_home_grids(db, grid_ids=grid_ids, epsg=epsg),
    }


def change_grid(
    db: Db,
    grid: GridRef,
    *,
    scope: AreaScope,
    geometry: shapely.Polygon | None,
    worker_code: str | None,
    settings: Settings,
    actor: str,
) -> list[TableResult]:
    """:func:`update_grid`, then what follows for every current grid of the community (a new
    outline can move households and incidents into a neighbour)."""
    results = update_grid(
        db, grid, scope=scope, geometry=geometry, worker_code=worker_code, settings=settings
    )
    ids = [grid.id]
    if geometry is not None:
        ids = [
            int(g)
            for g in db.execute(
                text("SELECT id FROM grid WHERE community_id = :c AND valid_to IS NULL"),
                {"c": grid.community_id},
            ).scalars()
        ]
    epsg = require_epsg(metric_epsg(db, settings.metric_epsg))
    follow_grids(db, ids, actor=actor, epsg=epsg, settings=settings)
    return results
