"""``POST /assign`` (a batch of points → grid, community, street, worker) and ``GET /locate``.

Both answer from the app's in-memory grid index (:mod:`api.grid_index`), never with a spatial
query: ``/locate`` costs one indexed read of the grids-version token besides signing in.
Answers follow the stored-assignment rule (:mod:`data.assignment.service`): ``ST_Covers`` on the
stored grids, lowest code on shared edges, snapped to the nearest grid within the snap
tolerance. Grids outside the caller's area are withheld: ``/locate`` answers 404 and
``/assign`` returns nulls with ``withheld: true``, the same as for a point in no grid.
"""

from __future__ import annotations

import json
import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Response

from api.deps import Viewer
from api.grid_index import GridIndexDep
from api.schemas.assignment import (
    MAX_BATCH,
    AssignedPoint,
    AssignRequest,
    AssignResponse,
    Located,
)
from api.security import Principal
from data.assignment.service import GridIndex
from geo.errors import InvalidInput, NotFound
from geo.point_input import check_lonlat, to_lonlat

router = APIRouter(tags=["assignment"])


def _visible(principal: Principal, index: GridIndex, area: np.ndarray) -> np.ndarray:
    """Per point, whether its grid is in the caller's area (unassigned points: True)."""
    if principal.scope.unrestricted:
        return np.ones(len(area), dtype=bool)
    allowed = principal.scope.grid_ids or frozenset()
    mine = np.fromiter((int(g) in allowed for g in index.grid_id), dtype=bool, count=len(index))
    return np.append(mine, True)[area]


@router.post(
    "/assign",
    response_model=AssignResponse,
    summary="Grid, community, street and worker of up to 10,000 points",
)
def assign(body: AssignRequest, principal: Viewer, index: GridIndexDep) -> AssignResponse:
    """Points in any EPSG CRS (``crs``, default WGS-84 lon/lat); nothing is stored."""
    if len(body.points) > MAX_BATCH:
        raise InvalidInput(
            f"at most {MAX_BATCH:,} points per request, got {len(body.points):,}",
            field="points",
            index=MAX_BATCH,
        )
    if not body.points:
        raise InvalidInput("at least one point is needed", field="points")
    xy = np.asarray(body.points, dtype=np.float64).reshape(-1, 2)
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], epsg=body.crs, field="points")
    placed = index.assign(lon, lat)
    area = placed.area
    visible = _visible(principal, index, area)
    shown = np.where(visible, area, -1)
    # Plain lists with a trailing None: position -1 (unassigned, withheld) reads as None.
    grids, communities, streets, workers = (
        [*column.tolist(), None]
        for column in (index.code, index.community_code, index.street_code, index.worker_code)
    )
    distance = np.where(visible, placed.distance_m, np.nan)
    results = [
        AssignedPoint(
            index=i,
            grid=grids[a],
            community=communities[a],
            street=streets[a],
            worker=workers[a],
            snapped=bool(placed.snapped[i] and visible[i]),
            distance_m=None if np.isnan(d) else round(float(d), 3),
            withheld=not bool(visible[i]),
        )
        for i, (a, d) in enumerate(zip(shown.tolist(), distance.tolist(), strict=True))
    ]
    return AssignResponse(
        crs=body.crs,
        count=len(results),
        assigned=int((shown >= 0).sum()),
        snapped=sum(1 for r in results if r.snapped),
        unassigned=int((shown < 0).sum()),
        results=results,
    )


@router.get("/locate", response_model=Located, summary="The grid and worker responsible here")
async def locate(
    principal: Viewer,
    index: GridIndexDep,
    lon: Annotated[float, Query(description="WGS-84 longitude")],
    lat: Annotated[float, Query(description="WGS-84 latitude")],
) -> Response:
    """Grid, community, street and worker (name, phone) for a WGS-84 point, and how far the
    point is from the grid's edge; 404 when no grid of the caller's area is within reach.

    ``async`` on purpose: the work is a few in-memory lookups, cheaper than the thread
    hop a plain ``def`` costs; while nothing changed, neither signing in nor the grid index
    reads the database (see :mod:`api.principals`, :mod:`api.grid_index`)."""
    # Plain floats first: building two arrays for check_lonlat on every call showed in the
    # benchmark; it still runs (and names the problem) for anything out of range.
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        check_lonlat(np.array([lon]), np.array([lat]), field="lon/lat")
    a, snapped, distance_m, near = index.locate(lon, lat)
    allowed = principal.scope.unrestricted or (
        a >= 0 and int(index.grid_id[a]) in (principal.scope.grid_ids or frozenset())
    )
    if a < 0 or not allowed:
        hint = ""
        if principal.scope.unrestricted and near >= 0:
            hint = f"; the nearest is {index.code[near]}, {distance_m:.0f} m away"
        raise NotFound(
            f"no grid of your area within {index.snap_m:g} m of ({lon}, {lat}){hint}",
            field="lon/lat",
        )
    edge = distance_m if snapped else index.edge_distance_m(a, lon, lat)
    worker = None
    if index.worker_code[a] is not None:
        worker = {
            "code": index.worker_code[a],
            "name": index.worker_name[a],
            "phone": index.worker_phone[a],
        }
    # Serialised here, not validated again against ``Located`` (which documents it): that
    # second pass cost as much as the lookup. The shape is checked by the API tests.
    answer = {
        "grid": index.code[a],
        "community": {"code": index.community_code[a], "name": index.community_name[a]},
        "street": {"code": index.street_code[a], "name": index.street_name[a]},
        "worker": worker,
        "inside": not snapped,
        "edge_distance_m": round(edge, 3),
    }
    return Response(
        json.dumps(answer, ensure_ascii=False, separators=(",", ":")), media_type="application/json"
    )
