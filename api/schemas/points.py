"""Households, facilities and incidents: what a client sends, and the row it gets back with
its assignment (grid, community, street, worker, snapped, distance)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from api.schemas import Answer, StrictModel, Timestamp
from data.models import AgeBand, IncidentStatus
from geo.assignment.keys import key_problem

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


def _addressable(key: str) -> str:
    problem = key_problem(key)
    if problem:
        raise ValueError(problem)
    return key


#: A row's own key, which a path must carry back (GET/PATCH/DELETE): the domain's rule
#: (``geo.assignment.keys``), said in its words.
Key = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="no '/' or control characters, and not 'new'",
    ),
    AfterValidator(_addressable),
]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Kind64 = Annotated[str, Field(min_length=1, max_length=64)]
Summary = Annotated[str, Field(max_length=4000)]
Lon = Annotated[float, Field(description="WGS-84 longitude")]
Lat = Annotated[float, Field(description="WGS-84 latitude")]

# --- request bodies -----------------------------------------------------------------------


class HouseholdCreate(StrictModel):
    code: Key
    size: int = Field(default=1, ge=1, le=30)
    lives_alone: bool | None = None
    age_band: AgeBand | None = None
    building: Code | None = Field(default=None, description="source id of the building")
    lon: Lon
    lat: Lat


class HouseholdUpdate(StrictModel):
    size: int | None = Field(default=None, ge=1, le=30)
    lives_alone: bool | None = None
    age_band: AgeBand | None = None
    building: Code | None = None
    lon: Lon | None = None
    lat: Lat | None = None


class FacilityCreate(StrictModel):
    source_id: Key
    kind: Kind64
    name: Text200 | None = None
    capacity: int | None = Field(default=None, ge=0, le=10_000_000)
    lon: Lon
    lat: Lat


class FacilityUpdate(StrictModel):
    kind: Kind64 | None = None
    name: Text200 | None = None
    capacity: int | None = Field(default=None, ge=0, le=10_000_000)
    lon: Lon | None = None
    lat: Lat | None = None


class IncidentCreate(StrictModel):
    source_id: Key | None = Field(default=None, description="generated when not given")
    category: Kind64
    status: IncidentStatus = IncidentStatus.open
    summary: Summary | None = None
    reported_at: datetime | None = None
    lon: Lon
    lat: Lat


class IncidentUpdate(StrictModel):
    category: Kind64 | None = None
    status: IncidentStatus | None = None
    summary: Summary | None = None
    lon: Lon | None = None
    lat: Lat | None = None


# --- answers ------------------------------------------------------------------------------


class Assignment(Answer):
    grid: str | None = Field(description="null: in no grid within the snap tolerance")
    community: str | None
    street: str | None
    worker: str | None
    snapped: bool = Field(description="true when the point lies outside and was snapped")
    distance_m: float | None = Field(description="metres to the grid it was snapped to")


class Household(Answer):
    code: str
    size: int
    lives_alone: bool
    age_band: AgeBand | None
    building: str | None = Field(description="source id of the building")
    estimated: bool = Field(description="true for a household estimated from buildings")
    lon: float
    lat: float
    assignment: Assignment


class Facility(Answer):
    source_id: str
    kind: str
    name: str | None
    capacity: int | None
    lon: float
    lat: float
    assignment: Assignment


class Incident(Answer):
    source_id: str | None
    category: str
    status: IncidentStatus
    summary: str | None
    reported_at: Timestamp
    closed_at: Timestamp | None
    lon: float
    lat: float
    assignment: Assignment


class GridHouseholds(Answer):
    grid: str
    total: int = Field(description="households of the grid (the page is limit/offset)")
    households: list[Household]


class Incidents(Answer):
    total: int = Field(description="incidents matching (the page is limit/offset)")
    incidents: list[Incident]


Row = Annotated[int, Field(description="the row's number in the file, from 1")]
#: ``unchanged``: the row was stored with these very values already and was not written.
RowStatus = Literal["inserted", "updated", "unchanged"]


class HouseholdRow(Answer):
    row: Row
    code: str
    status: RowStatus
    grid: str | None
    snapped: bool
    distance_m: float | None


class SourceRow(Answer):
    row: Row
    source_id: str
    status: RowStatus
    grid: str | None
    snapped: bool
    distance_m: float | None


class HouseholdReject(Answer):
    row: Row
    code: str | None
    reason: str


class SourceReject(Answer):
    row: Row
    source_id: str | None
    reason: str


class _Uploaded(Answer):
    inserted: int
    updated: int
    unchanged: int = Field(description="rows stored with these very values already: not written")
    rejected: int = Field(description="rows rejected (a row may have several reasons)")


class HouseholdsUploaded(_Uploaded):
    rows: list[HouseholdRow]
    rejects: list[HouseholdReject]


class SourcesUploaded(_Uploaded):
    """Facilities or incidents, keyed by ``source_id``."""

    rows: list[SourceRow]
    rejects: list[SourceReject]
