"""Elders: enrollment with consent, safe zones, and locating one elder (always with a reason).

Care staff and admins enrol; care staff and grid workers locate. Where is decided by
``data.policy.elder_sql``: every change (device and key, consent, safe zone, forgetting)
needs the elder's home area; an open alert widens *reading* to the staff of the grid the
elder is in now, for as long as they are there. Every read of an elder or of a position, and
every change, writes an audit row (who, what, why) in the same transaction; reading a
position needs a ``reason``. No route returns the positions of several elders (only
``/alerts`` lists several elders, one fix each).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import geopandas as gpd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from shapely.geometry import Point, shape

from api.deps import LimitDep, OffsetDep, SessionDep, care_epsg, network_cache
from api.pages.frame import context
from api.schemas.elders import (
    CircleZone,
    ConsentIn,
    ConsentRecorded,
    Deactivated,
    DeviceIn,
    DeviceKey,
    Elder,
    ElderIn,
    Elders,
    Enrolled,
    Forgotten,
    HomeGridZone,
    Location,
    Trail,
    Withdrawn,
    Zone,
    ZoneIn,
)
from api.schemas.geojson import GeoJSONResponse
from api.security import Principal, audit_read, audit_subjects, require
from api.state import app_state
from data.care import queries as q
from data.care import service as care
from data.policy import Action
from geo.care.datum import from_wgs84
from geo.care.safezone import HomeCheck
from geo.errors import InvalidInput, NotFound
from maps.trail import trail_map

router = APIRouter(prefix="/elders", tags=["elders"])

Enroller = Annotated[Principal, Depends(require(Action.enrol_elders))]
Locator = Annotated[Principal, Depends(require(Action.locate_elders))]
Reason = Annotated[
    str,
    Query(
        min_length=3,
        max_length=500,
        description="why the elder's location is read (kept in the audit log)",
    ),
]
Why = Annotated[
    str | None,
    Query(min_length=3, max_length=500, description="why (kept in the audit log)"),
]
Hours = Annotated[float, Query(gt=0, le=24 * 7, description="how far back, in hours")]
GEOJSON = "application/geo+json"
NEAREST_FACILITIES = 5
MAX_TRAIL = 5000
INGEST_URL = "/ingest/osmand?key=<api_key>&id=<device_id>&lat=…&lon=…&timestamp=…"


@router.post("", status_code=201, summary="Enrol an elder with a device (and consent)")
def enrol(request: Request, session: SessionDep, principal: Enroller, body: ElderIn) -> Enrolled:
    enrolled = care.enrol(
        session,
        display_name=body.display_name,
        household_code=body.household_code,
        emergency_contact=body.emergency_contact,
        device_code=body.device.device_id,
        datum=body.device.datum,
        consent=None if body.consent is None else body.consent.record(),
        by=principal.name,
        scope=principal.scope,
        epsg=care_epsg(request, session),
        today=app_state(request).settings.today(),
        buffer_m=body.home_buffer_m,
    )
    _audit_change(
        session,
        request,
        principal,
        enrolled.elder_id,
        what=f"enrolled with a device (datum {body.device.datum.value}), "
        + ("consent recorded" if body.consent is not None else "no consent yet")
        + f", safe zone home grid + {body.home_buffer_m:g} m",
        subject_type="elder",
        why=None,
    )
    return Enrolled(
        id=enrolled.elder_id,
        device_id=enrolled.device_code,
        api_key=enrolled.api_key,
        home_grid_code=enrolled.home_grid_code,
        consent=body.consent is not None,
        ingest_url=INGEST_URL,
    )


@router.get("", response_model=Elders, summary="Elders of my area (no positions)")
def list_elders(
    request: Request,
    session: SessionDep,
    principal: Locator,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    elders = q.list_elders(session, principal.scope, limit=limit, offset=offset)
    audit_subjects(session, request, principal, "elder", [e["id"] for e in elders], None)
    return {"elders": elders}


@router.get("/{elder_id}", response_model=Elder, summary="One elder (no position)")
def get_elder(
    request: Request, session: SessionDep, principal: Locator, elder_id: int
) -> dict[str, Any]:
    """``reports`` tells a broken watch from a quiet one: when the device was last heard
    from (a fix, a keep-alive or a refused report), the battery its last keep-alive gave,
    how many reports were answered but not stored as a fix, and the last refused one with
    its reason."""
    elder = q.elder_record(session, elder_id, principal.scope, to=Action.locate_elders)
    audit_read(
        session, request, principal, subject_type="elder", subject_ids=[elder_id], reason=None
    )
    return elder


def _audit_change(
    session: SessionDep,
    request: Request,
    principal: Principal,
    elder_id: int,
    *,
    what: str,
    subject_type: str,
    why: str | None,
) -> None:
    """One audit row for a change to an elder's device, consent or zone: who (the caller),
    what (the route, ``subject_type`` and ``what``, which holds no personal data: no codes,
    names or coordinates) and why (the caller's ``reason``, when given)."""
    audit_subjects(
        session,
        request,
        principal,
        subject_type,
        [elder_id],
        what if why is None else f"{what}; why: {why}",
    )


@router.post(
    "/{elder_id}/consent",
    status_code=201,
    response_model=ConsentRecorded,
    summary="Record consent",
)
def add_consent(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: int,
    body: ConsentIn,
    reason: Why = None,
) -> dict[str, Any]:
    q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    consent_id = care.record_consent(
        session,
        elder_id,
        body.record(),
        by=principal.name,
        today=app_state(request).settings.today(),
    )
    _audit_change(
        session,
        request,
        principal,
        elder_id,
        what=f"consent {consent_id} recorded, given on {body.given_on.isoformat()}",
        subject_type="elder_consent",
        why=reason,
    )
    return {"consent_id": consent_id, "consent": True}


@router.delete(
    "/{elder_id}",
    response_model=Forgotten,
    summary="Forget an elder: the record, devices, positions, alerts",
)
def forget_elder(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: int,
    reason: Annotated[
        str,
        Query(min_length=3, max_length=500, description="why (kept in the audit log)"),
    ],
) -> dict[str, Any]:
    """The elder leaves the programme or asks to be forgotten: everything gridwork kept about
    them goes at once, their devices' keys with it. The audit log keeps who did it, when and
    why, with the elder's id only."""
    q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    deleted = q.delete_elder(session, elder_id)
    audit_read(
        session, request, principal, subject_type="elder", subject_ids=[elder_id], reason=reason
    )
    return {"deleted": deleted}


@router.put(
    "/{elder_id}/device",
    summary="A new key for the elder's device, or a new device: the old key stops at once",
)
def replace_device(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: int,
    body: DeviceIn,
    reason: Why = None,
) -> DeviceKey:
    """The same ``device_id`` re-issues the key (leaked, or the watch was reset); another
    ``device_id`` replaces the watch. Either way the previous key is revoked (audited)."""
    elder = q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    key = care.replace_device(session, elder_id, device_code=body.device_id, datum=body.datum)
    same = elder["device_id"] == body.device_id
    what = "new key for the same device" if same else "device replaced by another device"
    _audit_change(
        session,
        request,
        principal,
        elder_id,
        what=f"{what} (datum {body.datum.value}); the previous key revoked",
        subject_type="elder_device",
        why=reason,
    )
    return DeviceKey(device_id=body.device_id, api_key=key, ingest_url=INGEST_URL)


@router.delete(
    "/{elder_id}/device",
    response_model=Deactivated,
    summary="Deactivate the elder's device: its key stops at once",
)
def deactivate_device(
    request: Request, session: SessionDep, principal: Enroller, elder_id: int, reason: Why = None
) -> dict[str, Any]:
    q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    deactivated = care.deactivate_devices(session, elder_id)
    _audit_change(
        session,
        request,
        principal,
        elder_id,
        what=f"{len(deactivated)} device(s) deactivated, their keys revoked",
        subject_type="elder_device",
        why=reason,
    )
    return {"deactivated": deactivated}


@router.delete(
    "/{elder_id}/consent",
    response_model=Withdrawn,
    summary="Withdraw consent: ingest is refused from now on",
)
def withdraw_consent(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: int,
    delete_positions: Annotated[
        bool, Query(description="also delete every stored position now")
    ] = False,
    reason: Why = None,
) -> dict[str, Any]:
    q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    withdrawn = q.withdraw_consent(session, elder_id, by=principal.name)
    deleted = q.delete_positions_of(session, elder_id) if delete_positions else 0
    kept = f"{deleted} stored position(s) deleted" if delete_positions else "positions kept"
    _audit_change(
        session,
        request,
        principal,
        elder_id,
        what=f"consent withdrawn ({withdrawn} active consent(s)); {kept}",
        subject_type="elder_consent",
        why=reason,
    )
    return {"withdrawn": withdrawn, "consent": False, "positions_deleted": deleted}


@router.put(
    "/{elder_id}/zone",
    response_model=Zone,
    summary="Set the safe zone: home grid + buffer, circle or polygon",
)
def set_zone(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: int,
    body: ZoneIn,
    force: Annotated[
        bool,
        Query(description="accept a zone that does not contain the home (needs a reason)"),
    ] = False,
    reason: Why = None,
) -> dict[str, Any]:
    """A zone must contain the elder's home (else 422 naming the field: ``lon/lat``,
    ``geometry``) and fit in a 50 km circle; ``force=true`` with a ``reason`` accepts one
    away from home. Every change is audited, forced ones saying how far the home lies out."""
    q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    if force and reason is None:
        raise InvalidInput("force=true needs a reason (kept in the audit log)", field="reason")
    epsg = care_epsg(request, session)
    check: HomeCheck
    if isinstance(body, HomeGridZone):
        check = care.home_zone(session, elder_id, epsg=epsg, buffer_m=body.buffer_m, force=force)
        what = f"safe zone set: home grid + {body.buffer_m:g} m"
    elif isinstance(body, CircleZone):
        check = care.circle_zone(
            session,
            elder_id,
            lon=body.lon,
            lat=body.lat,
            radius_m=body.radius_m,
            epsg=epsg,
            force=force,
        )
        what = f"safe zone set: circle of {body.radius_m:g} m"
    else:
        check = care.polygon_zone(
            session, elder_id, body.geometry.model_dump(), epsg=epsg, force=force
        )
        what = f"safe zone set: {body.geometry.type}"
    if check.contains_home:
        what += ", containing the home"
    elif check.home_outside_m is None:
        what += ", FORCED: the home household is gone"
    else:
        what += f", FORCED: the home lies {check.home_outside_m:,.0f} m outside it"
    _audit_change(
        session, request, principal, elder_id, what=what, subject_type="elder_zone", why=reason
    )
    zone = q.zone_and_home(session, elder_id)
    return {"kind": zone["kind"], "zone": zone["zone"]}


@router.get(
    "/{elder_id}/location",
    response_model=Location,
    response_model_exclude_unset=True,  # facilities_note only when none is listed
    summary="Where the elder is: last fix, grid, worker",
)
def location(
    request: Request, session: SessionDep, principal: Locator, elder_id: int, reason: Reason
) -> dict[str, Any]:
    """The last fix by fix time (a late fix never replaces it) in WGS-84 and in the device's
    datum (for Chinese basemaps), its age and accuracy, the grid, community and street holding
    it (lowest grid code on a shared edge), that grid's worker, and the nearest facilities.

    Facilities are ranked by walking distance along the stored roads (``walking_m``, up to
    3 km; ``null`` beyond) with the straight line beside it (``straight_line_m``); without
    roads only the straight line is known (``facility_distance`` says which). Only those
    within ``facilities_within_m`` (5 km) in a straight line are listed; with none,
    ``facilities_note`` says "none within 5 km".
    """
    elder = q.elder_record(session, elder_id, principal.scope, to=Action.locate_elders)
    audit_read(
        session, request, principal, subject_type="position", subject_ids=[elder_id], reason=reason
    )
    fix = q.last_fix(session, elder_id)
    if fix is None:
        raise NotFound(f"elder {elder_id} has no stored fix", field="elder_id")
    datum = fix["datum"]
    shown_lon, shown_lat = from_wgs84(fix["lon"], fix["lat"], datum)
    facilities, ranked_by = care.nearest_facilities(
        session,
        lon=fix["lon"],
        lat=fix["lat"],
        epsg=care_epsg(request, session),
        count=NEAREST_FACILITIES,
        network=network_cache(request),
    )
    return {
        "elder": {"id": elder_id, "display_name": elder["display_name"]},
        "time": fix["time"].isoformat(),
        "received_at": fix["received_at"].isoformat(),
        "age_s": round(float(fix["age_s"]), 1),
        "accuracy_m": fix["accuracy_m"],
        "battery": fix["battery"],
        "valid": fix["valid"],
        "wgs84": {"lon": fix["lon"], "lat": fix["lat"]},
        "device_datum": {
            "datum": datum,
            "lon": shown_lon,
            "lat": shown_lat,
            "as_sent": {"lon": fix["raw_lon"], "lat": fix["raw_lat"]},
        },
        "grid": None if fix["grid_code"] is None else {"code": fix["grid_code"]},
        "community": None
        if fix["community_code"] is None
        else {"code": fix["community_code"], "name": fix["community_name"]},
        "street": None
        if fix["street_code"] is None
        else {"code": fix["street_code"], "name": fix["street_name"]},
        "worker": None
        if fix["worker_code"] is None
        else {
            "code": fix["worker_code"],
            "name": fix["worker_name"],
            "phone": fix["worker_phone"],
        },
        "facilities": [
            {
                "kind": f["kind"],
                "name": f["name"],
                "lon": f["lon"],
                "lat": f["lat"],
                "walking_m": None if f.get("walking_m") is None else round(f["walking_m"], 1),
                "straight_line_m": round(float(f["straight_line_m"]), 1),
            }
            for f in facilities
        ],
        "facility_distance": ranked_by,
        "facilities_within_m": care.FACILITY_RADIUS_M,
        **(
            {}
            if facilities
            else {"facilities_note": f"none within {care.FACILITY_RADIUS_M / 1000:g} km"}
        ),
    }


def _trail(
    request: Request,
    session: SessionDep,
    principal: Locator,
    elder_id: int,
    reason: Reason,
    hours: Hours = 6,
) -> list[dict[str, Any]]:
    """The fixes of the last ``hours``, read once the caller may locate the elder and the read
    is audited with its reason: what the trail and its map both stand on."""
    q.elder_record(session, elder_id, principal.scope, to=Action.locate_elders)
    audit_read(
        session, request, principal, subject_type="position", subject_ids=[elder_id], reason=reason
    )
    since = datetime.now(UTC) - timedelta(hours=hours)
    return q.trail(session, elder_id, since=since, limit=MAX_TRAIL)


TrailFixes = Annotated[list[dict[str, Any]], Depends(_trail)]


@router.get(
    "/{elder_id}/trail",
    summary="The elder's fixes of the last hours as GeoJSON",
    response_model=Trail,
    response_class=GeoJSONResponse,  # answered as is: the model documents the shape
)
def trail(fixes: TrailFixes, hours: Hours = 6) -> JSONResponse:
    features: list[dict[str, Any]] = []
    if len(fixes) > 1:
        features.append(
            {
                "type": "Feature",
                "id": "trail",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[f["lon"], f["lat"]] for f in fixes],
                },
                "properties": {
                    "kind": "trail",
                    "start": fixes[0]["time"].isoformat(),
                    "end": fixes[-1]["time"].isoformat(),
                },
            }
        )
    for i, f in enumerate(fixes):
        features.append(
            {
                "type": "Feature",
                "id": f"fix-{i}",
                "geometry": {"type": "Point", "coordinates": [f["lon"], f["lat"]]},
                "properties": {
                    "kind": "fix",
                    "time": f["time"].isoformat(),
                    "accuracy_m": f["accuracy_m"],
                    "battery": f["battery"],
                    "grid_code": f["grid_code"],
                },
            }
        )
    body = {"type": "FeatureCollection", "features": features, "hours": hours}
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/{elder_id}/trail/map",
    summary="The trail on an offline map, with the home and the safe zone",
    response_class=HTMLResponse,
)
def trail_page(
    request: Request, session: SessionDep, elder_id: int, fixes: TrailFixes
) -> HTMLResponse:
    extra = q.zone_and_home(session, elder_id)
    frame = gpd.GeoDataFrame(
        {
            "time": [f["time"] for f in fixes],
            "accuracy_m": [f["accuracy_m"] for f in fixes],
            "grid_code": [f["grid_code"] for f in fixes],
            "battery": [f["battery"] for f in fixes],
        },
        geometry=[Point(f["lon"], f["lat"]) for f in fixes],
        crs=4326,
    )
    home = None
    if extra["home_lon"] is not None:
        home = gpd.GeoDataFrame(geometry=[Point(extra["home_lon"], extra["home_lat"])], crs=4326)
    zone = None
    if extra["zone"] is not None:
        zone = gpd.GeoDataFrame(geometry=[shape(extra["zone"])], crs=4326)
    ctx = context(request, None)  # the page's language and the deployment's time zone
    m = trail_map(
        frame, home=home, zone=zone, asset_mode="url", gettext=ctx._, timezone=ctx.timezone
    )
    return HTMLResponse(m.get_root().render())
