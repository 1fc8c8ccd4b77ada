"""``POST /assign`` and ``GET /locate``: points in, grid, community, street and worker out."""

from __future__ import annotations

from pydantic import Field

from api.schemas import Answer, StrictModel
from geo.point_input import WGS84

MAX_BATCH = 10_000


class AssignRequest(StrictModel):
    """Points as ``[x, y]`` pairs: ``[lon, lat]`` for WGS-84, easting/northing otherwise."""

    points: list[tuple[float, float]] = Field(
        description=f"up to {MAX_BATCH:,} [x, y] pairs, x first (lon, lat for WGS-84)"
    )
    crs: int = Field(default=WGS84, description="EPSG code of the points (default 4326)")


class AssignedPoint(Answer):
    index: int
    grid: str | None
    community: str | None
    street: str | None
    worker: str | None
    snapped: bool
    distance_m: float | None = Field(
        description="0 inside a grid; metres to the grid it was snapped to, or to the nearest "
        "grid when unassigned"
    )
    withheld: bool = Field(description="true when the grid lies outside the caller's area")


class AssignResponse(Answer):
    crs: int
    count: int
    assigned: int
    snapped: int
    unassigned: int
    results: list[AssignedPoint]


class Worker(Answer):
    code: str | None
    name: str | None
    phone: str | None


class Named(Answer):
    code: str | None
    name: str | None


class Located(Answer):
    grid: str
    community: Named
    street: Named
    worker: Worker | None
    inside: bool = Field(description="false when the point was snapped from outside")
    edge_distance_m: float = Field(
        description="inside: metres to the grid's edge; snapped: metres outside the edge"
    )
