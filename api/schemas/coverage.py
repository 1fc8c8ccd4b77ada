"""Facility coverage per grid as numbers (``GET /coverage``; the map is ``/maps/coverage``)."""

from __future__ import annotations

from pydantic import Field

from api.schemas import Answer


class AreaCoverage(Answer):
    code: str = Field(description="the grid's code (the community's before there are grids)")
    households: int
    covered_households: int
    household_share: float | None
    area_share: float | None = Field(description="share of the land in the walking area")
    uncovered: int
    score: float | None = Field(None, description="2SFCA, when every facility has a capacity")


class Coverage(Answer):
    kind: str
    minutes: float
    speed_kmh: float
    max_m: float = Field(description="the walking distance, metres")
    level: str = Field(description="grid, or community before there are grids")
    capacity_aware: bool
    households: int
    covered_households: int
    household_share: float | None
    uncovered: int
    areas: list[AreaCoverage]
