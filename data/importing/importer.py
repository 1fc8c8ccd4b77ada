"""Bulk upsert of validated frames into PostGIS: all-or-nothing, idempotent, every reject named.

A frame (from ``data.importing.readers``)
is copied into a temporary table with ``COPY`` and merged with
one ``INSERT … ON CONFLICT`` per layer, keyed by its code or source id, so importing the
same file twice changes nothing. Rows whose parent (street, community, worker, building)
is unknown are rejects like any other bad row: the caller decides whether to write nothing
(the default) or the good rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Integer, String, text
from sqlalchemy.orm import Session

from data.models import Base
from geo.assignment.keys import key_problem
from geo.errors import ImportRejected, InvalidInput, RowReject


@dataclass(frozen=True)
class Column:
    """A staged column: its name in the normalised frame and its SQL type."""

    target: str
    sql_type: str


@dataclass(frozen=True)
class LayerTarget:
    table: str
    key: str
    geometry: str | None  # PostGIS type the geometry is forced to; None: not stored
    columns: tuple[Column, ...]
    parents: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (table, key)
    conflict: str = ""
    # Columns whose empty cell keeps what is stored (a new row gets the insert's default):
    # an incident re-imported without its report time keeps the time it was first filed.
    kept_when_empty: tuple[str, ...] = ()
    # The key names the record in a URL path (the registers and the point API): it must be
    # one a path can hold (``geo.assignment.keys``).
    addressed: bool = False

    @property
    def conflict_target(self) -> str:
        return self.conflict or f"({self.key})"


TARGETS: dict[str, LayerTarget] = {
    "streets": LayerTarget(
        "street",
        "code",
        "POLYGON",
        (
            Column("code", "text"),
            Column("name", "text"),
            Column("name_local", "text"),
            Column("source_id", "text"),
            Column("district_code", "text"),
        ),
        parents={"district_code": ("district", "code")},
    ),
    "communities": LayerTarget(
        "community",
        "code",
        "POLYGON",
        (
            Column("code", "text"),
            Column("name", "text"),
            Column("name_local", "text"),
            Column("kind", "text"),
            Column("street_code", "text"),
            Column("population", "bigint"),
            Column("source_id", "text"),
            Column("service_centre_lon", "float8"),
            Column("service_centre_lat", "float8"),
        ),
        parents={"street_code": ("street", "code")},
    ),
    "workers": LayerTarget(
        "worker",
        "code",
        None,
        (
            Column("code", "text"),
            Column("display_name", "text"),
            Column("phone", "text"),
            Column("community_code", "text"),
        ),
        parents={"community_code": ("community", "code")},
    ),
    "grids": LayerTarget(
        "grid",
        "code",
        "POLYGON",
        (
            Column("code", "text"),
            Column("community_code", "text"),
            Column("worker_code", "text"),
            Column("source_id", "text"),
        ),
        parents={"community_code": ("community", "code"), "worker_code": ("worker", "code")},
        conflict="(code) WHERE valid_to IS NULL",
    ),
    "roads": LayerTarget(
        "road_segment",
        "source_id",
        "LINESTRING",
        (
            Column("source_id", "text"),
            Column("name", "text"),
            Column("road_class", "text"),
            Column("oneway", "boolean"),
        ),
    ),
    "buildings": LayerTarget(
        "building",
        "source_id",
        "POLYGON",
        (
            Column("source_id", "text"),
            Column("building_type", "text"),
            Column("levels", "float8"),
            Column("households", "bigint"),
        ),
    ),
    "facilities": LayerTarget(
        "facility",
        "source_id",
        "POINT",
        (
            Column("source_id", "text"),
            Column("kind", "text"),
            Column("name", "text"),
            Column("name_local", "text"),
            Column("capacity", "bigint"),
        ),
        addressed=True,
    ),
    "households": LayerTarget(
        "household",
        "code",
        "POINT",
        (
            Column("code", "text"),
            Column("size", "bigint"),
            Column("lives_alone", "boolean"),
            Column("age_band", "text"),
            Column("building_source_id", "text"),
            Column("estimated", "boolean"),
        ),
        parents={"building_source_id": ("building", "source_id")},
        addressed=True,
    ),
    "incidents": LayerTarget(
        "incident",
        "source_id",
        "POINT",
        (
            Column("source_id", "text"),
            Column("category", "text"),
            Column("status", "text"),
            Column("summary", "text"),
            Column("reported_at", "timestamptz"),
        ),
        kept_when_empty=("reported_at",),
        addressed=True,
    ),
}

# How each staged column lands in the real table.
_INSERT: dict[str, dict[str, str]] = {
    "streets": {
        "code": "s.code",
        "name": "coalesce(s.name, s.code)",
        "name_local": "s.name_local",
        "source_id": "s.source_id",
        "district_id": "(SELECT id FROM district WHERE code = s.district_code)",
    },
    "communities": {
        "code": "s.code",
        "name": "coalesce(s.name, s.code)",
        "name_local": "s.name_local",
        "kind": "coalesce(s.kind, 'community')::community_kind",
        "street_id": "(SELECT id FROM street WHERE code = s.street_code)",
        "population": "s.population",
        "source_id": "s.source_id",
        "service_centre": "CASE WHEN s.service_centre_lon IS NOT NULL THEN "
        "ST_SetSRID(ST_MakePoint(s.service_centre_lon, s.service_centre_lat), 4326) END",
    },
    "workers": {
        "code": "s.code",
        "display_name": "coalesce(s.display_name, s.code)",
        "phone": "s.phone",
        "community_id": "(SELECT id FROM community WHERE code = s.community_code)",
    },
    "grids": {
        "code": "s.code",
        "community_id": "(SELECT id FROM community WHERE code = s.community_code)",
        "worker_id": "(SELECT id FROM worker WHERE code = s.worker_code)",
        "source_id": "s.source_id",
    },
    "roads": {
        "source_id": "s.source_id",
        "name": "s.name",
        "road_class": "s.road_class",
        "oneway": "s.oneway",
    },
    "buildings": {
        "source_id": "s.source_id",
        "building_type": "s.building_type",
        "levels": "s.levels",
        "households": "s.households",
        "households_estimated": "false",
    },
    "facilities": {
        "source_id": "s.source_id",
        "kind": "s.kind",
        "name": "s.name",
        "name_local": "s.name_local",
        "capacity": "s.capacity",
    },
    "households": {
        "code": "s.code",
        "size": "coalesce(s.size, 1)",
        "lives_alone": "coalesce(s.lives_alone, coalesce(s.size, 1) = 1)",
        "age_band": "s.age_band::age_band",
        "building_id": "(SELECT id FROM building WHERE source_id = s.building_source_id)",
        "estimated": "coalesce(s.estimated, false)",
    },
    "incidents": {
        "source_id": "s.source_id",
        "category": "coalesce(s.category, 'other')",
        "status": "coalesce(s.status, 'open')::incident_status",
        "summary": "s.summary",
        "reported_at": "coalesce(s.reported_at, now())",
    },
}


#: Staged with point rows whose grid was decided before the write (``placed`` in
#: :func:`upsert`; the columns of :func:`data.assignment.service.placement_columns`): grid id
#: or -1, the snap flag, metres or NaN.
PLACED: tuple[Column, ...] = (
    Column("_grid", "int8"),
    Column("_snapped", "boolean"),
    Column("_distance", "float8"),
)
_PLACED_INSERT = {
    "grid_id": "NULLIF(s._grid, -1)",
    "snapped": "s._snapped",
    "assign_distance_m": "NULLIF(s._distance, 'NaN'::float8)",
}


@dataclass
class ImportReport:
    """What an import did, row by row of the file: ``inserted``, ``updated`` (a stored row
    whose values differed), ``unchanged`` (a stored row equal to the file's on every column
    the file carries: not written at all) or one of ``rejects``.

    ``updated_keys`` names the updated rows when the caller asked (an upload answers row by
    row); an import of millions does not hold them.
    """

    kind: str
    source: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[RowReject] = field(default_factory=list)
    updated_keys: frozenset[str] | None = None


def _value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NaT or v is pd.NA:
        return None
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v


def _stage(
    session: Session,
    target: LayerTarget,
    frame: gpd.GeoDataFrame,
    progress: Callable[[int, int | None], None] | None,
) -> list[str]:
    names = [c.target for c in target.columns]
    defs = ", ".join(f"{c.target} {c.sql_type}" for c in target.columns)
    session.execute(
        text(f"CREATE TEMP TABLE _stage (_row bigint, {defs}, _geom bytea) ON COMMIT DROP")
    )
    raw = session.connection().connection.driver_connection
    assert raw is not None, "a live psycopg connection is needed for COPY"
    wkb = shapely.to_wkb(frame.geometry.values, hex=False)
    rows = frame["_row"].to_numpy() if "_row" in frame.columns else range(1, len(frame) + 1)
    empty = [None] * len(frame)
    values = [frame[n].tolist() if n in frame.columns else empty for n in names]
    total = len(frame)
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY _stage (_row, {', '.join(names)}, _geom) FROM STDIN") as copy,
    ):
        for i in range(total):
            copy.write_row([int(rows[i]), *(_value(v[i]) for v in values), wkb[i]])
            if progress and (i % 5000 == 0 or i == total - 1):
                progress(i + 1, total)
    return names


def _orphans(session: Session, target: LayerTarget) -> list[RowReject]:
    rejects: list[RowReject] = []
    for column, (table, key) in target.parents.items():
        rows = session.execute(
            text(
                f"SELECT s._row, s.{target.key}, s.{column} FROM _stage s "  # noqa: S608
                f"WHERE s.{column} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {table} p WHERE p.{key} = s.{column})"
            )
        ).all()
        rejects += [
            RowReject(int(r[0]), f"{column} '{r[2]}' does not exist in {table}", str(r[1]))
            for r in rows
        ]
    # Every later row of a key the file holds more than once (the file readers keep the
    # first likewise, ``data.importing.readers``): with ``allow_rejects`` a twin left behind
    # would meet the kept row in the one INSERT … ON CONFLICT, which refuses to touch a row
    # twice, and fail the whole import.
    dupes = session.execute(
        text(
            f"SELECT _row, key, first FROM (SELECT _row, {target.key} AS key, "  # noqa: S608
            f"min(_row) OVER (PARTITION BY {target.key}) AS first FROM _stage "
            f"WHERE {target.key} <> '') d WHERE _row <> first"
        )
    ).all()
    rejects += [
        RowReject(int(r[0]), f"{target.key} '{r[1]}' already used at row {r[2]}", str(r[1]))
        for r in dupes
    ]
    missing = (
        session.execute(
            text(
                f"SELECT _row FROM _stage WHERE {target.key} IS NULL OR {target.key} = ''"  # noqa: S608
            )
        )
        .scalars()
        .all()
    )
    rejects += [RowReject(int(r), f"{target.key} is empty") for r in missing]
    return rejects


def upsert(
    session: Session,
    kind: str,
    frame: gpd.GeoDataFrame,
    *,
    source: str,
    prior_rejects: list[RowReject] | None = None,
    allow_rejects: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    placed: bool = False,
    name_updated: bool = False,
) -> ImportReport:
    """Merge ``frame`` (WGS-84, normalised columns, ``_row`` = 1-based file row) into its table.

    A stored row equal to the file's on every column the file carries is not written at all
    (:func:`_merge`): a monthly re-import of a mostly unchanged list rewrites only what
    changed. With ``placed`` the frame also carries each row's assignment (:data:`PLACED`),
    written by the same ``INSERT … ON CONFLICT``, new and updated rows alike, so that no hook
    has to update the rows again (a row whose grid changed is not unchanged). With
    ``name_updated`` the report names the updated rows (``updated_keys``). Runs inside the
    caller's transaction: on ``ImportRejected`` the caller's rollback leaves the database
    exactly as it was.
    """
    target = TARGETS.get(kind)
    if target is None:
        raise InvalidInput(
            f"unknown layer kind '{kind}'; one of {', '.join(TARGETS)}", field="layer"
        )
    if target.key not in frame.columns:
        raise InvalidInput(f"the data has no '{target.key}' column", field="id_field")
    report = ImportReport(kind=kind, source=source, rejects=list(prior_rejects or []))
    too_big = _column_limits(target, frame) + _unaddressable(target, frame)
    if too_big:  # the database would refuse the whole COPY with one line and no row number
        report.rejects += too_big
        too_big_rows = {r.row for r in too_big}
        frame = frame[~frame["_row"].isin(too_big_rows)] if "_row" in frame.columns else frame
    if placed:
        missing = [c.target for c in PLACED if c.target not in frame.columns]
        if missing or "grid_id" not in Base.metadata.tables[target.table].c:
            raise InvalidInput(f"no assignment to write for {kind}: {missing}", field="placed")
        target = replace(target, columns=(*target.columns, *PLACED))
    _stage(session, target, frame, progress)
    report.rejects += _orphans(session, target)
    report.rejects.sort(key=lambda r: r.row)
    if report.rejects and not allow_rejects:
        raise ImportRejected(source, report.rejects)
    _fill_from_stored(session, target)
    staged = len(frame)
    if report.rejects:
        bad = [r.row for r in report.rejects]
        dropped = session.execute(text("DELETE FROM _stage WHERE _row = ANY(:rows)"), {"rows": bad})
        staged -= int(dropped.rowcount or 0)  # type: ignore[attr-defined]
    mapping = {**_INSERT[kind], **(_PLACED_INSERT if placed else {})}
    if target.geometry:
        mapping["geom"] = (
            f"ST_SetSRID(ST_GeomFromWKB(s._geom), 4326)::geometry({target.geometry}, 4326)"
        )
    # Only what the file carried is updated: a file without 'name' keeps the stored names.
    present = set(frame.columns) | {"geom"}
    updated = [
        c for c, e in mapping.items() if c != target.key and (c == "geom" or _uses_only(e, present))
    ]
    types: dict[str, str] = {
        str(name): str(sql_type)
        for name, sql_type in session.execute(
            text(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
            ),
            {"t": target.table},
        ).all()
    }
    new, changed, keys = session.execute(
        text(_merge(target, mapping, updated, types=types, name_updated=name_updated))
    ).one()
    report.inserted, report.updated = int(new), int(changed)
    report.unchanged = staged - report.inserted - report.updated
    if name_updated:
        report.updated_keys = frozenset(keys or ())
    session.execute(text("DROP TABLE _stage"))
    return report


def _stored_row(target: LayerTarget) -> str:
    """The condition on the stored row ``t`` that the staged row ``s`` would conflict with:
    the same key, under the arbiter's own predicate when the conflict target has one."""
    arbiter = target.conflict_target.partition(" WHERE ")[2]
    return f"t.{target.key} = s.{target.key}" + (f" AND ({arbiter})" if arbiter else "")


def _fill_from_stored(session: Session, target: LayerTarget) -> None:
    """Give the staged rows' empty ``kept_when_empty`` cells their stored values, so that the
    merge neither overwrites them with the insert's default (``now()`` for a report time)
    nor counts an unchanged row as updated."""
    stored = _stored_row(target)
    for column in target.kept_when_empty:
        session.execute(
            text(
                f"UPDATE _stage s SET {column} = t.{column} FROM {target.table} t "  # noqa: S608
                f"WHERE s.{column} IS NULL AND {stored}"
            )
        )


def _merge(
    target: LayerTarget,
    mapping: dict[str, str],
    updated: list[str],
    *,
    types: dict[str, str],
    name_updated: bool,
) -> str:
    """The one statement that merges ``_stage`` into the table and counts what it wrote.

    A staged row equal to its stored row on every ``updated`` column (``IS NOT DISTINCT
    FROM``: NULL equals NULL) is left out before the insert, read but neither written nor
    locked: no dead tuple, no WAL, no transition row for the triggers of 0022, 0025 and
    0026, and no edit of that household waits for the import to commit. ``ON CONFLICT DO
    UPDATE`` alone (with its ``WHERE``) would lock every conflicting row, a WAL record each:
    24 MB for the synthetic district's 146,112 households unchanged, where rewriting them
    took 115 MB and the statement now writes none.

    The file's values are cast to the columns' own types (``types``), as an insert would
    store them, so that a float8 staged for a real column compares as stored. The ``WHERE``
    of the update checks again what a writer committed since the statement's snapshot. For
    a geometry PostGIS's ``=`` (``geometry_eq``, and so ``IS DISTINCT FROM``) is exact: same
    SRID, type and every coordinate bit for bit, vertex order included: a point moved by one
    unit in the last place is distinct, the same file read again is not. Counted in the
    database: the client gets one row, not one per row written.
    """
    table, key = target.table, target.key
    if updated:
        action = (
            "DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
            + f" WHERE ({', '.join(f'{table}.{c}' for c in updated)}) IS DISTINCT FROM "
            f"({', '.join(f'EXCLUDED.{c}' for c in updated)})"
        )
        stored = _stored_row(target)
        incoming = ", ".join(f"CAST({mapping[c]} AS {types[c]})" for c in updated)
        same = ", ".join(f"t.{c}" for c in updated)
        unchanged = (
            f" WHERE NOT EXISTS (SELECT FROM {table} t WHERE {stored} "  # noqa: S608
            f"AND ({same}) IS NOT DISTINCT FROM ({incoming}))"
        )
    else:  # the file carries nothing to update (a key-only list): stored rows stay
        action, unchanged = "DO NOTHING", ""
    names = "array_agg(key) FILTER (WHERE NOT new)" if name_updated else "NULL::text[]"
    return (
        f"WITH written AS (INSERT INTO {table} ({', '.join(mapping)}) "  # noqa: S608
        # In the file's order, whatever plan the filter gets: new rows take their ids in
        # that order, and what is derived from rows read by id (the seeded estimate of
        # households from buildings) must not change with the plan.
        f"SELECT {', '.join(mapping.values())} FROM _stage s{unchanged} ORDER BY s._row "
        f"ON CONFLICT {target.conflict_target} {action} "
        f"RETURNING {key}::text AS key, (xmax = 0) AS new) "
        f"SELECT count(*) FILTER (WHERE new), count(*) FILTER (WHERE NOT new), {names} "
        "FROM written"
    )


_INT4_MAX = 2**31 - 1


def _unaddressable(target: LayerTarget, frame: gpd.GeoDataFrame) -> list[RowReject]:
    """A key no page or API path can open (``12/3``, ``new``) is a reject naming its row: once
    stored, the record would be listed and never opened, moved or removed."""
    if not target.addressed:
        return []
    rows = frame["_row"].to_numpy() if "_row" in frame.columns else range(1, len(frame) + 1)
    rejects = []
    for row, raw in zip(rows, frame[target.key], strict=True):
        key = _value(raw)
        problem = key_problem(key) if isinstance(key, str) else None
        if problem:
            rejects.append(RowReject(int(row), f"{target.key}: {problem}", key))
    return rejects


def _column_limits(target: LayerTarget, frame: gpd.GeoDataFrame) -> list[RowReject]:
    """A value longer or larger than its table column holds is a reject naming the row, the
    column and the limit (a NUL is refused by the readers)."""
    table = Base.metadata.tables[target.table]
    rows = frame["_row"].to_numpy() if "_row" in frame.columns else range(1, len(frame) + 1)
    keys = frame[target.key] if target.key in frame.columns else [None] * len(frame)
    rejects: list[RowReject] = []
    for column in target.columns:
        if column.target not in frame.columns or column.target not in table.c:
            continue
        sql_type = table.c[column.target].type
        length = sql_type.length if isinstance(sql_type, String) else None
        whole = isinstance(sql_type, Integer) and column.sql_type == "bigint"
        if length is None and not whole:
            continue
        for row, key, raw in zip(rows, keys, frame[column.target], strict=True):
            value = _value(raw)
            if value is None:
                continue
            if length is not None and isinstance(value, str) and len(value) > length:
                why = f"{column.target}: longer than {length} characters ({len(value)})"
            elif whole and isinstance(value, int) and not -_INT4_MAX - 1 <= value <= _INT4_MAX:
                why = f"{column.target}: {value} is larger than {_INT4_MAX:,}"
            else:
                continue
            rejects.append(RowReject(int(row), why, None if key is None else str(key)[:64]))
    return rejects


def _uses_only(expr: str, present: set[str]) -> bool:
    """True when every ``s.<column>`` the expression reads was present in the file."""
    return all(name in present for name in re.findall(r"\bs\.(\w+)", expr))
