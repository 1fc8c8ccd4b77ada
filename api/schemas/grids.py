"""Per-grid numbers, grids out of the household band, and changing a grid's shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas import Answer, StrictModel


class GridChange(StrictModel):
    """A new shape (GeoJSON Polygon, lon/lat) and/or a new responsible worker."""

    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon")
    worker_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class GridChanged(Answer):
    grid: str
    reassigned: dict[str, int] = Field(description="per table, rows that changed grid")
    examined: dict[str, int] = Field(description="per table, rows looked at")


class GridOutOfBand(Answer):
    code: str
    community: str
    households: int
    status: Literal["under", "over"]


class CommunityOutOfBand(Answer):
    code: str
    grids: int
    households: int
    mean_per_grid: float
    grids_out_of_band: int


class OutOfBand(Answer):
    band: tuple[int, int] = Field(description="[min, max] households per grid")
    grids: list[GridOutOfBand]
    communities: list[CommunityOutOfBand] = Field(
        description="communities whose mean per grid is outside the band, or that hold such grids"
    )


class CommunityRef(Answer):
    code: str
    name: str


class IncidentCounts(Answer):
    open: int
    in_progress: int
    closed: int


class GridSummary(Answer):
    """Counts only: planners and coordinators see households this way and no other."""

    grid: str
    community: CommunityRef
    street: str | None
    worker: str | None
    worker_name: str | None
    households: int
    residents: int
    living_alone: int
    households_with_seniors: int
    households_snapped: int
    facilities: dict[str, int] = Field(description="per kind")
    incidents: IncidentCounts
