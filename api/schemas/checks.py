"""``GET /checks``: the topology of the hierarchy, the stored assignments PostGIS disagrees
with and the stored keys no path can open (``?format=geojson``: the topology issues as a
FeatureCollection)."""

from __future__ import annotations

from pydantic import Field

from api.schemas import Answer


class TopologyIssue(Answer):
    level: str = Field(description="street, community or grid")
    kind: str = Field(description="overlap, gap, overhang or sliver")
    codes: list[str] = Field(description="the areas involved")
    area_m2: float
    detail: str
    lon: float = Field(description="a point of the issue, WGS-84")
    lat: float


class Mismatch(Answer):
    """A household, facility or incident whose stored grid ``ST_Covers`` disagrees with.
    For a caller who may not read households, a household's ``key``, ``lon`` and ``lat``
    are null."""

    table: str = Field(description="household, facility or incident")
    key: str | None
    stored: str | None = Field(description="the grid it is filed in")
    expected: str | None = Field(description="the grid that covers it")
    reason: str
    lon: float | None
    lat: float | None


class Unaddressable(Answer):
    """A household, facility or incident whose key no path can open (a ``/``, a control
    character or ``new``, stored before such keys were refused). For a caller who may not
    read households, a household's ``key`` is null."""

    table: str = Field(description="household, facility or incident")
    key: str | None
    grid: str | None = Field(description="the grid it is filed in")
    reason: str


class CheckReport(Answer):
    ok: bool = Field(description="false when either part found anything")
    count: int = Field(description="topology issues")
    issues: list[TopologyIssue]
    ungridded: list[str] = Field(description="communities with no grid yet")
    assignment_mismatches: list[Mismatch]
    unaddressable_keys: list[Unaddressable] = Field(
        description="rows to recode: no page or API path can open them"
    )
    system_named_accounts: list[str] = Field(
        default_factory=list,
        description="accounts under the system's own name (gridwork): their acts would read "
        "as the system's; disable them",
    )
