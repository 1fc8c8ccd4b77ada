"""The app's in-memory grid index: built once, reused until the grids change.

One :class:`~data.assignment.service.GridIndexCache` per app. While the app's change feed is live
(:mod:`data.changes`), an index whose grids-version token was checked under the current
feed generation is used with no database read at all; any write to grids, workers,
communities or streets — in this process or another — bumps the generation, and the next
request re-reads the token (one indexed row, in a worker thread) and rebuilds if it moved.
Without a live feed every request reads the token, as before, on the primary. With a live
feed and a standby (``GRIDWORK_READ_DATABASE_URL``), the token and the rebuild are read on
the standby once it has replayed the change (:meth:`api.state.AppState.refill_engine`).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
import numpy as np
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.state import app_state
from data.access.queries import AreaScope
from data.assignment.points import Placement
from data.assignment.service import GridIndex
from geo.errors import Forbidden, InvalidInput
from geo.point_input import check_lonlat


async def current_grid_index(request: Request) -> GridIndex:
    state = app_state(request)
    cache = state.grid_index
    feed = state.changes
    generation = feed.generation if feed is not None and feed.live else None
    if generation is not None and (index := cache.checked(generation)) is not None:
        return index

    def read() -> GridIndex:
        # Filed under the feed's generation: read where the change is already replayed.
        with Session(state.engine if generation is None else state.refill_engine()) as session:
            return cache.get(session, generation=generation)

    return await anyio.to_thread.run_sync(read)


GridIndexDep = Annotated[GridIndex, Depends(current_grid_index)]


def place_point(index: GridIndex, scope: AreaScope, lon: float, lat: float) -> Placement:
    """A point's assignment (the API's and the pages' writes of households, facilities and
    incidents), refused when it lies outside the caller's area."""
    check_lonlat(np.array([lon]), np.array([lat]), field="lon/lat")
    placed = index.assign([lon], [lat])
    area = int(placed.area[0])
    grid_id = int(index.grid_id[area]) if area >= 0 else None
    if not scope.unrestricted and (grid_id is None or grid_id not in (scope.grid_ids or ())):
        raise Forbidden(f"({lon}, {lat}) lies outside your area", field="lon/lat")
    distance = float(placed.distance_m[0])
    return Placement(grid_id, bool(placed.snapped[0]), None if np.isnan(distance) else distance)


def place_tapped(
    index: GridIndex, scope: AreaScope, lon: str, lat: str, *, missing: str, outside: str
) -> tuple[tuple[float, float], Placement]:
    """Where a page's map was tapped (its hidden ``lon``/``lat`` fields) and the point's
    assignment; refused beside the field ``lon/lat`` with the page's words: ``missing`` when
    nothing was tapped, ``outside`` when the place lies outside the caller's area."""
    try:
        where = (float(lon), float(lat))
    except ValueError:
        raise InvalidInput(missing, field="lon/lat") from None
    try:
        return where, place_point(index, scope, *where)
    except Forbidden as exc:
        raise InvalidInput(outside, field="lon/lat") from exc
