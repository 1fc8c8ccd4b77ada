"""Elders, consent, devices, positions, safe zones and alerts: every SQL statement of elder care.

Area scope: an elder belongs to the area of their home grid; who may read or change one is
``data.policy.elder_sql`` (changes need the home area; an alert that is not closed widens
*reading* to staff of the grid holding the elder's newest fix, for as long as it is there).
Alerts are visible where either their current grid or the elder's home grid is.

The grid of a point follows ``geo.assignment.index``:
``ST_Covers`` on current grids, lowest code wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import shapely
from psycopg.errors import LockNotAvailable
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from data import webhooks
from data.access.queries import SYSTEM_ACTOR, AreaScope
from data.changes import notify_alerts
from data.models.care import AlertStatus, DeviceDatum, ZoneKind
from data.policy import ALERT_SQL, Action, elder_sql
from geo.care.safezone import SafeZone, ZoneState
from geo.errors import Conflict, Forbidden, InvalidGeometry, InvalidInput, NotFound

Db = Session | Connection


def grid_at(point_sql: str) -> str:
    """The current grid covering a point: the covering rule, once (migration 0011)."""
    return f"grid_covering({point_sql})"


def _scope_params(scope: AreaScope) -> dict[str, Any]:
    # grid_ids is NULL for an unrestricted caller, as data.policy's predicates read it.
    return {"unrestricted": scope.unrestricted, "grid_ids": scope.sql_ids("grid")}


# --------------------------------------------------------------------------- enrollment


@dataclass(frozen=True)
class HomeHousehold:
    id: int
    code: str
    grid_id: int
    grid_code: str


def find_home_household(db: Db, code: str, scope: AreaScope) -> HomeHousehold:
    """The household an elder lives in, with its grid; outside the caller's area it is absent."""
    row = db.execute(
        text(
            f"""
            SELECT h.id, h.code, g.id, g.code
            FROM household h
            LEFT JOIN grid g ON g.id = coalesce(
                (SELECT id FROM grid WHERE id = h.grid_id AND valid_to IS NULL),
                {grid_at("h.geom")})
            WHERE h.code = :code
            """  # noqa: S608
        ),
        {"code": code},
    ).first()
    if row is None or (
        not scope.unrestricted and (row[2] is None or row[2] not in (scope.grid_ids or ()))
    ):
        raise NotFound.said("no_household", code=code, field="household_code")
    if row[2] is None:
        raise InvalidInput.said("household_without_grid", code=code, field="household_code")
    return HomeHousehold(row[0], row[1], row[2], row[3])


def device_code_taken(db: Db, code: str, key_name: str) -> bool:
    row = db.execute(
        text(
            "SELECT 1 FROM device WHERE device_code = :c "
            "UNION ALL SELECT 1 FROM api_key WHERE name = :k"
        ),
        {"c": code, "k": key_name},
    ).first()
    return row is not None


def home_grid_id(db: Db, elder_id: int) -> int | None:
    value = db.execute(
        text("SELECT home_grid_id FROM elder WHERE id = :e"), {"e": elder_id}
    ).scalar_one()
    return None if value is None else int(value)


def api_key_id(db: Db, name: str) -> int:
    return int(db.execute(text("SELECT id FROM api_key WHERE name = :n"), {"n": name}).scalar_one())


def insert_elder(
    db: Db,
    *,
    display_name: str,
    household_id: int,
    home_grid_id: int,
    emergency_contact: str | None,
    enrolled_by: str,
) -> int:
    elder_id = db.execute(
        text(
            "INSERT INTO elder (display_name, household_id, home_grid_id, emergency_contact, "
            "enrolled_by) VALUES (:n, :h, :g, :c, :by) RETURNING id"
        ),
        {
            "n": display_name,
            "h": household_id,
            "g": home_grid_id,
            "c": emergency_contact,
            "by": enrolled_by,
        },
    ).scalar_one()
    db.execute(text("INSERT INTO zone_state (elder_id) VALUES (:e)"), {"e": elder_id})
    return int(elder_id)


def _lock_for_ingest(db: Db, elder_id: int) -> None:
    """Take the lock ingest takes first (the elder's zone state) before changing what decides
    whether their fixes may be kept. A batch of fixes in flight then either commits before
    the change, or waits for it and sees it (data.care.service.ingest_many); and the locks are taken
    in ingest's order (zone state, then the device its new position refers to), so the two
    cannot deadlock."""
    db.execute(text("SELECT 1 FROM zone_state WHERE elder_id = :e FOR UPDATE"), {"e": elder_id})


def device_owner(db: Db, code: str) -> int | None:
    """The elder a device code is enrolled for, if any."""
    value = db.execute(
        text("SELECT elder_id FROM device WHERE device_code = :c"), {"c": code}
    ).scalar_one_or_none()
    return None if value is None else int(value)


def retire_devices(db: Db, elder_id: int) -> list[str]:
    """Deactivate the elder's devices and revoke their keys; the codes of those that were
    active. A revoked key is renamed (``…:retired:<id>``) so that a new key may take the
    device's key name."""
    _lock_for_ingest(db, elder_id)
    rows = db.execute(
        text(
            """
            WITH d AS (
                SELECT id, device_code, api_key_id, active FROM device
                WHERE elder_id = :e FOR UPDATE
            ), k AS (
                UPDATE api_key SET revoked_at = coalesce(revoked_at, now()),
                    name = name || ':retired:' || id
                WHERE id IN (SELECT api_key_id FROM d) AND name NOT LIKE '%:retired:%'
            ), off AS (
                UPDATE device SET active = false WHERE id IN (SELECT id FROM d)
            )
            SELECT device_code FROM d WHERE active ORDER BY device_code
            """
        ),
        {"e": elder_id},
    ).all()
    return [r[0] for r in rows]


def attach_device(db: Db, *, code: str, elder_id: int, key_id: int, datum: DeviceDatum) -> int:
    """The device, active with this key: a code the elder had is reused, a new one added."""
    return int(
        db.execute(
            text(
                "INSERT INTO device (device_code, elder_id, api_key_id, datum) "
                "VALUES (:c, :e, :k, CAST(:d AS device_datum)) "
                "ON CONFLICT (device_code) DO UPDATE SET api_key_id = excluded.api_key_id, "
                "datum = excluded.datum, active = true WHERE device.elder_id = excluded.elder_id "
                "RETURNING id"
            ),
            {"c": code, "e": elder_id, "k": key_id, "d": datum.value},
        ).scalar_one()
    )


def grid_metric(db: Db, grid_id: int, epsg: int) -> BaseGeometry:
    wkb = db.execute(
        text("SELECT ST_AsBinary(ST_Transform(geom, :epsg)) FROM grid WHERE id = :id"),
        {"id": grid_id, "epsg": epsg},
    ).scalar_one()
    geom: BaseGeometry = shapely.from_wkb(bytes(wkb))
    return geom


def home_metric(db: Db, elder_id: int, epsg: int) -> tuple[float, float] | None:
    """The elder's home household point in the metric CRS, or None if it is gone."""
    row = db.execute(
        text(
            "SELECT ST_X(t.g), ST_Y(t.g) FROM elder e JOIN household h ON h.id = e.household_id "
            "CROSS JOIN LATERAL (SELECT ST_Transform(h.geom, :epsg) AS g) t WHERE e.id = :e"
        ),
        {"e": elder_id, "epsg": epsg},
    ).first()
    return None if row is None else (float(row[0]), float(row[1]))


def save_zone(
    db: Db,
    elder_id: int,
    zone: SafeZone,
    *,
    kind: ZoneKind,
    epsg: int,
    buffer_m: float | None = None,
) -> None:
    """Store an elder's one safe zone (drawn in metres), replacing the previous one."""
    centre = zone.centre
    db.execute(
        text(
            """
            INSERT INTO safe_zone (elder_id, kind, buffer_m, centre, radius_m, geom, updated_at)
            VALUES (:e, CAST(:kind AS zone_kind), :buffer,
                    CASE WHEN CAST(:cx AS float8) IS NULL THEN NULL
                         ELSE ST_Transform(ST_SetSRID(ST_MakePoint(:cx, :cy), :epsg), 4326) END,
                    :radius, ST_Transform(ST_GeomFromWKB(:wkb, :epsg), 4326), now())
            ON CONFLICT (elder_id) DO UPDATE SET kind = excluded.kind,
                buffer_m = excluded.buffer_m, centre = excluded.centre,
                radius_m = excluded.radius_m, geom = excluded.geom, updated_at = now()
            """
        ),
        {
            "e": elder_id,
            "kind": kind.value,
            "buffer": buffer_m,
            "cx": None if centre is None else centre[0],
            "cy": None if centre is None else centre[1],
            "radius": zone.radius_m,
            "wkb": shapely.to_wkb(zone.geometry),
            "epsg": epsg,
        },
    )


def zone_is(db: Db, elder_id: int, zone: SafeZone, *, epsg: int) -> bool:
    """Whether the elder's stored zone is this one, as :func:`save_zone` would store it (so a
    redraw that changes nothing keeps the zone's ``updated_at`` and its cached shape)."""
    same = db.execute(
        text(
            "SELECT ST_Equals(z.geom, ST_Transform(ST_GeomFromWKB(:wkb, :epsg), 4326)) "
            "FROM safe_zone z WHERE z.elder_id = :e"
        ),
        {"e": elder_id, "wkb": shapely.to_wkb(zone.geometry), "epsg": epsg},
    ).scalar()
    return bool(same)


def add_consent(
    db: Db, elder_id: int, *, given_by: str, recorded_by: str, given_on: date, scope: str
) -> int:
    return int(
        db.execute(
            text(
                "INSERT INTO consent (elder_id, given_by, recorded_by, given_on, scope) "
                "VALUES (:e, :g, :r, :d, :s) RETURNING id"
            ),
            {"e": elder_id, "g": given_by, "r": recorded_by, "d": given_on, "s": scope},
        ).scalar_one()
    )


def withdraw_consent(db: Db, elder_id: int, *, by: str) -> int:
    """Mark every active consent withdrawn; from now on the elder's devices are refused."""
    _lock_for_ingest(db, elder_id)
    result = db.execute(
        text(
            "UPDATE consent SET withdrawn_at = now(), withdrawn_by = :by "
            "WHERE elder_id = :e AND withdrawn_at IS NULL"
        ),
        {"e": elder_id, "by": by},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ReportingStatus:
    """Whether a device may report now, read under the zone lock."""

    live: bool  # active, and its key not revoked
    consent: bool  # its wearer has an active consent
    consent_since: datetime | None  # fixes from before this were never consented to


def reporting_status(db: Db, device_ids: Sequence[int]) -> dict[int, ReportingStatus]:
    """Per device: may it still report, does its wearer consent and since when, read now,
    not at the transaction's start. A device deleted meanwhile is absent.

    "Since when": the start (UTC) of the day the oldest active consent was given; but if a
    consent was withdrawn after that, the moment the active one was recorded, so that
    nothing from the time between the withdrawal and the new consent is kept."""
    rows = db.execute(
        text(
            """
            SELECT d.id, d.active AND k.revoked_at IS NULL, a.n > 0,
                   CASE WHEN w.withdrawn > a.given THEN greatest(a.given, a.recorded)
                        ELSE a.given END
            FROM device d JOIN api_key k ON k.id = d.api_key_id
            CROSS JOIN LATERAL (
                SELECT count(*) AS n, min(c.given_on)::timestamp AT TIME ZONE 'UTC' AS given,
                       min(c.recorded_at) AS recorded
                FROM consent c WHERE c.elder_id = d.elder_id AND c.withdrawn_at IS NULL) a
            CROSS JOIN LATERAL (
                SELECT max(c.withdrawn_at) AS withdrawn FROM consent c
                WHERE c.elder_id = d.elder_id AND c.withdrawn_at IS NOT NULL) w
            WHERE d.id = ANY(CAST(:ids AS int[]))
            """
        ),
        {"ids": list(device_ids)},
    ).all()
    return {int(r[0]): ReportingStatus(bool(r[1]), bool(r[2]), r[3]) for r in rows}


@dataclass(frozen=True)
class DeviceReports:
    """What one batch leaves on a device besides its stored fixes (see migration 0008)."""

    device_id: int
    heard_at: datetime  # receipt of its newest report not stored as a fix
    not_stored: int
    battery: float | None = None  # from its newest keep-alive, if it said
    charging: bool | None = None
    refused_at: datetime | None = None
    refused_reason: str | None = None


def record_device_reports(db: Db, reports: Sequence[DeviceReports]) -> None:
    """Keep-alives and refused reports of a batch, one statement for all devices."""
    if not reports:
        return
    rows = sorted(reports, key=lambda r: r.device_id)
    db.execute(
        text(
            """
            UPDATE device d SET
                last_heard_at = greatest(d.last_heard_at, v.heard),
                not_stored = d.not_stored + v.n,
                last_battery = coalesce(v.battery, d.last_battery),
                last_charging = coalesce(v.charging, d.last_charging),
                last_refused_at = coalesce(v.refused_at, d.last_refused_at),
                last_refused_reason = CASE WHEN v.refused_at IS NULL
                                           THEN d.last_refused_reason ELSE v.reason END
            FROM unnest(CAST(:d AS int[]), CAST(:h AS timestamptz[]), CAST(:n AS int[]),
                        CAST(:b AS float8[]), CAST(:c AS bool[]),
                        CAST(:ra AS timestamptz[]), CAST(:rr AS text[]))
                 AS v(device_id, heard, n, battery, charging, refused_at, reason)
            WHERE d.id = v.device_id
            """
        ),
        {
            "d": [r.device_id for r in rows],
            "h": [r.heard_at for r in rows],
            "n": [r.not_stored for r in rows],
            "b": [r.battery for r in rows],
            "c": [r.charging for r in rows],
            "ra": [r.refused_at for r in rows],
            "rr": [None if r.refused_reason is None else r.refused_reason[:300] for r in rows],
        },
    )


def last_heard(db: Db, elder_ids: Sequence[int]) -> dict[int, tuple[datetime, float | None]]:
    """Per elder, when their devices were last heard from (the newest keep-alive or refused
    report, or the newest receipt of a fix, ``zone_state.last_received_at``: a watch that
    uploads fixes it kept while out of reach is alive even though those fixes are old) and
    the battery the newest keep-alive gave; elders never heard from are absent."""
    rows = db.execute(
        text(
            """
            SELECT e.id, greatest(d.heard, s.last_received_at), d.battery
            FROM unnest(CAST(:e AS int[])) AS e(id)
            LEFT JOIN LATERAL (
                SELECT last_heard_at AS heard, last_battery AS battery FROM device
                WHERE elder_id = e.id AND last_heard_at IS NOT NULL
                ORDER BY last_heard_at DESC LIMIT 1
            ) d ON true
            LEFT JOIN zone_state s ON s.elder_id = e.id
            WHERE greatest(d.heard, s.last_received_at) IS NOT NULL
            """
        ),
        {"e": sorted(set(elder_ids))},
    ).all()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def delete_positions_of(db: Db, elder_id: int) -> int:
    result = db.execute(text("DELETE FROM position WHERE elder_id = :e"), {"e": elder_id})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_elder(db: Db, elder_id: int) -> dict[str, int]:
    """The elder and everything kept about them: devices and their keys (the current ones and
    those replaced earlier, which ``retire_devices`` renamed ``device:<code>:retired:<id>``),
    consents, zone, positions, alerts. What was deleted, counted, for the answer."""
    _lock_for_ingest(db, elder_id)
    counts = db.execute(
        text(
            "SELECT (SELECT count(*) FROM position WHERE elder_id = :e), "
            "(SELECT count(*) FROM alert WHERE elder_id = :e), "
            "(SELECT count(*) FROM device WHERE elder_id = :e)"
        ),
        {"e": elder_id},
    ).one()
    # A replaced key is named exactly after its device and its own id, and no device refers
    # to it any more; matching the whole name (not a LIKE pattern) cannot reach another
    # device's key, whatever characters device codes hold.
    db.execute(
        text(
            """
            DELETE FROM api_key k USING device d
            WHERE d.elder_id = :e AND (
                k.id = d.api_key_id
                OR (k.revoked_at IS NOT NULL
                    AND k.name = 'device:' || d.device_code || ':retired:' || k.id
                    AND NOT EXISTS (SELECT 1 FROM device o WHERE o.api_key_id = k.id
                                    AND o.elder_id <> :e)))
            """
        ),
        {"e": elder_id},
    )
    db.execute(text("DELETE FROM elder WHERE id = :e"), {"e": elder_id})  # the rest cascades
    return {"positions": int(counts[0]), "alerts": int(counts[1]), "devices": int(counts[2])}


# --------------------------------------------------------------------------- elders, scoped


def _refusal(db: Db, elder_id: int, scope: AreaScope, to: Action) -> Exception:
    """Why ``elder_id`` is not the caller's to ``to``: a change refused to someone who may
    read the elder (found in their area during an alert) is a 403 saying so; otherwise the
    same 404 as a missing elder."""
    if to is not Action.locate_elders:
        readable = db.execute(
            text(
                f"SELECT 1 FROM elder e WHERE e.id = :id AND {elder_sql(Action.locate_elders)}"  # noqa: S608
            ),
            {"id": elder_id, **_scope_params(scope)},
        ).first()
        if readable is not None:
            return Forbidden(
                f"elder {elder_id} lives outside your area: an open alert lets you locate them "
                "while they are in your area, but only staff of their home area may change "
                "their device, consent or safe zone, or forget them",
                field="elder_id",
            )
    return NotFound.said("no_elder", field="elder_id", elder=elder_id)


def elder_record(db: Db, elder_id: int, scope: AreaScope, *, to: Action) -> dict[str, Any]:
    """One elder as staff see it, if the caller may ``to`` them (``data.policy.elder_sql``:
    reading is widened by an open alert, changes need the home area); otherwise the same 404
    as a missing elder, or a 403 to a caller who may read but not change."""
    # ``last_fix_received_at`` is kept by ingest on the zone state (migration 0023): a late
    # fix (up to the retention period old) is received after newer ones, so no time bound
    # finds the fix received last, and reading it from the positions read every day
    # partition. It outlives a purge of the fixes (a fact about the watch).
    row = (
        db.execute(
            text(
                f"""
                SELECT e.id, e.display_name, e.emergency_contact, h.code AS household_code,
                       g.code AS home_grid_code, d.device_code AS device_id,
                       d.datum::text AS datum, coalesce(d.active, false) AS device_active,
                       (SELECT max(o.last_heard_at) FROM device o WHERE o.elder_id = e.id)
                           AS last_heard_at,
                       d.last_battery, d.last_charging, d.not_stored,
                       d.last_refused_at, d.last_refused_reason,
                       (SELECT s.last_received_at FROM zone_state s WHERE s.elder_id = e.id)
                           AS last_fix_received_at,
                       (SELECT s.battery FROM zone_state s WHERE s.elder_id = e.id)
                           AS state_battery,
                       e.created_at,
                       EXISTS (SELECT 1 FROM consent c WHERE c.elder_id = e.id
                               AND c.withdrawn_at IS NULL) AS consent
                FROM elder e
                LEFT JOIN household h ON h.id = e.household_id
                LEFT JOIN grid g ON g.id = e.home_grid_id
                LEFT JOIN LATERAL (SELECT device_code, datum, active,
                                          last_battery, last_charging, not_stored,
                                          last_refused_at, last_refused_reason FROM device
                                   WHERE elder_id = e.id ORDER BY active DESC, id DESC
                                   LIMIT 1) d ON true
                WHERE e.id = :id AND {elder_sql(to)}
                """  # noqa: S608
            ),
            {"id": elder_id, **_scope_params(scope)},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _refusal(db, elder_id, scope, to)
    out = dict(row)
    status = {k: out.pop(k) for k in _DEVICE_STATUS}
    state_battery = out.pop("state_battery")  # the newest report's (0030); else a keep-alive's
    heard = [t for t in (status["last_heard_at"], status["last_fix_received_at"]) if t]
    out["reports"] = {
        "last_heard_at": max(heard).isoformat() if heard else None,
        "last_fix_received_at": _iso(status["last_fix_received_at"]),
        "battery": status["last_battery"] if state_battery is None else state_battery,
        "keepalive_battery": status["last_battery"],
        "keepalive_charging": status["last_charging"],
        "not_stored": status["not_stored"] or 0,
        "last_refused": None
        if status["last_refused_at"] is None
        else {"at": status["last_refused_at"].isoformat(), "reason": status["last_refused_reason"]},
    }
    return {**out, "created_at": row["created_at"].isoformat()}


_DEVICE_STATUS = (
    "last_heard_at",
    "last_battery",
    "last_charging",
    "not_stored",
    "last_refused_at",
    "last_refused_reason",
    "last_fix_received_at",
)


def _dicts(db: Db, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row the query answers, as a dict of its columns."""
    return [dict(r) for r in db.execute(text(sql), params).mappings()]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def list_elders(db: Db, scope: AreaScope, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Elders the caller may read (home area, or found there during an alert), no positions."""
    return _dicts(
        db,
        f"""
        SELECT e.id, e.display_name, g.code AS home_grid_code,
               EXISTS (SELECT 1 FROM consent c WHERE c.elder_id = e.id
                       AND c.withdrawn_at IS NULL) AS consent
        FROM elder e LEFT JOIN grid g ON g.id = e.home_grid_id
        WHERE {elder_sql(Action.locate_elders)}
        ORDER BY e.id LIMIT :limit OFFSET :offset
        """,  # noqa: S608
        {"limit": limit, "offset": offset, **_scope_params(scope)},
    )


# --------------------------------------------------------------------------- ingest


@dataclass(frozen=True)
class DeviceLink:
    """A device the presented key may report for, and whether its fixes may be kept."""

    id: int
    code: str
    elder_id: int
    datum: DeviceDatum


def devices_for_keys(db: Db, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DeviceLink]:
    """For (key name, device code) pairs, the devices the key is linked to; others are absent.

    An absent pair means "this key may not report for that device", whether or not the
    device exists, so an answer never tells a caller about another key's devices. Whether
    the device may still report and its wearer consents is read later, under the zone lock
    (:func:`reporting_status`).
    """
    unique = sorted(set(pairs))
    rows = db.execute(
        text(
            """
            SELECT k.name, d.id, d.device_code, d.elder_id, d.datum::text
            FROM unnest(CAST(:keys AS text[]), CAST(:codes AS text[])) AS p(key, code)
            JOIN api_key k ON k.name = p.key AND k.revoked_at IS NULL
            JOIN device d ON d.api_key_id = k.id AND d.device_code = p.code
            """
        ),
        {"keys": [k for k, _ in unique], "codes": [c for _, c in unique]},
    ).all()
    return {(r[0], r[2]): DeviceLink(r[1], r[2], r[3], DeviceDatum(r[4])) for r in rows}


@dataclass(frozen=True)
class PositionRow:
    """A fix ready to store: WGS-84 position and the raw coordinates the device sent."""

    device_id: int
    elder_id: int
    time: datetime
    lon: float
    lat: float
    raw_lon: float
    raw_lat: float
    accuracy_m: float | None
    speed_mps: float | None
    bearing: float | None
    altitude: float | None
    battery: float | None
    charging: bool | None
    alarm: str | None
    attributes: dict[str, str]
    valid: bool = True


@dataclass(frozen=True)
class StoredPosition:
    id: int
    device_id: int
    elder_id: int
    time: datetime
    grid_id: int | None
    x: float  # in the metric CRS
    y: float
    received_at: datetime  # the transaction's start: every fix of a batch has the same


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("device_id", "int"),
    ("elder_id", "int"),
    ("time", "timestamptz"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("raw_lon", "float8"),
    ("raw_lat", "float8"),
    ("accuracy_m", "float8"),
    ("speed_mps", "float8"),
    ("bearing", "float8"),
    ("altitude", "float8"),
    ("battery", "float8"),
    ("charging", "bool"),
    ("alarm", "text"),
    ("attributes", "jsonb"),
    ("valid", "bool"),
)


def insert_positions(db: Db, rows: Sequence[PositionRow], *, epsg: int) -> list[StoredPosition]:
    """Store fixes in one statement; a repeated (device, time) is dropped, not returned."""
    if not rows:
        return []
    params: dict[str, Any] = {}
    for name, _ in _COLUMNS:
        values = [getattr(r, name) for r in rows]
        params[name] = [json.dumps(v) for v in values] if name == "attributes" else values
    arrays = ", ".join(f"CAST(:{name} AS {sql}[])" for name, sql in _COLUMNS)
    names = ", ".join(name for name, _ in _COLUMNS)
    point = "ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)"
    result = db.execute(
        text(
            f"""
            INSERT INTO position (device_id, elder_id, time, geom, raw_lon, raw_lat, grid_id,
                accuracy_m, speed_mps, bearing, altitude, battery, charging, alarm, attributes,
                valid)
            SELECT v.device_id, v.elder_id, v.time, {point}, v.raw_lon, v.raw_lat,
                {grid_at(point)}, v.accuracy_m, v.speed_mps, v.bearing, v.altitude, v.battery,
                v.charging, v.alarm, v.attributes, v.valid
            FROM unnest({arrays}) AS v({names})
            ON CONFLICT (device_id, time) DO NOTHING
            RETURNING id, device_id, elder_id, time, grid_id,
                ST_X(ST_Transform(geom, :epsg)), ST_Y(ST_Transform(geom, :epsg)), received_at
            """  # noqa: S608
        ),
        {**params, "epsg": epsg},
    ).all()
    return [StoredPosition(*r) for r in result]


@dataclass(frozen=True)
class ZoneContext:
    """What evaluating one elder's fixes needs, read with the state row locked."""

    elder_id: int
    home_grid_id: int | None
    zone: SafeZone
    state: ZoneState


_ZONES: dict[tuple[str, int, datetime, int], SafeZone] = {}
"""Safe zones in metres by (database, elder, zone's ``updated_at``, EPSG): every write of a
zone sets ``updated_at`` (:func:`save_zone`), so a changed zone is simply a new key.
Transforming a buffered grid polygon for every batch of fixes cost PostgreSQL more than
storing them. The database is part of the key: one process may serve several (tests do)."""


def _database(db: Db) -> str:
    bind = db.get_bind() if isinstance(db, Session) else db
    return bind.engine.url.render_as_string(hide_password=True)


_ZONES_MAX = 50_000


def _zone_contexts(db: Db, where: str, params: dict[str, Any], *, lock: str) -> list[ZoneContext]:
    rows = db.execute(
        text(
            f"""
            SELECT s.elder_id, e.home_grid_id, s.outside, s.last_fix_time, s.last_x, s.last_y,
                   s.low_battery, s.no_fix, s.alarm, z.kind::text, z.updated_at,
                   ST_X(ST_Transform(z.centre, :epsg)), ST_Y(ST_Transform(z.centre, :epsg)),
                   z.radius_m, s.battery
            FROM zone_state s JOIN elder e ON e.id = s.elder_id
            JOIN safe_zone z ON z.elder_id = s.elder_id
            WHERE {where} ORDER BY s.elder_id {lock}
            """  # noqa: S608
        ),
        params,
    ).all()
    epsg = int(params["epsg"])
    database = _database(db)
    missing = [
        r[0]
        for r in rows
        if r[9] != ZoneKind.circle.value and (database, r[0], r[10], epsg) not in _ZONES
    ]
    fetched = (
        _load_zones(db, "elder_id = ANY(:ids)", {"ids": missing}, epsg=epsg) if missing else {}
    )
    out = []
    for r in rows:
        if r[9] == ZoneKind.circle.value:
            zone = SafeZone.circle(float(r[11]), float(r[12]), float(r[13]))
        else:  # fetched: the zone changed between the two reads; use the newer one
            zone = _ZONES.get((database, r[0], r[10], epsg)) or fetched[r[0]]
        last = None if r[4] is None else (float(r[4]), float(r[5]))
        state = ZoneState(
            outside=r[2],
            last_fix_time=r[3],
            last_position=last,
            low_battery=r[6],
            no_fix=r[7],
            alarm=r[8],
            battery=r[14],
        )
        out.append(ZoneContext(r[0], r[1], zone, state))
    return out


def _load_zones(db: Db, where: str, params: dict[str, Any], *, epsg: int) -> dict[int, SafeZone]:
    """Polygon zones in metres, read and remembered in ``_ZONES``; by elder. ``where`` is
    one of this module's fixed conditions."""
    sql = f"SELECT elder_id, updated_at, ST_AsBinary(ST_Transform(geom, :epsg)) FROM safe_zone WHERE {where}"  # noqa: S608, E501
    polygons = db.execute(text(sql), {**params, "epsg": epsg}).all()
    database = _database(db)
    if len(_ZONES) + len(polygons) > _ZONES_MAX:
        _ZONES.clear()
    fetched = {}
    for elder_id, updated_at, wkb in polygons:
        polygon = shapely.from_wkb(bytes(wkb))
        if not isinstance(polygon, Polygon | MultiPolygon):
            raise InvalidGeometry(f"elder {elder_id}: the stored zone is not a polygon")
        zone = SafeZone(geometry=polygon)
        fetched[elder_id] = _ZONES[(database, elder_id, updated_at, epsg)] = zone
    return fetched


def warm_zones(db: Db, *, epsg: int) -> int:
    """Read every consenting elder's polygon zone in metres once, at start-up: otherwise the
    first report of each elder after a deploy pays for transforming it."""
    return len(
        _load_zones(
            db,
            "kind <> 'circle' AND EXISTS (SELECT 1 FROM consent c WHERE c.elder_id = "
            "safe_zone.elder_id AND c.withdrawn_at IS NULL) ORDER BY elder_id LIMIT :n",
            {"n": _ZONES_MAX // 2},
            epsg=epsg,
        )
    )


def lock_zones(db: Db, elder_ids: Sequence[int], *, epsg: int) -> dict[int, ZoneContext]:
    """Zones and states of these elders, rows locked so concurrent fixes queue per elder."""
    contexts = _zone_contexts(
        db,
        "s.elder_id = ANY(:ids)",
        {"ids": sorted(set(elder_ids)), "epsg": epsg},
        lock="FOR UPDATE OF s",
    )
    return {c.elder_id: c for c in contexts}


def silent_zones(db: Db, *, cutoff: datetime, epsg: int, limit: int = 500) -> list[ZoneContext]:
    """Consenting elders silent since before ``cutoff`` and not yet flagged; others skip them."""
    return _zone_contexts(
        db,
        "NOT s.no_fix AND s.last_fix_time < :cutoff AND EXISTS (SELECT 1 FROM consent c "
        "WHERE c.elder_id = s.elder_id AND c.withdrawn_at IS NULL)",
        {"cutoff": cutoff, "epsg": epsg, "limit": limit},
        lock="LIMIT :limit FOR UPDATE OF s SKIP LOCKED",
    )


def save_zone_state(db: Db, elder_id: int, state: ZoneState) -> None:
    save_zone_states(db, {elder_id: state})


def save_zone_states(
    db: Db, states: Mapping[int, ZoneState], *, received: Mapping[int, datetime] | None = None
) -> None:
    """Write the states of several elders in one statement; ``received``: per elder (each
    also in ``states``), when the fixes just stored for them were received.

    ``zone_state.last_received_at`` (migration 0023) becomes the greatest of its value and
    that receipt: "last heard" is then read from this row instead of every day partition
    (a late fix lands in an old day, yet is the one received last). ``greatest`` because a
    batch that began earlier may commit later. Written here, not by a statement of its own
    (ingest holds the row's lock already): the row gets one new version per batch, not two."""
    if not states:
        return
    ids = sorted(states)
    rows = [states[i] for i in ids]
    heard = received or {}
    db.execute(
        text(
            """
            UPDATE zone_state s SET outside = v.o, last_fix_time = v.t, last_x = v.x,
                last_y = v.y, low_battery = v.b, no_fix = v.n, alarm = v.a, battery = v.p,
                last_received_at = greatest(s.last_received_at, v.r)
            FROM unnest(CAST(:e AS int[]), CAST(:o AS bool[]), CAST(:t AS timestamptz[]),
                        CAST(:x AS float8[]), CAST(:y AS float8[]), CAST(:b AS bool[]),
                        CAST(:n AS bool[]), CAST(:a AS text[]), CAST(:r AS timestamptz[]),
                        CAST(:p AS float8[]))
                 AS v(e, o, t, x, y, b, n, a, r, p)
            WHERE s.elder_id = v.e
            """
        ),
        {
            "e": ids,
            "r": [heard.get(i) for i in ids],
            "o": [r.outside for r in rows],
            "t": [r.last_fix_time for r in rows],
            "x": [None if r.last_position is None else r.last_position[0] for r in rows],
            "y": [None if r.last_position is None else r.last_position[1] for r in rows],
            "b": [r.low_battery for r in rows],
            "p": [r.battery for r in rows],
            "n": [r.no_fix for r in rows],
            "a": [r.alarm for r in rows],
        },
    )


@dataclass(frozen=True)
class PositionRef:
    """A stored fix as an alert names it: its key (id and time) and the grid it lay in."""

    id: int
    time: datetime
    grid_id: int | None


def last_position_ref(db: Db, elder_id: int) -> PositionRef | None:
    """The newest fix of an elder, for alerts raised without a fix (no_fix)."""
    for bound in (f"AND time >= {_SINCE}", ""):
        row = db.execute(
            text(
                f"SELECT id, time, grid_id FROM position WHERE elder_id = :e {bound} "  # noqa: S608
                "ORDER BY time DESC, id DESC LIMIT 1"
            ),
            {"e": elder_id},
        ).first()
        if row is not None:
            return PositionRef(int(row[0]), row[1], row[2])
    return None


_SINCE = "(SELECT z.last_fix_time FROM zone_state z WHERE z.elder_id = :e)"
"""Where an elder's newest fix is looked for first: ``position`` is partitioned by day
(migration 0019) and a newest-fix read has no time bound of its own, so it looked into every
day's index; from this time on, PostgreSQL reads the newest days only (run-time pruning).

Any bound keeps the answer, provided the read looks among all days when it finds nothing
from the bound on: if some fix lies at or after it, every fix before it is older than that
one. ``zone_state.last_fix_time`` is the time of the newest valid fix ingest evaluated (a
late fix leaves it alone, an invalid one too), so the newest fix, valid or not, lies at or
after it unless fixes were deleted since (then all days answer). Read in the statement, not
passed as a bind: a bound the planner could prune with makes it plan the statement anew at
every call (its generic plan looks dearer), which costs more than the partitions."""


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class NewAlert:
    elder_id: int
    kind: str
    event_time: datetime
    position_id: int | None
    grid_id: int | None  # where the elder is
    home_grid_id: int | None
    detail: str | None
    position_time: datetime | None = None  # with position_id: the fix's key (migration 0019)


def insert_alerts(db: Db, alerts: Sequence[NewAlert]) -> list[int]:
    """Alerts, each routed to the workers of the grid the elder is in and of the home grid;
    their ids, in order. One statement for all (a hundred elders stepping out together
    cost two hundred statements in one batch of fixes)."""
    if not alerts:
        return []
    rows = db.execute(
        text(
            """
            WITH v AS (
                SELECT nextval(pg_get_serial_sequence('alert', 'id')) AS id, u.*
                FROM unnest(CAST(:e AS int[]), CAST(:k AS alert_kind[]),
                            CAST(:t AS timestamptz[]), CAST(:p AS bigint[]), CAST(:g AS int[]),
                            CAST(:h AS int[]), CAST(:d AS text[]), CAST(:pt AS timestamptz[]))
                     WITH ORDINALITY AS u(elder_id, kind, event_time, position_id, grid_id,
                                          home_grid_id, detail, position_time, ord)
            ), alerts AS (
                INSERT INTO alert (id, elder_id, kind, status, event_time, position_id,
                                   position_time, grid_id, home_grid_id, detail)
                SELECT id, elder_id, kind, 'open', event_time, position_id, position_time,
                       grid_id, home_grid_id, detail FROM v
            ), recipients AS (
                INSERT INTO alert_recipient (alert_id, worker_id, reason)
                SELECT v.id, g.worker_id, r.reason
                FROM v CROSS JOIN LATERAL (VALUES ('current_grid', v.grid_id),
                                                  ('home_grid', v.home_grid_id))
                     AS r(reason, grid_id)
                JOIN grid g ON g.id = r.grid_id WHERE g.worker_id IS NOT NULL
                ON CONFLICT DO NOTHING
            )
            SELECT id FROM v ORDER BY ord
            """
        ),
        {
            "e": [a.elder_id for a in alerts],
            "k": [a.kind for a in alerts],
            "t": [a.event_time for a in alerts],
            "p": [a.position_id for a in alerts],
            "g": [a.grid_id for a in alerts],
            "h": [a.home_grid_id for a in alerts],
            "d": [a.detail[:200] if a.detail else None for a in alerts],
            "pt": [a.position_time for a in alerts],
        },
    ).all()
    notify_alerts(db)  # the open inboxes look at once, at commit
    return [int(r[0]) for r in rows]


_ALERT_SELECT = f"""
    SELECT a.id, a.kind::text AS kind, a.status::text AS status, a.event_time, a.raised_at,
           a.detail, a.elder_id, e.display_name AS elder_name, g.code AS grid_code,
           hg.code AS home_grid_code, a.acknowledged_at, a.acknowledged_by, a.closed_at,
           a.closed_by, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, p.time AS fix_time,
           coalesce((SELECT json_agg(json_build_object('worker_code', w.code,
                        'name', w.display_name, 'phone', w.phone, 'reason', r.reason)
                        ORDER BY r.reason, w.code)
                     FROM alert_recipient r JOIN worker w ON w.id = r.worker_id
                     WHERE r.alert_id = a.id), '[]'::json) AS recipients
    FROM alert a JOIN elder e ON e.id = a.elder_id
    LEFT JOIN grid g ON g.id = a.grid_id LEFT JOIN grid hg ON hg.id = a.home_grid_id
    LEFT JOIN position p ON p.id = a.position_id AND p.time = a.position_time
    WHERE {ALERT_SQL}
"""  # noqa: S608 - a constant predicate (data.policy)


def _alert_out(row: Any, *, with_position: bool) -> dict[str, Any]:
    out = dict(row)
    for key in ("event_time", "raised_at", "acknowledged_at", "closed_at", "fix_time"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    recipients = out["recipients"]
    out["recipients"] = json.loads(recipients) if isinstance(recipients, str) else recipients
    if not with_position:
        for key in ("lon", "lat", "fix_time"):
            out.pop(key)
    return out


def list_alerts(
    db: Db,
    scope: AreaScope,
    *,
    status: AlertStatus | None,
    limit: int,
    offset: int,
    with_position: bool,
) -> list[dict[str, Any]]:
    rows = (
        db.execute(
            text(
                _ALERT_SELECT + " AND (CAST(:status AS text) IS NULL OR a.status::text = :status)"
                " ORDER BY a.raised_at DESC, a.id DESC LIMIT :limit OFFSET :offset"
            ),
            {
                "status": None if status is None else status.value,
                "limit": limit,
                "offset": offset,
                **_scope_params(scope),
            },
        )
        .mappings()
        .all()
    )
    return [_alert_out(r, with_position=with_position) for r in rows]


def alert_record(
    db: Db, alert_id: int, scope: AreaScope, *, with_position: bool = False
) -> dict[str, Any]:
    row = (
        db.execute(
            text(_ALERT_SELECT + " AND a.id = :id"), {"id": alert_id, **_scope_params(scope)}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound.said("no_alert", field="alert_id", alert=alert_id)
    return _alert_out(row, with_position=with_position)


_NEXT = {
    AlertStatus.acknowledged: (("open",), "acknowledged_at = now(), acknowledged_by = :by"),
    AlertStatus.closed: (("open", "acknowledged"), "closed_at = now(), closed_by = :by"),
}


def set_alert_status(
    db: Db, alert_id: int, scope: AreaScope, *, to: AlertStatus, by: str
) -> dict[str, Any]:
    """Acknowledge (open → acknowledged) or close (open/acknowledged → closed) an alert."""
    current = alert_record(db, alert_id, scope)
    allowed, assignment = _NEXT[to]
    if current["status"] not in allowed:
        raise Conflict(
            f"alert {alert_id} is {current['status']}; it cannot become {to.value}",
            field="status",
        )
    db.execute(
        text(
            f"UPDATE alert SET status = CAST(:to AS alert_status), {assignment} "  # noqa: S608
            "WHERE id = :id"
        ),
        {"id": alert_id, "to": to.value, "by": by},
    )
    notify_alerts(db)  # the open inboxes show it on the card, at commit
    return alert_record(db, alert_id, scope)


#: Who closed an alert that closed by itself (``closed_by``), not a member of staff.
SYSTEM_CLOSER = SYSTEM_ACTOR


#: The alerts that say where an elder is against the safe zone: each supersedes the ones
#: before it (``data.care.service.raise_alerts``).
ZONE_KINDS = ("left_zone", "returned")


def close_by_itself(
    db: Db, closing: Sequence[tuple[int, str, datetime]], *, keep: Sequence[int] = ()
) -> list[int]:
    """For each ``(elder, kind, time)``, close the elder's alerts of that kind still open or
    acknowledged and raised at or before ``time`` (but none of ``keep``): what they said is
    over. ``closed_by`` is :data:`SYSTEM_CLOSER`. The ids closed."""
    if not closing:
        return []
    closed = list(
        db.execute(
            text(
                """
                UPDATE alert a SET status = 'closed', closed_at = now(), closed_by = :by
                FROM unnest(CAST(:e AS int[]), CAST(:k AS text[]), CAST(:t AS timestamptz[]))
                     AS v(elder_id, kind, t)
                WHERE a.elder_id = v.elder_id AND a.kind::text = v.kind
                  AND a.status <> 'closed' AND a.event_time <= v.t
                  AND a.id <> ALL(CAST(:keep AS bigint[]))
                RETURNING a.id
                """
            ),
            {
                "e": [e for e, _, _ in closing],
                "k": [k for _, k, _ in closing],
                "t": [t for _, _, t in closing],
                "keep": list(keep),
                "by": SYSTEM_CLOSER,
            },
        ).scalars()
    )
    if closed:
        notify_alerts(db)  # the open inboxes show them closed, at commit
    return closed


# --------------------------------------------------------------------------- webhook outbox


def queue_webhook(db: Db, alert_id: int, url: str, event: str = "raised") -> None:
    """Put an alert in the outbox; the payload is what a dispatcher needs, nothing more.
    ``event``: ``raised``, or ``acknowledged`` / ``closed`` when its status changed (by staff,
    or by itself: ``by_itself``), so that a dispatcher's copy never stays open."""
    alert = alert_record(db, alert_id, AreaScope.everywhere(), with_position=True)
    payload = {
        "event": event,
        "status": alert["status"],
        "by_itself": alert["closed_by"] == SYSTEM_CLOSER,
    } | {
        k: alert[k]
        for k in (
            "id",
            "kind",
            "event_time",
            "elder_id",
            "grid_code",
            "home_grid_code",
            "detail",
            "lon",
            "lat",
            "recipients",
        )
    }
    db.execute(
        text(
            "INSERT INTO webhook_outbox (alert_id, url, payload) VALUES (:a, :u, CAST(:p AS jsonb))"
        ),
        {"a": alert_id, "u": url, "p": json.dumps(payload)},
    )


# --------------------------------------------------------------------------- reads


def last_fix(db: Db, elder_id: int) -> dict[str, Any] | None:
    """The newest fix by fix time (a late fix never hides it) with its grid, community,
    street; a fix the device marked invalid only when there is no valid one. Looked for
    from :data:`_SINCE` on first, then among all days."""
    bounded = f"""SELECT id, time FROM position WHERE elder_id = :e AND valid
                  AND time >= {_SINCE} ORDER BY time DESC, id DESC LIMIT 1"""  # noqa: S608
    unbounded = """SELECT id, time FROM (
                       (SELECT id, time, 0 AS rank FROM position WHERE elder_id = :e AND valid
                        ORDER BY time DESC, id DESC LIMIT 1)
                       UNION ALL
                       (SELECT id, time, 1 AS rank FROM position WHERE elder_id = :e
                        ORDER BY time DESC, id DESC LIMIT 1)
                   ) AS candidates ORDER BY rank LIMIT 1"""
    for newest in (bounded, unbounded):
        row = (
            db.execute(
                text(
                    f"""
                    WITH newest AS ({newest})
                    SELECT p.id, p.time, p.received_at, ST_X(p.geom) AS lon,
                           ST_Y(p.geom) AS lat, p.raw_lon, p.raw_lat, p.accuracy_m, p.battery,
                           p.speed_mps, p.valid, d.datum::text AS datum,
                           extract(epoch FROM now() - p.time) AS age_s,
                           g.id AS grid_id, g.code AS grid_code, c.code AS community_code,
                           c.name AS community_name, s.code AS street_code,
                           s.name AS street_name, w.code AS worker_code,
                           w.display_name AS worker_name, w.phone AS worker_phone
                    FROM newest n JOIN position p ON p.id = n.id AND p.time = n.time
                    JOIN device d ON d.id = p.device_id
                    LEFT JOIN grid g ON g.id = {grid_at("p.geom")}
                    LEFT JOIN community c ON c.id = g.community_id
                    LEFT JOIN street s ON s.id = c.street_id
                    LEFT JOIN worker w ON w.id = g.worker_id
                    """  # noqa: S608
                ),
                {"e": elder_id},
            )
            .mappings()
            .first()
        )
        if row is not None:
            return dict(row)
    return None


def nearest_facilities(
    db: Db, lon: float, lat: float, *, count: int, within_m: float
) -> list[dict[str, Any]]:
    """The ``count`` nearest facilities by straight-line (geodesic) distance, none farther
    than ``within_m``."""
    return _dicts(
        db,
        """
        WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
        near AS (SELECT f.id, f.source_id, f.kind, f.name, f.geom FROM facility f, pt
                 ORDER BY f.geom <-> pt.g LIMIT :wide)
        SELECT n.id, n.source_id, n.kind, n.name, ST_X(n.geom) AS lon,
               ST_Y(n.geom) AS lat,
               ST_Distance(n.geom::geography, pt.g::geography) AS straight_line_m
        FROM near n, pt
        WHERE ST_DWithin(n.geom::geography, pt.g::geography, :within)
        ORDER BY straight_line_m, n.id LIMIT :count
        """,
        # Degrees are not square away from the equator: rank a wider set by metres.
        {"lon": lon, "lat": lat, "count": count, "wide": count * 4, "within": within_m},
    )


def trail(db: Db, elder_id: int, *, since: datetime, limit: int) -> list[dict[str, Any]]:
    return _dicts(
        db,
        """
        SELECT p.time, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, p.accuracy_m,
               p.battery, p.speed_mps, g.code AS grid_code
        FROM position p LEFT JOIN grid g ON g.id = p.grid_id
        WHERE p.elder_id = :e AND p.time >= :since
        ORDER BY p.time, p.id LIMIT :limit
        """,
        {"e": elder_id, "since": since, "limit": limit},
    )


def zone_and_home(db: Db, elder_id: int) -> dict[str, Any]:
    """The safe zone (GeoJSON, WGS-84) and the home household point of one elder, and
    whether the zone still holds the home (``home_outside``: the household was moved since
    the zone was drawn, and every fix at the new home would be an exit)."""
    row = (
        db.execute(
            text(
                """
                SELECT z.kind::text AS kind, z.buffer_m, z.radius_m,
                       ST_AsGeoJSON(z.geom, 7) AS zone, ST_X(h.geom) AS home_lon,
                       ST_Y(h.geom) AS home_lat,
                       coalesce(NOT ST_Covers(z.geom, h.geom), false) AS home_outside
                FROM elder e LEFT JOIN safe_zone z ON z.elder_id = e.id
                LEFT JOIN household h ON h.id = e.household_id WHERE e.id = :e
                """
            ),
            {"e": elder_id},
        )
        .mappings()
        .one()
    )
    out = dict(row)
    out["zone"] = json.loads(out["zone"]) if out["zone"] else None
    return out


# --------------------------------------------------------------------------- retention


def make_position_partitions(db: Db, *, first_day: date, last_day: date) -> int | None:
    """The partitions of ``position`` for these UTC days and for every day that has rows in
    the default partition (moved into theirs); how many were made, or None when a reader held
    the table too long (nothing is lost: the fixes wait in the default partition). Migration
    0019's function: the app's role may not create tables itself."""
    return _if_locked(
        db,
        "SELECT make_position_partitions(:first, :last)",
        {"first": first_day, "last": last_day},
    )


def drop_position_partitions(db: Db, *, before: datetime) -> int | None:
    """Drop the day partitions of ``position`` that end at or before ``before``; how many
    fixes went, or None when the table's lock was not had within 2 s (the DELETE of
    :func:`purge_positions` then takes those days). Alerts keep no reference into them."""
    return _if_locked(db, "SELECT drop_position_partitions(:before)", {"before": before})


def _if_locked(db: Db, sql: str, params: dict[str, Any]) -> int | None:
    try:
        with db.begin_nested():
            return int(db.execute(text(sql), params).scalar_one())
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            return None
        raise


def position_partitions(db: Db) -> list[str]:
    """The partitions of ``position``, oldest first, the default one last."""
    return list(
        db.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'position'::regclass "
                "ORDER BY c.relname = 'position_default', c.relname"
            )
        ).scalars()
    )


def purge_positions(db: Db, *, before: datetime) -> int:
    """Delete fixes older than ``before`` (by fix time), and webhook payloads that carry them.
    Partition pruning keeps the DELETE to the day straddling ``before`` and to the default
    partition once :func:`drop_position_partitions` has taken the whole days."""
    result = db.execute(text("DELETE FROM position WHERE time < :before"), {"before": before})
    webhooks.purge(db, before=before)  # alerts' and cases' deliveries alike
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- console reads
# (the care staff's pages, api/routers/care_pages.py)


def elders_at_a_glance(
    db: Db, scope: AreaScope, *, search: str | None, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """Elders the caller may read, with their state (no positions): when their device was
    last heard from, the newest fix's time, the battery of the newest report that gave one
    (the zone state's, as the elder's page shows it), inside or outside the safe zone, open
    alerts. ``search`` matches the name (case-insensitive, anywhere in it).

    "Last heard" is the record's (:func:`elder_record`): the latest of any of the elder's
    devices' keep-alives and refusals and the last receipt of a fix (the zone state's, so a
    late fix counts, and no day partition is read for it)."""
    return _dicts(
        db,
        f"""
        SELECT e.id, e.display_name, g.code AS home_grid_code,
               EXISTS (SELECT 1 FROM consent c WHERE c.elder_id = e.id
                       AND c.withdrawn_at IS NULL) AS consent,
               s.outside, s.no_fix,
               greatest(d.heard, s.last_received_at) AS last_heard_at,
               coalesce(near.time, far.time) AS last_fix_time,
               coalesce(s.battery, d.battery) AS battery,
               (SELECT count(*) FROM alert a WHERE a.elder_id = e.id
                AND a.status <> 'closed') AS open_alerts,
               EXISTS (SELECT 1 FROM safe_zone z WHERE z.elder_id = e.id) AS has_zone
        FROM elder e LEFT JOIN grid g ON g.id = e.home_grid_id
        LEFT JOIN zone_state s ON s.elder_id = e.id
        LEFT JOIN LATERAL (SELECT max(last_heard_at) AS heard,
                                  (array_agg(last_battery ORDER BY last_heard_at
                                             DESC NULLS LAST))[1] AS battery
                           FROM device WHERE elder_id = e.id) d ON true
        LEFT JOIN LATERAL (SELECT time FROM position
                           WHERE elder_id = e.id AND time >= s.last_fix_time
                           ORDER BY time DESC, id DESC LIMIT 1) near ON true
        LEFT JOIN LATERAL (SELECT time FROM position
                           WHERE elder_id = e.id AND near.time IS NULL
                           ORDER BY time DESC, id DESC LIMIT 1) far ON true
        WHERE {elder_sql(Action.locate_elders)}
          AND (CAST(:search AS text) IS NULL
               OR e.display_name ILIKE '%' || CAST(:search AS text) || '%')
        ORDER BY open_alerts DESC, e.display_name, e.id LIMIT :limit OFFSET :offset
        """,  # noqa: S608
        {"search": search or None, "limit": limit, "offset": offset, **_scope_params(scope)},
    )


def consents_of(db: Db, elder_id: int) -> list[dict[str, Any]]:
    """The consent records of one elder, newest first (withdrawn ones too)."""
    return _dicts(
        db,
        "SELECT id, given_by, given_on, scope, recorded_by, recorded_at, withdrawn_at, "
        "withdrawn_by FROM consent WHERE elder_id = :e ORDER BY recorded_at DESC, id DESC",
        {"e": elder_id},
    )


def alerts_of_elder(db: Db, elder_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """One elder's alerts, newest first, without positions (the caller may read the elder)."""
    rows = (
        db.execute(
            text(
                _ALERT_SELECT
                + " AND a.elder_id = :e ORDER BY a.raised_at DESC, a.id DESC LIMIT :limit"
            ),
            {"e": elder_id, "limit": limit, **_scope_params(AreaScope.everywhere())},
        )
        .mappings()
        .all()
    )
    return [_alert_out(r, with_position=False) for r in rows]


def alerts_after(
    db: Db,
    scope: AreaScope,
    *,
    after_id: int,
    recent_s: float | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Alerts of the caller's area newer than ``after_id`` (oldest first), without positions:
    what a live inbox has not shown yet. With ``recent_s``, also those with a lower id raised
    in the last ``recent_s`` seconds: ids are taken before their transaction commits, so one
    committed out of order may have an id below the newest the page saw (it skips repeats)."""
    rows = (
        db.execute(
            text(
                _ALERT_SELECT + " AND (a.id > :after OR (CAST(:recent AS float8) IS NOT NULL"
                " AND a.id > :after - :window"
                " AND a.raised_at >= clock_timestamp() - make_interval(secs => :recent)))"
                " ORDER BY a.id LIMIT :limit"
            ),
            {
                "after": after_id,
                "recent": recent_s,
                "window": RECENT_IDS,
                "limit": limit,
                **_scope_params(scope),
            },
        )
        .mappings()
        .all()
    )
    return [_alert_out(r, with_position=False) for r in rows]


#: How far below a known id :func:`alerts_after` and :func:`alert_ids_since` look for alerts
#: committed late (bounds the index range they scan; far more alerts than a district raises
#: in the half minute a late commit may take).
RECENT_IDS = 5000


def alert_ids_since(
    db: Db, *, high: int, recent_s: float
) -> list[tuple[int, int | None, int | None]]:
    """``(id, grid_id, home_grid_id)`` of every alert above ``high``, and of those below it
    raised in the last ``recent_s`` seconds (a late commit): the live inboxes' one cheap look
    per wake, across all areas, before reading the rows of the ones not seen yet."""
    rows = db.execute(
        text(
            "SELECT id, grid_id, home_grid_id FROM alert WHERE id > :floor AND (id > :high "
            "OR raised_at >= clock_timestamp() - make_interval(secs => :recent)) ORDER BY id"
        ),
        {"floor": high - RECENT_IDS, "high": high, "recent": recent_s},
    ).all()
    return [(int(r[0]), r[1], r[2]) for r in rows]


#: The alerts acknowledged or closed lately, through ``ix_alert_acknowledged_at`` and
#: ``ix_alert_closed_at`` (migration 0034). The cut-off is from ``now()``, the look's
#: transaction start, which the planner knows: against ``clock_timestamp()`` (volatile, or
#: read once by a subquery, unknown when planning) it chose to read every alert by id.
ALERT_CHANGES_SQL = (
    "SELECT id, status::text, grid_id, home_grid_id FROM alert "
    "WHERE acknowledged_at >= now() - make_interval(secs => :recent) "
    "OR closed_at >= now() - make_interval(secs => :recent) ORDER BY id"
)


def alert_changes_since(
    db: Db, *, recent_s: float
) -> list[tuple[int, str, int | None, int | None]]:
    """``(id, status, grid_id, home_grid_id)`` of every alert acknowledged or closed in the
    last ``recent_s`` seconds, by anyone or by itself: what the live inboxes show on cards
    they already hold. A change's time is its transaction's start, so the window also covers
    one committed late (the inboxes skip changes they have handed out)."""
    rows = db.execute(text(ALERT_CHANGES_SQL), {"recent": recent_s}).all()
    return [(int(r[0]), str(r[1]), r[2], r[3]) for r in rows]


def alerts_by_id(db: Db, ids: Sequence[int]) -> list[dict[str, Any]]:
    """These alerts (any area: the caller filters each reader's by ``data.policy.sees_alert``),
    oldest first, without positions."""
    rows = (
        db.execute(
            text(_ALERT_SELECT + " AND a.id = ANY(CAST(:ids AS bigint[])) ORDER BY a.id"),
            {"ids": list(ids), **_scope_params(AreaScope.everywhere())},
        )
        .mappings()
        .all()
    )
    return [_alert_out(r, with_position=False) for r in rows]


def newest_alert_id(db: Db) -> int:
    return int(db.execute(text("SELECT coalesce(max(id), 0) FROM alert")).scalar_one())


def search_households(
    db: Db, scope: AreaScope, query: str, *, limit: int = 20
) -> list[dict[str, Any]]:
    """Households of the caller's area whose code or building's id contains ``query``, or
    that lie within about 60 m of a road whose name contains it (an address, as people say it);
    with their grid and the nearest road's name. No resident data."""
    return _dicts(
        db,
        f"""
        WITH hit AS (
            SELECT h.id FROM household h LEFT JOIN building b ON b.id = h.building_id
            WHERE h.code ILIKE '%' || :q || '%' OR b.source_id ILIKE '%' || :q || '%'
            UNION
            -- about 60 m (0.0008°), on the spatial index
            SELECT h.id FROM road_segment r JOIN household h
                 ON ST_DWithin(h.geom, r.geom, 0.0008)
            WHERE r.name ILIKE '%' || :q || '%'
        )
        SELECT h.id, h.code, h.size, h.lives_alone, g.code AS grid_code,
               b.source_id AS building,
               (SELECT r.name FROM road_segment r WHERE r.name IS NOT NULL
                ORDER BY r.geom <-> h.geom LIMIT 1) AS road
        FROM hit JOIN household h ON h.id = hit.id
        JOIN grid g ON g.id = coalesce(
            (SELECT id FROM grid WHERE id = h.grid_id AND valid_to IS NULL),
            {grid_at("h.geom")})
        LEFT JOIN building b ON b.id = h.building_id
        WHERE (:unrestricted OR g.id = ANY(CAST(:grid_ids AS int[])))
        ORDER BY h.code LIMIT :limit
        """,  # noqa: S608
        {"q": query, "limit": limit, **_scope_params(scope)},
    )


def console_counts(db: Db, scope: AreaScope) -> dict[str, int]:
    """For a home page: the elders the caller may read, and the alerts of their area not yet
    closed (open, and acknowledged)."""
    params = _scope_params(scope)
    elders = db.execute(
        text(f"SELECT count(*) FROM elder e WHERE {elder_sql(Action.locate_elders)}"),  # noqa: S608
        params,
    ).scalar_one()
    alerts = db.execute(
        text(
            "SELECT count(*) FILTER (WHERE a.status = 'open'), count(*) FROM alert a "
            "WHERE a.status <> 'closed' AND (:unrestricted "
            "OR a.grid_id = ANY(CAST(:grid_ids AS int[])) "
            "OR a.home_grid_id = ANY(CAST(:grid_ids AS int[])))"
        ),
        params,
    ).one()
    return {"elders": int(elders), "open_alerts": int(alerts[0]), "unclosed_alerts": int(alerts[1])}
