"""Households, facilities and incidents one row at a time, each with its assignment.

Area scope is applied in every statement: a scoped caller sees the rows whose stored grid is
one of the grids of their area (``AreaScope.grid_ids``); rows outside every grid are visible
only to unrestricted callers. A row out of scope is reported exactly like a missing one:
reading, changing, deleting, creating (a key taken elsewhere) and uploading (a row whose key
is stored elsewhere) all answer :func:`not_in_area`, so no route tells a key outside the
caller's area from one that does not exist. Households of a grid worker are further limited
to the grids they work (:func:`household_scope`, the rule of ``data.policy``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text

from data.access.queries import AreaScope
from data.assignment.service import Db
from data.models import Role
from data.policy import ASSIGNED_ROW_SQL, WORKED_GRIDS_ROLES, WORKED_GRIDS_SQL
from data.sql import Filters
from geo.assignment.keys import key_problem
from geo.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True)
class PointKind:
    """How one point resource is stored: its table, its key and the columns it exposes."""

    name: str
    table: str
    key: str
    fields: dict[str, str]  # output name -> SQL expression over ``t``
    writable: dict[str, str]  # input name -> SQL value expression over the bound ``:name``
    required: frozenset[str] = frozenset()  # writable fields that may not be set to null
    inserted: tuple[tuple[str, str], ...] = ()  # (column, SQL) set on insert only


KINDS: dict[str, PointKind] = {
    "households": PointKind(
        name="households",
        table="household",
        key="code",
        fields={
            "code": "t.code",
            "size": "t.size",
            "lives_alone": "t.lives_alone",
            "age_band": "t.age_band::text",
            "building": "b.source_id",
            "estimated": "t.estimated",
        },
        writable={
            "size": ":size",
            "lives_alone": ":lives_alone",
            "age_band": "CAST(:age_band AS age_band)",
            "building_id": "(SELECT id FROM building WHERE source_id = :building)",
        },
        required=frozenset({"size", "lives_alone"}),
        inserted=(("estimated", "false"),),
    ),
    "facilities": PointKind(
        name="facilities",
        table="facility",
        key="source_id",
        fields={
            "source_id": "t.source_id",
            "kind": "t.kind",
            "name": "t.name",
            "capacity": "t.capacity",
        },
        writable={"kind": ":kind", "name": ":name", "capacity": ":capacity"},
        required=frozenset({"kind"}),
    ),
    "incidents": PointKind(
        name="incidents",
        table="incident",
        key="source_id",
        fields={
            "source_id": "t.source_id",
            "category": "t.category",
            "status": "t.status::text",
            "summary": "t.summary",
            "reported_at": "t.reported_at",
            "closed_at": "t.closed_at",
        },
        writable={
            "category": ":category",
            "status": "CAST(:status AS incident_status)",
            "summary": ":summary",
            "reported_at": "coalesce(CAST(:reported_at AS timestamptz), now())",
        },
        required=frozenset({"category", "status"}),
    ),
}

_JOINS = (
    "LEFT JOIN grid g ON g.id = t.grid_id LEFT JOIN community c ON c.id = g.community_id "
    "LEFT JOIN street s ON s.id = c.street_id LEFT JOIN worker w ON w.id = g.worker_id"
)
_ASSIGNMENT = (
    "g.code AS grid, c.code AS community, s.code AS street, w.code AS worker, "
    "t.snapped, t.assign_distance_m"
)


def _select(kind: PointKind) -> str:
    fields = ", ".join(f"{expr} AS {name}" for name, expr in kind.fields.items())
    joins = _JOINS
    if kind.table == "household":
        joins += " LEFT JOIN building b ON b.id = t.building_id"
    return (
        f"SELECT {fields}, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, {_ASSIGNMENT} "  # noqa: S608
        f"FROM {kind.table} t {joins}"
    )


def _scope_sql(scope: AreaScope, params: dict[str, Any]) -> str:
    params["grid_ids"] = scope.sql_ids("grid")
    return ASSIGNED_ROW_SQL


def household_scope(db: Db, scope: AreaScope, role: Role, user_id: int | None) -> AreaScope:
    """The area in which the caller reads and writes households: for a grid worker only the
    grids they work (``data.policy.WORKED_GRIDS_SQL``), whatever wider area their account has
    for maps; for every other role their area."""
    if role not in WORKED_GRIDS_ROLES:
        return scope
    ids = db.execute(
        text(WORKED_GRIDS_SQL), {"user_id": user_id, "grid_ids": scope.sql_ids("grid")}
    ).scalars()
    return replace(scope, grid_ids=frozenset(int(i) for i in ids))


def not_in_area(kind: PointKind, key: str) -> str:
    """The one answer for a key that is missing *or* stored outside the caller's area."""
    return missing(kind, key).reason


def missing(kind: PointKind, key: str) -> NotFound:
    """:func:`not_in_area` as the error to raise, which a page says in its own language."""
    return NotFound.said(f"no_{kind.table}", field=kind.key, code=key)


def keys_outside(db: Db, kind: PointKind, keys: list[str], scope: AreaScope) -> set[str]:
    """The keys among ``keys`` that are stored, but outside the caller's area."""
    if scope.unrestricted or not keys:
        return set()
    params: dict[str, Any] = {"keys": keys}
    where = _scope_sql(scope, params)
    rows = db.execute(
        text(
            f"SELECT t.{kind.key} FROM {kind.table} t "  # noqa: S608 - constants
            f"WHERE t.{kind.key} = ANY(:keys) AND NOT {where}"
        ),
        params,
    ).scalars()
    return {str(k) for k in rows}


def _row(kind: PointKind, r: Any) -> dict[str, Any]:
    out = {name: r[name] for name in kind.fields}
    for name, value in out.items():
        if isinstance(value, datetime):
            out[name] = value.isoformat()
    out["lon"], out["lat"] = float(r["lon"]), float(r["lat"])
    distance = r["assign_distance_m"]
    out["assignment"] = {
        "grid": r["grid"],
        "community": r["community"],
        "street": r["street"],
        "worker": r["worker"],
        "snapped": bool(r["snapped"]),
        "distance_m": None if distance is None else round(float(distance), 3),
    }
    return out


def get_point(db: Db, kind: PointKind, key: str, scope: AreaScope) -> dict[str, Any] | None:
    """One row by its code / source id, or None when missing or outside the caller's area."""
    params: dict[str, Any] = {"key": key}
    where = _scope_sql(scope, params)
    row = (
        db.execute(text(f"{_select(kind)} WHERE t.{kind.key} = :key AND {where}"), params)
        .mappings()
        .first()
    )
    return None if row is None else _row(kind, row)


def list_points(
    db: Db,
    kind: PointKind,
    scope: AreaScope,
    *,
    grid_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of rows in key order, limited to the caller's area (and a grid / status)."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = Filters(_scope_sql(scope, params), params=params)
    where.add("t.grid_id = :grid_id", grid_id=grid_id)
    where.add("t.status = CAST(:status AS incident_status)", status=status)
    rows = (
        db.execute(
            text(
                f'{_select(kind)} WHERE {where.sql} ORDER BY t.{kind.key} COLLATE "C" '
                "LIMIT :limit OFFSET :offset"
            ),
            where.params,
        )
        .mappings()
        .all()
    )
    total = db.execute(
        text(f"SELECT count(*) FROM {kind.table} t WHERE {where.sql}"),  # noqa: S608
        where.params,
    ).scalar_one()
    return [_row(kind, r) for r in rows], int(total)


@dataclass(frozen=True)
class Placement:
    """The stored assignment of one point: grid id (None: unassigned), snap flag, distance."""

    grid_id: int | None
    snapped: bool
    distance_m: float | None


def _checked_values(kind: PointKind, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(kind.writable) - {"building"}
    if unknown:
        raise InvalidInput(f"not a field of {kind.name}: {', '.join(sorted(unknown))}")
    if kind.table == "household" and values.get("size") and values.get("lives_alone") is None:
        values = {**values, "lives_alone": values["size"] == 1}
    for name in sorted(kind.required & set(values)):
        if values[name] is None:
            raise InvalidInput("may not be null", field=name)
    if "building" in values and values["building"] is not None:
        values = {**values, "building_id": values["building"]}
    values.pop("building", None)
    return values


def insert_point(
    db: Db,
    kind: PointKind,
    key: str,
    values: dict[str, Any],
    *,
    lon: float,
    lat: float,
    placement: Placement,
    scope: AreaScope,
) -> None:
    """Insert one row with its assignment already decided (no second write). A key already
    stored in the caller's area is a conflict; one stored elsewhere answers like any key
    outside the area (404), not "already exists", which would confirm it."""
    problem = key_problem(key)
    if problem:
        raise InvalidInput(problem, field=kind.key)
    values = _checked_values(kind, values)
    _check_building(db, kind, values)
    exists = db.execute(
        text(f"SELECT 1 FROM {kind.table} WHERE {kind.key} = :key"),  # noqa: S608
        {"key": key},
    ).first()
    if exists is not None:
        if keys_outside(db, kind, [key], scope):
            raise missing(kind, key)
        raise Conflict(f"{kind.key} '{key}' already exists", field=kind.key)
    params: dict[str, Any] = {
        "key": key,
        "lon": lon,
        "lat": lat,
        "grid_id": placement.grid_id,
        "snapped": placement.snapped,
        "distance": placement.distance_m,
    }
    columns, exprs = [kind.key], [":key"]
    for name, value in values.items():
        columns.append(name)
        exprs.append(_writable_expr(kind, name))
        params[_param(name)] = value
    if kind.table == "incident" and values.get("status") == "closed":
        columns.append("closed_at")
        exprs.append("now()")
    for column, expr in kind.inserted:
        columns.append(column)
        exprs.append(expr)
    db.execute(
        text(
            f"INSERT INTO {kind.table} ({', '.join(columns)}, geom, grid_id, snapped, "  # noqa: S608
            f"assign_distance_m) VALUES ({', '.join(exprs)}, "
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :grid_id, :snapped, :distance)"
        ),
        params,
    )


def update_point(
    db: Db,
    kind: PointKind,
    key: str,
    values: dict[str, Any],
    *,
    location: tuple[float, float] | None,
    placement: Placement | None,
) -> None:
    """Change the given fields (and the location with its new assignment); a household
    changed is registered from then on (``estimated`` false)."""
    values = _checked_values(kind, values)
    _check_building(db, kind, values)
    params: dict[str, Any] = {"key": key}
    sets = []
    for name, value in values.items():
        sets.append(f"{name} = {_writable_expr(kind, name)}")
        params[_param(name)] = value
    if kind.table == "household":
        # A household someone changed is a registered one: a new estimate from the
        # buildings (``gridwork derive households``) replaces only the estimated ones, and
        # would otherwise drop the correction.
        sets.append("estimated = false")
    if kind.table == "incident" and "status" in values:
        sets.append(
            "closed_at = CASE WHEN CAST(:status AS incident_status) = 'closed' "
            "THEN coalesce(closed_at, now()) ELSE NULL END"
        )
    if location is not None and placement is not None:
        sets += [
            "geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)",
            "grid_id = :grid_id",
            "snapped = :snapped",
            "assign_distance_m = :distance",
        ]
        params.update(
            lon=location[0],
            lat=location[1],
            grid_id=placement.grid_id,
            snapped=placement.snapped,
            distance=placement.distance_m,
        )
    if sets:
        db.execute(
            text(f"UPDATE {kind.table} SET {', '.join(sets)} WHERE {kind.key} = :key"),  # noqa: S608
            params,
        )


def delete_point(db: Db, kind: PointKind, key: str) -> None:
    db.execute(text(f"DELETE FROM {kind.table} WHERE {kind.key} = :key"), {"key": key})  # noqa: S608


def existing_keys(db: Db, kind: PointKind, keys: list[str]) -> set[str]:
    rows = db.execute(
        text(f"SELECT {kind.key} FROM {kind.table} WHERE {kind.key} = ANY(:keys)"),  # noqa: S608
        {"keys": keys},
    ).scalars()
    return {str(k) for k in rows}


def _param(name: str) -> str:
    return "building" if name == "building_id" else name


def _writable_expr(kind: PointKind, name: str) -> str:
    return kind.writable[name]


def _check_building(db: Db, kind: PointKind, values: dict[str, Any]) -> None:
    """A household naming a building that does not exist is refused, not silently unlinked."""
    building = values.get("building_id")
    if kind.table != "household" or building is None:
        return
    found = db.execute(text("SELECT 1 FROM building WHERE source_id = :b"), {"b": building}).first()
    if found is None:
        raise InvalidInput(f"no building '{building}'", field="building")
