"""``GET /basemap``: the ground under every map (roads, buildings, outlines) for a viewport."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import ReadSessionDep, Viewer, parse_bbox
from api.schemas.geojson import Basemap
from data.district.basemap import basemap as read_basemap

router = APIRouter(tags=["maps"])


@router.get(
    "/basemap",
    response_model=Basemap,
    summary="Roads, buildings and area outlines for one viewport",
)
def basemap(
    session: ReadSessionDep,
    response: Response,
    _: Viewer,
    bbox: Annotated[str, Query(description="minlon,minlat,maxlon,maxlat (WGS-84)", max_length=200)],
    zoom: Annotated[int, Query(ge=0, le=22, description="the map's zoom level")],
) -> dict[str, Any]:
    """What the basemap draws at ``zoom``: no personal data, so the same for all staff.

    Cached by the browser for a few minutes: the ground rarely changes during a shift."""
    response.headers["Cache-Control"] = "private, max-age=300"
    return read_basemap(session.connection(), parse_bbox(bbox), zoom)
