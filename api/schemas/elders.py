"""Elders: enrolment with consent, devices, safe zones, and one elder's location.

Bodies are strict (a misspelt field is refused, naming it). Answers hold no positions except
``/location`` (one elder's last fix, asked for with a reason); ``/trail`` is GeoJSON.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas import Answer, StrictModel, Timestamp
from api.schemas.geojson import FeatureCollection
from data.care import service as care
from data.models.care import DeviceDatum

# --- request bodies -----------------------------------------------------------------------


class ConsentIn(StrictModel):
    given_by: str = Field(min_length=1, max_length=200, description="the elder or a guardian")
    given_on: date
    scope: str = Field(
        min_length=1, max_length=2000, description="what was agreed, e.g. 'locate when lost'"
    )

    def record(self) -> care.ConsentRecord:
        return care.ConsentRecord(self.given_by, self.given_on, self.scope)


class DeviceIn(StrictModel):
    device_id: str = Field(
        min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$", description="the OsmAnd id"
    )
    datum: DeviceDatum = Field(description="what the device reports in: wgs84, gcj02 or bd09")


class ElderIn(StrictModel):
    display_name: str = Field(min_length=1, max_length=200)
    household_code: str = Field(min_length=1, max_length=64, description="the home household")
    emergency_contact: str | None = Field(default=None, max_length=200)
    device: DeviceIn
    consent: ConsentIn | None = Field(
        default=None, description="without it the device's fixes are refused (403)"
    )
    home_buffer_m: float = Field(default=200.0, ge=0, le=5000)


class HomeGridZone(StrictModel):
    kind: Literal["home_grid"]
    buffer_m: float = Field(default=200.0, ge=0, le=5000)


class CircleZone(StrictModel):
    kind: Literal["circle"]
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    radius_m: float = Field(gt=20, le=50_000)


class PolygonGeometry(StrictModel):
    type: Literal["Polygon"]
    coordinates: list[list[tuple[float, float]]] = Field(min_length=1, max_length=100)


class MultiPolygonGeometry(StrictModel):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[tuple[float, float]]]] = Field(min_length=1, max_length=100)


class PolygonZone(StrictModel):
    kind: Literal["polygon"]
    geometry: PolygonGeometry | MultiPolygonGeometry = Field(discriminator="type")


ZoneIn = Annotated[HomeGridZone | CircleZone | PolygonZone, Field(discriminator="kind")]

# --- answers --------------------------------------------------------------------------------


class Enrolled(Answer):
    id: int
    device_id: str
    api_key: str = Field(description="the device's key, shown once")
    home_grid_code: str
    consent: bool
    ingest_url: str


class DeviceKey(Answer):
    device_id: str
    api_key: str = Field(description="the device's new key, shown once")
    ingest_url: str


class ElderSummary(Answer):
    id: int
    display_name: str
    home_grid_code: str | None
    consent: bool


class Elders(Answer):
    elders: list[ElderSummary]


class Refused(Answer):
    at: Timestamp
    reason: str | None


class Reports(Answer):
    """Tells a broken watch from a quiet one."""

    last_heard_at: Timestamp | None = Field(description="a fix, a keep-alive or a refusal")
    last_fix_received_at: Timestamp | None = Field(
        description="when a fix last arrived (kept after the positions are purged: a fact "
        "about the watch, not a position)"
    )
    battery: float | None = Field(
        description="per cent, from the newest report that gave one, fix or keep-alive "
        "(as the elders list shows it)"
    )
    keepalive_battery: float | None
    keepalive_charging: bool | None
    not_stored: int = Field(description="reports answered but not stored as a fix")
    last_refused: Refused | None


class Elder(Answer):
    id: int
    display_name: str
    emergency_contact: str | None
    household_code: str | None
    home_grid_code: str | None
    device_id: str | None
    datum: str | None
    device_active: bool
    consent: bool
    created_at: Timestamp
    reports: Reports


class ConsentRecorded(Answer):
    consent_id: int
    consent: Literal[True]


class Forgotten(Answer):
    deleted: dict[str, int] = Field(description="rows deleted, per kind")


class Deactivated(Answer):
    deactivated: list[str] = Field(description="the devices whose keys were revoked")


class Withdrawn(Answer):
    withdrawn: int = Field(description="active consents withdrawn")
    consent: Literal[False]
    positions_deleted: int


class Zone(Answer):
    kind: str | None
    zone: dict[str, Any] | None = Field(description="a GeoJSON geometry, WGS-84")


class ElderRef(Answer):
    id: int
    display_name: str


class LonLat(Answer):
    lon: float
    lat: float


class DeviceDatumFix(Answer):
    datum: str
    lon: float
    lat: float
    as_sent: LonLat = Field(description="what the device sent, before any conversion")


class Coded(Answer):
    code: str


class Named(Answer):
    code: str
    name: str | None


class Worker(Answer):
    code: str
    name: str | None
    phone: str | None


class NearFacility(Answer):
    kind: str
    name: str | None
    lon: float
    lat: float
    walking_m: float | None = Field(description="along the stored roads, up to 3 km")
    straight_line_m: float


class Location(Answer):
    elder: ElderRef
    time: Timestamp
    received_at: Timestamp
    age_s: float
    accuracy_m: float | None
    battery: float | None
    valid: bool
    wgs84: LonLat
    device_datum: DeviceDatumFix
    grid: Coded | None
    community: Named | None
    street: Named | None
    worker: Worker | None
    facilities: list[NearFacility]
    facility_distance: str = Field(description="how facilities are ranked: walking or straight")
    facilities_within_m: float
    facilities_note: str | None = Field(None, description="present when none is listed")


class HouseholdFound(Answer):
    code: str
    size: int
    lives_alone: bool | None
    grid_code: str | None
    building: str | None
    road: str | None = Field(description="the nearest named road")


class HouseholdsFound(Answer):
    households: list[HouseholdFound]


class Trail(FeatureCollection):
    """The line of the fixes (``id`` ``trail``) and each fix (``fix-<n>``), oldest first."""

    hours: float
