"""Elder care use cases: enrol with consent, take fixes in, raise and route alerts, purge.

Each function works inside the caller's transaction (a request's session, or one tick of the
server's periodic task), so a fix, the zone state it moves and the alerts it raises are
committed together or not at all: an acknowledged fix is never half-stored.

The order of checks on ingest is the privacy rule of the issue: the key must be linked to the
device (else 403, and the answer says nothing about other devices), the elder must have an
active consent (else 403, and nothing is stored), and only then is the fix converted from the
device's datum to WGS-84 and kept.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from data import webhooks
from data.access.queries import AreaScope, Db, create_api_key
from data.care import queries as q
from data.coverage.service import NetworkCache
from data.db import transaction
from data.models import Role
from data.models.care import AlertStatus, DeviceDatum, ZoneKind
from geo.care.datum import to_wgs84
from geo.care.osmand import DEFAULT_MAX_FUTURE_SKEW, Fix, KeepAlive, Report
from geo.care.safezone import (
    DEFAULT_BATTERY_HYSTERESIS_PCT,
    DEFAULT_HOME_BUFFER_M,
    DEFAULT_LOW_BATTERY_PCT,
    HomeCheck,
    MetricFix,
    SafeZone,
    ZoneEvent,
    ZoneState,
    check_zone_for_home,
    evaluate,
)
from geo.coverage.walk import network_distances, reachable
from geo.errors import (
    Conflict,
    Forbidden,
    GridworkError,
    InvalidGeometry,
    InvalidInput,
    Unauthorized,
)

MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 256
MAX_ALARM = 64
MAX_ZONE_VERTICES = 10_000


# --------------------------------------------------------------------------- enrollment


@dataclass(frozen=True)
class ConsentRecord:
    given_by: str
    given_on: date
    scope: str


@dataclass(frozen=True)
class Enrolled:
    elder_id: int
    device_code: str
    api_key: str  # shown once: only its digest is stored
    home_grid_code: str


def enrol(
    session: Session,
    *,
    display_name: str,
    household_code: str,
    emergency_contact: str | None,
    device_code: str,
    datum: DeviceDatum,
    consent: ConsentRecord | None,
    by: str,
    scope: AreaScope,
    epsg: int,
    today: date,
    buffer_m: float = DEFAULT_HOME_BUFFER_M,
) -> Enrolled:
    """An elder, their device with its own API key, the default safe zone and (maybe) consent.

    Without a consent record the device is enrolled but its fixes are refused until one is
    recorded (``record_consent``). ``today`` is the district's date (``Settings.today``).
    """
    home = q.find_home_household(session, household_code, scope)
    if q.device_code_taken(session, device_code, f"device:{device_code}"):
        raise Conflict.said("device_enrolled", device=device_code, field="device_id")
    elder_id = q.insert_elder(
        session,
        display_name=display_name,
        household_id=home.id,
        home_grid_id=home.grid_id,
        emergency_contact=emergency_contact,
        enrolled_by=by,
    )
    key = _issue_device(session, elder_id, device_code, datum)
    zone = SafeZone.around_grid(q.grid_metric(session, home.grid_id, epsg), buffer_m=buffer_m)
    q.save_zone(session, elder_id, zone, kind=ZoneKind.home_grid, epsg=epsg, buffer_m=buffer_m)
    if consent is not None:
        record_consent(session, elder_id, consent, by=by, today=today)
    return Enrolled(elder_id, device_code, key, home.grid_code)


def replace_device(session: Session, elder_id: int, *, device_code: str, datum: DeviceDatum) -> str:
    """A new key for the elder's device, or a new device; returns the key (shown once).

    Whatever the elder wore before stops reporting at once: its key is revoked (and every
    API process drops it through the change feed). The same code re-issues the key of a
    lost or leaked one; another code replaces the watch. A code enrolled for another elder
    is refused.
    """
    owner = q.device_owner(session, device_code)
    if owner is not None and owner != elder_id:
        raise Conflict.said("device_taken", device=device_code, field="device_id")
    q.retire_devices(session, elder_id)
    return _issue_device(session, elder_id, device_code, datum)


def _issue_device(session: Session, elder_id: int, device_code: str, datum: DeviceDatum) -> str:
    """The device, active, with a new key of its own (named after it); the key."""
    key_name = f"device:{device_code}"
    key = create_api_key(session, key_name, Role.device)
    q.attach_device(
        session,
        code=device_code,
        elder_id=elder_id,
        key_id=q.api_key_id(session, key_name),
        datum=datum,
    )
    return key


def deactivate_devices(session: Session, elder_id: int) -> list[str]:
    """A lost, broken or returned watch: its key stops working; positions already stored
    stay until retention or a withdrawal of consent removes them."""
    return q.retire_devices(session, elder_id)


def record_consent(
    session: Session, elder_id: int, consent: ConsentRecord, *, by: str, today: date
) -> int:
    """Store a consent record; one dated after ``today``, the district's date (not the
    server's: in Shanghai the server's UTC date is yesterday until 08:00), is refused."""
    if consent.given_on > today:
        raise InvalidInput("consent cannot be given in the future", field="given_on")
    return q.add_consent(
        session,
        elder_id,
        given_by=consent.given_by,
        recorded_by=by,
        given_on=consent.given_on,
        scope=consent.scope,
    )


# --------------------------------------------------------------------------- safe zones


def _to_metric(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


# Every new zone must contain the elder's home unless ``force`` (geo.care.safezone
# .check_zone_for_home); the HomeCheck returned says how it stood, for the audit log.


def _checked(
    session: Session, elder_id: int, zone: SafeZone, *, epsg: int, force: bool, field: str
) -> HomeCheck:
    home = q.home_metric(session, elder_id, epsg)
    return check_zone_for_home(zone, home, force=force, field=field)


def home_zone(
    session: Session, elder_id: int, *, epsg: int, buffer_m: float, force: bool = False
) -> HomeCheck:
    grid_id = q.home_grid_id(session, elder_id)
    if grid_id is None:
        raise InvalidInput("the elder's home lies in no grid", field="kind")
    zone = SafeZone.around_grid(q.grid_metric(session, grid_id, epsg), buffer_m=buffer_m)
    check = _checked(session, elder_id, zone, epsg=epsg, force=force, field="buffer_m")
    q.save_zone(session, elder_id, zone, kind=ZoneKind.home_grid, epsg=epsg, buffer_m=buffer_m)
    return check


def follow_home_grids(session: Db, *, grid_ids: Sequence[int], epsg: int) -> int:
    """Redraw the "home grid grown by N m" zones of the elders whose home grid is one of
    these, from the grid as it is now; answers how many zones changed.

    That kind of zone promises the home grid, but it is stored as drawn: after a published
    plan (the household lies in a new grid, 0036 moves ``home_grid_id``), a grid's new outline
    or a household's move, it kept the old grid's shape, so the elder could walk their new
    grid's streets and raise "left the zone", or leave it unnoticed. Circles and drawn
    polygons stay as staff drew them (their page warns when the home falls outside).
    """
    if not grid_ids:
        return 0
    rows = session.execute(
        text(
            "SELECT e.id, e.home_grid_id, z.buffer_m FROM elder e "
            "JOIN safe_zone z ON z.elder_id = e.id "
            "WHERE z.kind = 'home_grid' AND e.home_grid_id = ANY(:g) ORDER BY e.id"
        ),
        {"g": sorted(set(grid_ids))},
    ).all()
    grids: dict[int, BaseGeometry] = {}
    changed = 0
    for elder_id, grid_id, buffer_m in rows:
        if grid_id not in grids:
            grids[grid_id] = q.grid_metric(session, grid_id, epsg)
        buffer = DEFAULT_HOME_BUFFER_M if buffer_m is None else float(buffer_m)
        zone = SafeZone.around_grid(grids[grid_id], buffer_m=buffer)
        if q.zone_is(session, elder_id, zone, epsg=epsg):
            continue
        q.save_zone(session, elder_id, zone, kind=ZoneKind.home_grid, epsg=epsg, buffer_m=buffer)
        changed += 1
    return changed


def mend_home_zones(session: Db, *, epsg: int) -> int:
    """:func:`follow_home_grids` for every elder whose "home grid" zone no longer covers their
    home grid: after an import moved households or replaced grids, where no one list of
    changed grids is at hand. Answers how many zones were redrawn."""
    grids = session.execute(
        text(
            "SELECT DISTINCT e.home_grid_id FROM elder e JOIN safe_zone z ON z.elder_id = e.id "
            "JOIN grid g ON g.id = e.home_grid_id "
            "WHERE z.kind = 'home_grid' AND NOT ST_Covers(z.geom, g.geom)"
        )
    ).scalars()
    return follow_home_grids(session, grid_ids=[int(g) for g in grids], epsg=epsg)


def follow_households(session: Db, codes: Sequence[str], *, epsg: int) -> int:
    """:func:`follow_home_grids` for the elders of these households (after a move)."""
    grids = session.execute(
        text(
            "SELECT DISTINCT e.home_grid_id FROM elder e JOIN household h ON h.id = e.household_id "
            "WHERE h.code = ANY(:codes) AND e.home_grid_id IS NOT NULL"
        ),
        {"codes": list(codes)},
    ).scalars()
    return follow_home_grids(session, grid_ids=[int(g) for g in grids], epsg=epsg)


def circle_zone(
    session: Session,
    elder_id: int,
    *,
    lon: float,
    lat: float,
    radius_m: float,
    epsg: int,
    force: bool = False,
) -> HomeCheck:
    x, y = _to_metric(epsg).transform(lon, lat)
    zone = SafeZone.circle(x, y, radius_m)
    check = _checked(session, elder_id, zone, epsg=epsg, force=force, field="lon/lat")
    q.save_zone(session, elder_id, zone, kind=ZoneKind.circle, epsg=epsg)
    return check


def polygon_zone(
    session: Session,
    elder_id: int,
    geojson: Mapping[str, Any],
    *,
    epsg: int,
    force: bool = False,
) -> HomeCheck:
    """A hand-drawn zone (GeoJSON Polygon or MultiPolygon, WGS-84), checked before it is used."""
    try:
        geom = shapely.from_geojson(json.dumps(geojson))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InvalidGeometry(f"not a GeoJSON geometry: {exc}", field="geometry") from exc
    if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
        raise InvalidGeometry(
            "a zone must be a non-empty Polygon or MultiPolygon", field="geometry"
        )
    vertices = shapely.get_num_coordinates(geom)
    if vertices > MAX_ZONE_VERTICES:
        raise InvalidGeometry(
            f"{vertices} vertices; at most {MAX_ZONE_VERTICES} are accepted", field="geometry"
        )
    west, south, east, north = geom.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidGeometry("coordinates must be WGS-84 lon/lat", field="geometry")
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise InvalidGeometry.said("zone_not_valid", reason=reason[:200], field="geometry")
    metric = shapely.transform(geom, lambda xy: np.column_stack(_to_metric(epsg).transform(*xy.T)))
    if not isinstance(metric, Polygon | MultiPolygon):  # pragma: no cover - transform keeps type
        raise InvalidGeometry("projecting the zone did not give a polygon", field="geometry")
    zone = SafeZone(geometry=metric)
    check = _checked(session, elder_id, zone, epsg=epsg, force=force, field="geometry")
    q.save_zone(session, elder_id, zone, kind=ZoneKind.polygon, epsg=epsg)
    return check


# --------------------------------------------------------------------------- facilities near

WALK_SEARCH_M = 3000.0
"""How far along roads the walk from an elder to a facility is followed (about 40 minutes)."""
FACILITY_RADIUS_M = 5000.0
"""Facilities farther than this from a fix are not listed: a fix abroad once listed the
district's facilities 10,000 km away, which helps no one find an elder."""


def nearest_facilities(
    session: Session,
    *,
    lon: float,
    lat: float,
    epsg: int,
    count: int,
    network: NetworkCache | None,
    within_m: float = FACILITY_RADIUS_M,
) -> tuple[list[dict[str, Any]], str]:
    """The ``count`` facilities nearest to a WGS-84 point, by walking distance along the
    stored roads when there are any (``walking_m``), else by straight line only; none
    farther than ``within_m`` in a straight line (so possibly none at all).

    Candidates are the ``4 × count`` nearest in a straight line; each keeps its
    ``straight_line_m``. A facility with no walk within ``WALK_SEARCH_M`` gets
    ``walking_m = None`` and goes last. Returns the facilities and ``"walking"`` or
    ``"straight_line"``, the distance they are ranked by.
    """
    candidates = q.nearest_facilities(session, lon, lat, count=count * 4, within_m=within_m)
    if network is None or not candidates:
        return candidates[:count], "straight_line"
    try:
        graph = network.graph(session.connection(), epsg)
    except Conflict:  # no roads stored
        return candidates[:count], "straight_line"
    to_metric = _to_metric(epsg)
    x, y = to_metric.transform(lon, lat)
    fx, fy = to_metric.transform([c["lon"] for c in candidates], [c["lat"] for c in candidates])
    reach = reachable(graph, np.array([Point(x, y)], dtype=object), WALK_SEARCH_M)
    pairs = network_distances(graph, reach, np.array(shapely.points(fx, fy), dtype=object))
    walking = {int(p): float(d) for p, d in zip(pairs.point, pairs.distance_m, strict=True)}
    for i, candidate in enumerate(candidates):
        candidate["walking_m"] = walking.get(i)
    candidates.sort(
        key=lambda c: (
            c["walking_m"] is None,
            c["walking_m"] if c["walking_m"] is not None else c["straight_line_m"],
            c["id"],
        )
    )
    return candidates[:count], "walking"


# --------------------------------------------------------------------------- ingest


@dataclass(frozen=True)
class IngestResult:
    stored: int
    duplicates: int
    alerts: int
    not_stored: int = 0  # answered, but not stored as a fix (keep-alives, refused reports)
    notes: tuple[str, ...] = ()  # why, per report not stored or changed: "code: text"


@dataclass(frozen=True)
class IngestRequest:
    """The reports of one HTTP request (fixes and keep-alives), sent with the key named
    ``key_name``."""

    key_name: str
    fixes: Sequence[Report]


def check_extras(fix: Report, *, index: int | None = None) -> None:
    """Bounds on the free-form parts of a fix, so a device cannot store a novel per report."""
    if fix.alarm is not None and len(fix.alarm) > MAX_ALARM:
        raise InvalidInput(f"at most {MAX_ALARM} characters", field="alarm", index=index)
    if len(fix.attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(
            f"{len(fix.attributes)} unknown parameters; at most {MAX_ATTRIBUTES} are kept",
            field="attributes",
            index=index,
        )
    for name, value in fix.attributes.items():
        if len(name) > MAX_ATTRIBUTE_KEY or len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(
                f"parameter {name[:40]!r} is too long (name ≤ {MAX_ATTRIBUTE_KEY}, "
                f"value ≤ {MAX_ATTRIBUTE_VALUE} characters)",
                field="attributes",
                index=index,
            )


def ingest(
    session: Session,
    *,
    key_name: str,
    fixes: Sequence[Report],
    epsg: int,
    now: datetime,
    retention: timedelta,
    webhook_url: str | None = None,
) -> IngestResult:
    """Store fixes the key may send for consenting elders; all or nothing.

    A repeated (device, time) is dropped and counted; a late fix is stored but leaves the
    zone state (and so the last-known position, which is the newest by fix time) alone.
    """
    [result] = ingest_many(
        session,
        [IngestRequest(key_name, fixes)],
        epsg=epsg,
        now=now,
        retention=retention,
        webhook_url=webhook_url,
    )
    if isinstance(result, GridworkError):
        raise result
    return result


MAX_FUTURE_SKEW = DEFAULT_MAX_FUTURE_SKEW
"""A fix more than this after its time of receipt comes from a clock that is ahead."""


def ingest_many(
    session: Session,
    requests: Sequence[IngestRequest],
    *,
    epsg: int,
    now: datetime,
    retention: timedelta,
    webhook_url: str | None = None,
) -> list[IngestResult | GridworkError]:
    """Several requests in one transaction (group commit), each refused or stored on its own.

    A refused request (a device the key may not report for, no consent, a revoked key)
    stores nothing and gets its error back. Otherwise every report is answered, because
    Traccar Client 10 and the legacy Android client resend their oldest report until it
    is answered 2xx, and a refusal they cannot cure would silence the watch for good:

    * a keep-alive (no position) stores no fix; it counts as heard from, its battery is kept
      on the device, and its alarm or low battery raise their alerts;
    * a fix older than the retention period, or from before the wearer's consent
      (``q.reporting_status``), is not stored (it would be purged at once, or was never
      consented to);
    * a fix from a clock more than ``MAX_FUTURE_SKEW`` ahead is stored at the time of
      receipt (the request's fast fixes moved back together, so that the newest lands on the
      time of receipt and their spacing stays), with the device's time in ``device_time``;
    * a fix the device marks invalid is stored but does not move the zone state.

    Each of these is counted on the device with the reason (``/elders/{id}``) and named in
    the answer's notes. The others are stored with one INSERT, one zone lock and one commit
    between all requests; a fix sent twice in the same batch counts as stored for the first
    request and as a duplicate for the second. The extra bookkeeping is one statement per
    batch, and only when a batch has such reports.
    """
    links = q.devices_for_keys(
        session, [(r.key_name, f.device_id) for r in requests for f in r.fixes]
    )
    results: list[IngestResult | GridworkError | None] = []
    accepted: list[tuple[int, IngestRequest]] = []
    for i, request in enumerate(requests):
        try:
            _admit(request, links)
        except GridworkError as exc:
            results.append(exc)
            continue
        results.append(None)
        accepted.append((i, request))
    # Lock the elders' zone states, then read consent and the keys' validity in a statement
    # of its own. A withdrawal of consent, a revoked key or a forgotten elder take the same
    # lock first (q.withdraw_consent, q.retire_devices, q.delete_elder): either they
    # committed before this read, which then sees them, or they wait until this batch has
    # committed (and a deletion of positions sees its fixes). Nothing is stored after.
    elders = {links[(r.key_name, f.device_id)].elder_id for _, r in accepted for f in r.fixes}
    contexts = q.lock_zones(session, sorted(elders), epsg=epsg)
    devices = {links[(r.key_name, f.device_id)].id for _, r in accepted for f in r.fixes}
    status = q.reporting_status(session, sorted(devices))
    still: list[tuple[int, IngestRequest]] = []
    for i, request in accepted:
        now_refused = _refused_now(request, links, status)
        if now_refused is None:
            still.append((i, request))
        else:
            results[i] = now_refused
    accepted = still
    sorted_out = _sort_reports(accepted, links, status, now=now, retention=retention)
    # One datum conversion for the whole batch: per request it cost more than the insert.
    rows = _position_rows(sorted_out.fixes, sorted_out.fix_links)
    first_row: dict[tuple[int, datetime], int] = {}
    for row, i in zip(rows, sorted_out.owner, strict=True):
        first_row.setdefault((row.device_id, row.time), i)
    # Insert in key order: concurrent batches then take unique-index locks in the same
    # order and cannot deadlock on a fix that both of them carry.
    rows = sorted(rows, key=lambda r: (r.device_id, r.time))
    stored = q.insert_positions(session, rows, epsg=epsg)
    raised_by = _evaluate(
        session,
        stored,
        rows,
        first_row,
        sorted_out.keepalives,
        contexts,
        webhook_url=webhook_url,
    )
    q.record_device_reports(session, sorted_out.device_reports(now))
    stored_by = Counter(first_row[(p.device_id, p.time)] for p in stored)
    alerts_by = Counter(raised_by)
    for i, _request in accepted:
        n = stored_by[i]
        results[i] = IngestResult(
            n,
            sorted_out.storable[i] - n,
            alerts_by[i],
            sorted_out.not_stored[i],
            tuple(sorted_out.notes[i]),
        )
    return [r for r in results if r is not None]


@dataclass
class _Sorted:
    """The reports of a batch's accepted requests, sorted into what is done with them."""

    fixes: list[Fix] = field(default_factory=list)
    fix_links: list[q.DeviceLink] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)  # the request of each fix
    storable: Counter[int] = field(default_factory=Counter)  # fixes to store per request
    keepalives: list[tuple[int, q.DeviceLink, KeepAlive]] = field(default_factory=list)
    not_stored: Counter[int] = field(default_factory=Counter)
    notes: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    # per device: reports not stored, newest keep-alive, newest refusal (time, reason)
    skipped: Counter[int] = field(default_factory=Counter)
    newest_keepalive: dict[int, KeepAlive] = field(default_factory=dict)
    refusal: dict[int, str] = field(default_factory=dict)

    def device_reports(self, now: datetime) -> list[q.DeviceReports]:
        out = []
        for device_id in sorted(set(self.skipped) | set(self.refusal)):
            keepalive = self.newest_keepalive.get(device_id)
            out.append(
                q.DeviceReports(
                    device_id=device_id,
                    heard_at=now,
                    not_stored=self.skipped[device_id],
                    battery=None if keepalive is None else keepalive.battery,
                    charging=None if keepalive is None else keepalive.charging,
                    refused_at=now if device_id in self.refusal else None,
                    refused_reason=self.refusal.get(device_id),
                )
            )
        return out


def _sort_reports(
    accepted: Sequence[tuple[int, IngestRequest]],
    links: Mapping[tuple[str, str], q.DeviceLink],
    status: Mapping[int, q.ReportingStatus],
    *,
    now: datetime,
    retention: timedelta,
) -> _Sorted:
    out = _Sorted()
    oldest = now - retention
    for i, request in accepted:
        many = len(request.fixes) > 1
        # A fast clock is fast for every fix of the request: move them back together.
        fast = [
            f.time for f in request.fixes if isinstance(f, Fix) and f.time > now + MAX_FUTURE_SKEW
        ]
        shift = max(fast) - now if fast else timedelta(0)
        for j, report in enumerate(request.fixes):
            link = links[(request.key_name, report.device_id)]
            where = f"reports[{j}] " if many else ""
            note: str | None = None
            if isinstance(report, KeepAlive):
                note = "no_position: a keep-alive; last heard and battery kept, no fix stored"
                # One from before the retention period says nothing of now: heard, no more.
                if report.time >= oldest:
                    out.keepalives.append((i, link, report))
                    newest = out.newest_keepalive.get(link.id)
                    if newest is None or report.time >= newest.time:
                        out.newest_keepalive[link.id] = report
            elif report.time < oldest:
                note = (
                    f"too_old: {report.time.isoformat()} is older than the retention period "
                    f"({retention.days} days); not stored"
                )
            elif (since := status[link.id].consent_since) is not None and report.time < since:
                note = (
                    f"before_consent: {report.time.isoformat()} is before the wearer's consent "
                    f"(from {since.isoformat(timespec='seconds')}); not stored"
                )
            else:
                if report.time > now + MAX_FUTURE_SKEW:
                    moved = report.time - shift
                    note = (
                        f"clock_ahead: device time {report.time.isoformat()} is "
                        f"{_duration(report.time - now)} after its receipt; stored at "
                        f"{moved.isoformat()}, the device's time kept as device_time"
                    )
                    attributes = {**report.attributes, "device_time": report.time.isoformat()}
                    report = replace(report, time=moved, attributes=attributes)
                    out.refusal[link.id] = where + note
                    out.notes[i].append(where + note)
                    note = None
                out.fixes.append(report)
                out.fix_links.append(link)
                out.owner.append(i)
                out.storable[i] += 1
                continue
            out.not_stored[i] += 1
            out.skipped[link.id] += 1
            out.notes[i].append(where + note)
            if not isinstance(report, KeepAlive):
                out.refusal[link.id] = where + note
    return out


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def _admit(request: IngestRequest, links: Mapping[tuple[str, str], q.DeviceLink]) -> None:
    """Refuse a request whose key may not report for a device. (Consent and the key's
    validity are read under the zone lock: :func:`_refused_now`.)"""
    codes = sorted({f.device_id for f in request.fixes})
    unknown = [c for c in codes if (request.key_name, c) not in links]
    if unknown:
        raise Forbidden(
            f"this key may not report for device {_names(unknown)}; nothing was stored",
            field="id",
        )


def _refused_now(
    request: IngestRequest,
    links: Mapping[tuple[str, str], q.DeviceLink],
    status: Mapping[int, q.ReportingStatus],
) -> GridworkError | None:
    """Why a request is refused once its elders' zones are locked (no consent, a key revoked
    meanwhile), if it is."""
    ids = {f.device_id: links[(request.key_name, f.device_id)].id for f in request.fixes}
    if not all(i in status and status[i].live for i in ids.values()):
        return Unauthorized("the API key is not valid")
    withdrawn = sorted(code for code, i in ids.items() if not status[i].consent)
    return _no_consent(withdrawn) if withdrawn else None


def _no_consent(codes: Sequence[str]) -> Forbidden:
    return Forbidden(
        f"no active consent for the wearer of device {_names(codes)}; nothing was stored",
        field="id",
    )


def _names(codes: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in codes[:5])
    return shown + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")


def _position_rows(fixes: Sequence[Fix], links: Sequence[q.DeviceLink]) -> list[q.PositionRow]:
    """Every fix in WGS-84, converted per datum in one vectorised call each; ``links[i]`` is
    the device of ``fixes[i]``."""
    if not fixes:
        return []
    lon = np.array([f.lon for f in fixes], dtype=np.float64)
    lat = np.array([f.lat for f in fixes], dtype=np.float64)
    datum = np.array([link.datum.value for link in links])
    out_lon, out_lat = lon.copy(), lat.copy()
    for name in ("gcj02", "bd09"):
        mask = datum == name
        if mask.any():
            out_lon[mask], out_lat[mask] = to_wgs84(lon[mask], lat[mask], name)
    rows = []
    for i, (fix, link) in enumerate(zip(fixes, links, strict=True)):
        rows.append(
            q.PositionRow(
                device_id=link.id,
                elder_id=link.elder_id,
                time=fix.time,
                lon=float(out_lon[i]),
                lat=float(out_lat[i]),
                raw_lon=fix.lon,
                raw_lat=fix.lat,
                accuracy_m=fix.accuracy_m,
                speed_mps=fix.speed_mps,
                bearing=fix.bearing,
                altitude=fix.altitude,
                battery=fix.battery,
                charging=fix.charging,
                alarm=fix.alarm,
                attributes=dict(fix.attributes),
                valid=fix.valid,
            )
        )
    return rows


def _evaluate(
    session: Session,
    stored: Sequence[q.StoredPosition],
    rows: Sequence[q.PositionRow],
    owners: Mapping[tuple[int, datetime], int],
    keepalives: Sequence[tuple[int, q.DeviceLink, KeepAlive]],
    contexts: Mapping[int, q.ZoneContext],
    *,
    webhook_url: str | None,
) -> list[int]:
    """Advance each elder's zone state (``contexts``, locked) by their new fixes and
    keep-alives in time order; raise the alerts. Returns the request (``owners`` of the
    fixes, the first member of each keep-alive) behind each alert.

    A valid fix goes through :func:`geo.care.safezone.evaluate`. A keep-alive, or a fix the
    device marked invalid, says nothing sure of where the elder is: it leaves the zone
    state alone, but its alarm (``sos``) and a low battery are raised as a fix's would be,
    because neither depends on the position (and a missed SOS costs more than a repeated
    one)."""
    if not stored and not keepalives:
        return []
    extra: dict[tuple[int, datetime], q.PositionRow] = {}
    for r in rows:
        extra.setdefault((r.device_id, r.time), r)
    by_elder: dict[int, list[tuple[datetime, int, q.StoredPosition | tuple[int, KeepAlive]]]]
    by_elder = defaultdict(list)
    for p in stored:
        by_elder[p.elder_id].append((p.time, p.id, p))
    for n, (i, link, keepalive) in enumerate(keepalives):
        by_elder[link.elder_id].append((keepalive.time, n, (i, keepalive)))
    raised: list[int] = []
    alerts: list[q.NewAlert] = []
    changed: dict[int, ZoneState] = {}
    recovered: list[tuple[int, str, datetime]] = []
    # When each elder's stored fixes were received: their state row is written with it even
    # when the fixes leave the state as it was (a late fix, a repeat of the same place).
    received: dict[int, datetime] = {}
    for p in stored:
        received[p.elder_id] = max(p.received_at, received.get(p.elder_id, p.received_at))
    for elder_id in sorted(by_elder):
        ctx = contexts.get(elder_id)
        if ctx is None:  # pragma: no cover - every enrolled elder has a zone and a state
            continue
        state = ctx.state
        last_ref: q.PositionRef | None = None
        looked_up = False
        for _, _, item in sorted(by_elder[elder_id], key=lambda t: (t[0], t[1])):
            if isinstance(item, q.StoredPosition):
                row = extra[(item.device_id, item.time)]
                owner = owners[(item.device_id, item.time)]
                if row.valid:
                    metric = MetricFix(
                        x=item.x, y=item.y, time=item.time, battery=row.battery, alarm=row.alarm
                    )
                    late = state.last_fix_time is not None and item.time < state.last_fix_time
                    # The fix's own time is "now" for it: staleness is the periodic task's.
                    new_state, events = evaluate(state, metric, item.time, ctx.zone)
                    if not late:
                        state = new_state
                else:
                    state, events = _signal(state, item.time, row.battery, row.alarm)
                ref = q.PositionRef(item.id, item.time, item.grid_id)
                for event in events:
                    if event.kind != "no_fix":
                        alerts.append(_alert(ctx, event, ref))
                        raised.append(owner)
                continue
            owner, keepalive = item
            state, events = _signal(state, keepalive.time, keepalive.battery, keepalive.alarm)
            if events and not looked_up:  # where the elder was last seen, for routing
                last_ref, looked_up = q.last_position_ref(session, elder_id), True
            for event in events:
                alerts.append(_alert(ctx, event, last_ref))
                raised.append(owner)
        if state != ctx.state or elder_id in received:
            changed[elder_id] = state
        recovered += _recovered(elder_id, ctx.state, state)
    raise_alerts(session, alerts, webhook_url)
    _tell_closed(session, q.close_by_itself(session, recovered), webhook_url)
    q.save_zone_states(
        session, changed, received={e: t for e, t in received.items() if e in changed}
    )
    return raised


def _recovered(
    elder_id: int, before: ZoneState, after: ZoneState
) -> list[tuple[int, str, datetime]]:
    """What this batch put right: a watch that has a position again ends its ``no_fix``
    alert, one charged past the hysteresis its ``low_battery`` one (``q.close_by_itself``).
    Every such alert raised until now: a ``no_fix`` alert carries the time of the check that
    raised it, which may be later than the fix that ends it (sent late, or a clock behind)."""
    at = datetime.now(UTC)
    out = []
    if before.no_fix and not after.no_fix:
        out.append((elder_id, "no_fix", at))
    if before.low_battery and not after.low_battery:
        out.append((elder_id, "low_battery", at))
    return out


def _signal(
    state: ZoneState, time: datetime, battery: float | None, alarm: str | None
) -> tuple[ZoneState, list[ZoneEvent]]:
    """A report that says nothing sure of the position: its alarm and battery only, with
    the rules of :func:`geo.care.safezone.evaluate` (once per alarm, battery hysteresis)."""
    alarm = alarm.strip() if alarm and alarm.strip() else None
    events: list[ZoneEvent] = []
    if state.last_fix_time is not None and time < state.last_fix_time:
        if alarm is not None:
            events.append(ZoneEvent("sos", time, None, detail=alarm))
        return state, events
    if alarm is not None and alarm != state.alarm:
        events.append(ZoneEvent("sos", time, None, detail=alarm))
    low = state.low_battery
    if battery is not None:
        if not low and battery < DEFAULT_LOW_BATTERY_PCT:
            low = True
            events.append(ZoneEvent("low_battery", time, None, detail=f"{battery:g}%"))
        elif low and battery > DEFAULT_LOW_BATTERY_PCT + DEFAULT_BATTERY_HYSTERESIS_PCT:
            low = False
    kept = state.battery if battery is None else battery
    return replace(state, low_battery=low, alarm=alarm, battery=kept), events


def _alert(ctx: q.ZoneContext, event: ZoneEvent, fix: q.PositionRef | None) -> q.NewAlert:
    return q.NewAlert(
        elder_id=ctx.elder_id,
        kind=event.kind,
        event_time=event.time,
        position_id=None if fix is None else fix.id,
        position_time=None if fix is None else fix.time,
        grid_id=None if fix is None else fix.grid_id,
        home_grid_id=ctx.home_grid_id,
        detail=event.detail,
    )


def raise_alerts(
    session: Session, alerts: Sequence[q.NewAlert], webhook_url: str | None
) -> list[int]:
    """Store the alerts (routed to their workers) and queue them for the webhook, if any.
    A zone alert closes the elder's earlier ones (``q.close_by_itself``): an elder who went
    out and came back three times leaves one item for staff, not six."""
    ids = q.insert_alerts(session, alerts)
    closed = q.close_by_itself(
        session,
        [
            (a.elder_id, kind, a.event_time)
            for a in alerts
            if a.kind in q.ZONE_KINDS
            for kind in q.ZONE_KINDS
        ],
        keep=ids,
    )
    if webhook_url:
        for alert_id in ids:
            q.queue_webhook(session, alert_id, webhook_url)
    _tell_closed(session, closed, webhook_url)
    return ids


def _tell_closed(session: Session, closed: Sequence[int], webhook_url: str | None) -> None:
    """Alerts closed by themselves, queued for the webhook as closed."""
    if webhook_url:
        for alert_id in closed:
            q.queue_webhook(session, alert_id, webhook_url, event="closed")


def set_alert_status(
    session: Session,
    alert_id: int,
    scope: AreaScope,
    *,
    to: AlertStatus,
    by: str,
    webhook_url: str | None,
) -> dict[str, Any]:
    """Acknowledge or close an alert (:func:`data.care.queries.set_alert_status`) and queue
    the change for the webhook, if any, in the same transaction."""
    alert = q.set_alert_status(session, alert_id, scope, to=to, by=by)
    if webhook_url:
        q.queue_webhook(session, alert_id, webhook_url, event=to.value)
    return alert


# --------------------------------------------------------------------------- periodic work


def raise_silent(
    session: Session,
    *,
    now: datetime,
    epsg: int,
    no_fix_minutes: float,
    webhook_url: str | None = None,
) -> int:
    """One ``no_fix`` alert per consenting elder without a fix for ``no_fix_minutes`` (once
    a spell). Its detail tells a watch that is alive but has no GPS fix (a keep-alive or
    another report heard within the period: indoors, say; or old fixes it kept and uploaded
    late) from one that is silent."""
    cutoff = now - timedelta(minutes=no_fix_minutes)
    alerts: list[q.NewAlert] = []
    contexts = q.silent_zones(session, cutoff=cutoff, epsg=epsg)
    heard = q.last_heard(session, [ctx.elder_id for ctx in contexts]) if contexts else {}
    for ctx in contexts:
        state, events = evaluate(ctx.state, None, now, ctx.zone, no_fix_minutes=no_fix_minutes)
        ref = q.last_position_ref(session, ctx.elder_id)
        detail = silence_detail(ctx.state.last_fix_time, heard.get(ctx.elder_id), cutoff)
        alerts += [_alert(ctx, replace(event, detail=detail), ref) for event in events]
        q.save_zone_state(session, ctx.elder_id, state)
    return len(raise_alerts(session, alerts, webhook_url))


def silence_detail(
    last_fix: datetime | None, heard: tuple[datetime, float | None] | None, cutoff: datetime
) -> str:
    """``watch alive, no GPS fix …`` when the device was heard from after its last fix and
    since ``cutoff``; else ``watch silent …``."""
    since = "never" if last_fix is None else last_fix.isoformat(timespec="minutes")
    if heard is not None and heard[0] >= cutoff and (last_fix is None or heard[0] > last_fix):
        battery = "" if heard[1] is None else f", battery {heard[1]:g}%"
        return (
            f"watch alive, no GPS fix since {since}; last heard "
            f"{heard[0].isoformat(timespec='minutes')}{battery}"
        )
    times = [t for t in (last_fix, None if heard is None else heard[0]) if t is not None]
    latest = max(times).isoformat(timespec="minutes") if times else "never"
    return f"watch silent: no fix since {since}, nothing heard since {latest}"


PARTITIONS_AHEAD = 7
"""Days of ``position`` partitions made ahead of today: a week without the periodic task
before fixes land in the default partition (where they are still kept, and moved out)."""


def make_partitions(engine: Engine, *, now: datetime) -> int | None:
    """The partitions of ``position`` for today and the next ``PARTITIONS_AHEAD`` UTC days,
    and for any day whose fixes wait in the default partition; how many were made (None: the
    table was busy, try next time)."""
    today = now.astimezone(UTC).date()
    with transaction(engine) as session:
        return q.make_position_partitions(
            session, first_day=today, last_day=today + timedelta(days=PARTITIONS_AHEAD)
        )


def purge(engine: Engine, *, now: datetime, retention: timedelta) -> int:
    """Delete positions older than the retention period; returns how many went.

    Whole days older than the cut-off go by dropping their partition (migration 0019), in a
    transaction of its own so the table's lock is held for the drop only; then the fixes
    left before the cut-off (in the day straddling it, and in the default partition) are
    deleted. The answer is the one a single DELETE gave: "older than" is strict either way.
    """
    before = now - retention
    with transaction(engine) as session:
        dropped = q.drop_position_partitions(session, before=before) or 0
    with transaction(engine) as session:
        return dropped + q.purge_positions(session, before=before)


#: The one delivery loop of the outbox (alerts and cases alike), under the name care used.
deliver_webhooks = webhooks.deliver


def tick(
    engine: Engine,
    *,
    now: datetime,
    epsg: int | None,
    no_fix_minutes: float,
    retention: timedelta,
    webhook_url: str | None,
    purge_now: bool,
) -> dict[str, int]:
    """One pass of the server's periodic task; each part in its own transaction."""
    out = {"no_fix": 0, "purged": 0, "delivered": 0}
    if epsg is not None:
        with transaction(engine) as session:
            out["no_fix"] = raise_silent(
                session,
                now=now,
                epsg=epsg,
                no_fix_minutes=no_fix_minutes,
                webhook_url=webhook_url,
            )
    if purge_now:
        make_partitions(engine, now=now)
        out["purged"] = purge(engine, now=now, retention=retention)
    out["delivered"] = deliver_webhooks(engine)[0]
    return out
