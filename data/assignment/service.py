"""Stored assignment: every household, facility and incident row carries its grid.

The rule is the one of :mod:`geo.assignment.index`, applied to the grids *as stored*:

* a point belongs to the current grid that ``ST_Covers`` it, tested on the stored WGS-84
  coordinates, so the answer is PostGIS's own (``gridwork check`` verifies it row by row);
  on a shared edge or vertex the **lowest grid code** (code-point order, ``COLLATE "C"``) wins;
* a point outside every grid goes to the nearest grid when it is within the snap tolerance
  (``GRIDWORK_SNAP_TOLERANCE_M``, 20 m by default), measured in the deployment's metric CRS
  (:func:`data.crs.metric_epsg`), and is flagged ``snapped``; farther away it stays
  unassigned (``grid_id`` NULL) with the distance to the nearest grid kept for review.

Why two :class:`~geo.assignment.index.AreaIndex`
per set of grids: covering must be decided on the very
coordinates PostGIS tests (projecting first would move a point that lies exactly on a shared
edge to one side of it, and the lowest-code rule would never apply), while distances must be
metres. Points outside every grid are few, so the metric index only sees those.

Community and street follow from the grid (``grid.community_id``, ``community.street_id``);
they are not copied onto the points, so moving a grid to another community needs no rewrite.

Bulk paths move arrays, not row objects: points are read with a binary ``COPY … TO`` and
parsed by numpy, and results go back with a binary ``COPY`` into a temporary table and one
``UPDATE … FROM``, touching only the rows whose assignment changed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from data.crs import metric_epsg
from data.settings import Settings
from geo.assignment.index import DEFAULT_SNAP_M, AreaIndex
from geo.crs import utm_epsg
from geo.errors import InvalidInput

Db = Session | Connection

# kind (as imported) → table, and the column that names a row to a person
POINT_TABLES: dict[str, str] = {
    "households": "household",
    "facilities": "facility",
    "incidents": "incident",
}
ROW_KEY: dict[str, str] = {"household": "code", "facility": "source_id", "incident": "source_id"}
_VERSION_KEY = "grids_version"


# --- the grids, indexed -----------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """Where each point went, aligned with the input; ``area`` indexes :class:`GridIndex`.

    ``area`` is -1 for unassigned points; ``distance_m`` is 0 for covered points, the distance
    to the grid a point was snapped to, or to the nearest grid for unassigned points (NaN when
    there are no grids at all); ``nearest`` is the covering or nearest grid (-1: no grids).
    """

    area: NDArray[np.intp]
    snapped: NDArray[np.bool_]
    distance_m: NDArray[np.float64]
    nearest: NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class GridIndex:
    """The current grids with their hierarchy and worker, indexed for assignment.

    Arrays are aligned, one entry per grid in code order. ``version`` is the grids-version
    token the index was built for (see :func:`grids_version`).
    """

    version: str | None
    epsg: int | None
    snap_m: float
    grid_id: NDArray[np.int64]
    code: NDArray[np.object_]
    community_id: NDArray[np.int64]
    community_code: NDArray[np.object_]
    community_name: NDArray[np.object_]
    street_code: NDArray[np.object_]
    street_name: NDArray[np.object_]
    worker_code: NDArray[np.object_]
    worker_name: NDArray[np.object_]
    worker_phone: NDArray[np.object_]
    metric_geoms: NDArray[np.object_]
    _covers: AreaIndex | None = field(repr=False)
    _metric: AreaIndex | None = field(repr=False)
    _to_metric: Transformer | None = field(repr=False)
    _position: dict[int, int] = field(repr=False)
    _by_code: dict[str, int] = field(repr=False)
    _boundaries: list[shapely.Geometry | None] = field(repr=False)

    def __len__(self) -> int:
        return len(self.grid_id)

    def position(self, grid_id: int) -> int:
        """Index of a grid id in the arrays, -1 if it is not a current grid."""
        return self._position.get(int(grid_id), -1)

    def to_metric(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self._to_metric is None:
            raise InvalidInput("no grids are stored yet", field="grids")
        x, y = self._to_metric.transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def assign(self, lon: Any, lat: Any) -> Placed:
        """Assign WGS-84 points: ST_Covers on the stored grids, else snap in metres."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        n = len(lon)
        if self._covers is None or self._metric is None:
            none = np.full(n, -1, dtype=np.intp)
            return Placed(none, np.zeros(n, bool), np.full(n, np.nan), none.copy())
        covered = self._covers.assign_points(lon, lat, snap_m=0.0)
        # A "snap" at 0 degrees is GEOS finding a distance of 0 for a point its own covers
        # test refused; PostGIS calls it outside too, so it is settled in metres below.
        area = np.where(covered.snapped, -1, covered.area).astype(np.intp)
        nearest = area.copy()
        snapped = np.zeros(n, dtype=bool)
        distance = np.zeros(n)
        outside = np.flatnonzero(area < 0)
        if len(outside):
            x, y = self.to_metric(lon[outside], lat[outside])
            near = self._metric.assign_points(x, y, snap_m=self.snap_m)
            # Both indexes hold the grids in this index's order, so area numbers agree.
            area[outside] = near.area
            nearest[outside] = self._positions_of(near.nearest_code)
            snapped[outside] = near.area >= 0
            distance[outside] = near.distance_m
        return Placed(area, snapped, distance, nearest)

    def locate(self, lon: float, lat: float) -> tuple[int, bool, float, int]:
        """:meth:`assign` for one WGS-84 point: ``(area, snapped, distance_m, nearest)``.

        A covered point (nearly every ``/locate``) takes the scalar path; anything else goes
        through :meth:`assign`, so both always agree (tested on random points)."""
        if self._covers is not None:
            area = self._covers.covering_area(lon, lat)
            if area >= 0:
                return area, False, 0.0, area
        placed = self.assign(np.array([lon]), np.array([lat]))
        return (
            int(placed.area[0]),
            bool(placed.snapped[0]),
            float(placed.distance_m[0]),
            int(placed.nearest[0]),
        )

    def edge_distance_m(self, area: int, lon: float, lat: float) -> float:
        """Metres from a point to the boundary of grid ``area``, in the metric CRS."""
        if self._to_metric is None:
            raise InvalidInput("no grids are stored yet", field="grids")
        boundary = self._boundaries[area]
        if boundary is None:
            boundary = shapely.boundary(self.metric_geoms[area])
            self._boundaries[area] = boundary
        x, y = self._to_metric.transform(lon, lat)
        return float(shapely.distance(boundary, shapely.Point(x, y)))

    def _positions_of(self, codes: NDArray[np.object_]) -> NDArray[np.intp]:
        return np.fromiter((self._by_code[c] for c in codes), dtype=np.intp, count=len(codes))


_GRIDS_SQL = """
SELECT g.id, g.code, ST_AsBinary(g.geom), c.id, c.code, c.name, s.code, s.name,
       w.code, w.display_name, w.phone
FROM grid g JOIN community c ON c.id = g.community_id
LEFT JOIN street s ON s.id = c.street_id LEFT JOIN worker w ON w.id = g.worker_id
WHERE g.valid_to IS NULL ORDER BY g.code COLLATE "C"
"""


def load_grid_index(
    db: Db, *, settings: Settings | None = None, version: str | None = None
) -> GridIndex:
    """Read the current grids and index them (about 0.5 s for 800 grids of 200 vertices)."""
    rows = db.execute(text(_GRIDS_SQL)).all()
    snap_m = settings.snap_tolerance_m if settings else DEFAULT_SNAP_M
    columns: list[Sequence[Any]] = (
        [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(11)]
    )

    def objects(i: int) -> NDArray[np.object_]:
        out = np.empty(len(rows), dtype=object)
        out[:] = list(columns[i])
        return out

    geoms = np.asarray(shapely.from_wkb(list(columns[2])), dtype=object)
    codes = objects(1)
    epsg = metric_epsg(db, settings.metric_epsg if settings else None) if rows else None
    if rows and epsg is None:  # grids but no communities' extent yet: use the grids' own
        x, y = np.asarray(shapely.bounds(geoms)).reshape(-1, 4)[:, [0, 1]].mean(axis=0)
        epsg = utm_epsg(float(x), float(y))
    covers = metric = transformer = None
    metric_geoms = np.empty(0, dtype=object)
    if rows:
        assert epsg is not None
        transformer = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_epsg(epsg), always_xy=True)
        metric_geoms = np.asarray(
            shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(*xy.T))),
            dtype=object,
        )
        covers = AreaIndex(geoms, list(codes))
        metric = AreaIndex(metric_geoms, list(codes), crs=CRS.from_epsg(epsg))
    ids = np.asarray(columns[0], dtype=np.int64)
    return GridIndex(
        version=version,
        epsg=epsg,
        snap_m=snap_m,
        grid_id=ids,
        code=codes,
        community_id=np.asarray(columns[3], dtype=np.int64),
        community_code=objects(4),
        community_name=objects(5),
        street_code=objects(6),
        street_name=objects(7),
        worker_code=objects(8),
        worker_name=objects(9),
        worker_phone=objects(10),
        metric_geoms=metric_geoms,
        _covers=covers,
        _metric=metric,
        _to_metric=transformer,
        _position={int(g): i for i, g in enumerate(ids)},
        _by_code={str(c): i for i, c in enumerate(codes)},
        _boundaries=[None] * len(ids),
    )


def grids_version(db: Db) -> str:
    """The token that changes whenever a grid, worker, community or street is written.

    A trigger (migration 0003) replaces it in the writing transaction. When it is missing
    (a fresh database, or after ``deployment_setting`` was emptied), one is created here.
    """
    value = db.execute(
        text("SELECT value FROM deployment_setting WHERE key = :k"), {"k": _VERSION_KEY}
    ).scalar_one_or_none()
    if value is None:
        db.execute(
            text(
                "INSERT INTO deployment_setting (key, value) VALUES (:k, gen_random_uuid()::text) "
                "ON CONFLICT (key) DO NOTHING"
            ),
            {"k": _VERSION_KEY},
        )
        value = db.execute(
            text("SELECT value FROM deployment_setting WHERE key = :k"), {"k": _VERSION_KEY}
        ).scalar_one()
    return str(value)


class GridIndexCache:
    """One :class:`GridIndex` per process, rebuilt only when the grids-version token changes.

    The token is read *before* the grids, so an index can only ever be filed under a token
    older than its data (costing one extra rebuild), never under a newer one. A caller that
    follows a :class:`~data.changes.ChangeFeed` passes the feed's generation read before
    :meth:`get`; :meth:`checked` then answers without the database until it moves.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self._index: GridIndex | None = None
        self._checked: tuple[int, GridIndex] | None = None
        self._lock = threading.Lock()

    def checked(self, generation: int) -> GridIndex | None:
        """The index whose token was read under change-feed ``generation``, if any."""
        held = self._checked
        return held[1] if held is not None and held[0] == generation else None

    def get(self, db: Db, *, generation: int | None = None) -> GridIndex:
        version = grids_version(db)
        index = self._index
        if index is None or index.version != version:
            with self._lock:
                index = self._index
                if index is None or index.version != version:
                    index = load_grid_index(db, settings=self.settings, version=version)
                    self._index = index
        if generation is not None:
            self._checked = (generation, index)
        return index

    def clear(self) -> None:
        self._index = None
        self._checked = None


# --- reading and writing points in bulk ---------------------------------------------------

PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
PG_COPY_TRAILER = b"\xff\xff"

# id, lon, lat, grid (-1: none), snapped, distance (NaN: none) — fixed width, so numpy parses it
_READ_DTYPE = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"),
        ("id", ">i8"),
        ("l1", ">i4"),
        ("lon", ">f8"),
        ("l2", ">i4"),
        ("lat", ">f8"),
        ("l3", ">i4"),
        ("grid", ">i8"),
        ("l4", ">i4"),
        ("snapped", "u1"),
        ("l5", ">i4"),
        ("distance", ">f8"),
    ]
)
_WRITE_DTYPE = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"),
        ("id", ">i8"),
        ("l1", ">i4"),
        ("grid", ">i8"),
        ("l2", ">i4"),
        ("snapped", "u1"),
        ("l3", ">i4"),
        ("distance", ">f8"),
    ]
)


@dataclass(frozen=True)
class StoredPoints:
    """Point rows of one table as arrays: what is stored now, ready to be reassigned."""

    id: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    grid: NDArray[np.int64]  # -1: none
    snapped: NDArray[np.bool_]
    distance: NDArray[np.float64]  # NaN: none


def raw_connection(db: Db) -> Any:
    conn = db.connection() if isinstance(db, Session) else db
    raw = conn.connection.driver_connection
    assert raw is not None, "a live psycopg connection is needed for COPY"
    return raw


def read_points(db: Db, table: str, *, where: str = "TRUE", params: Any = None) -> StoredPoints:
    """All rows of ``table`` matching ``where`` (psycopg placeholders) via binary COPY."""
    if table not in ROW_KEY:
        raise InvalidInput(f"not a point table: {table}", field="table")
    sql = (
        "COPY (SELECT id::int8, ST_X(geom), ST_Y(geom), coalesce(grid_id, -1)::int8, "  # noqa: S608
        "coalesce(snapped, false), coalesce(assign_distance_m, 'NaN')::float8 "
        f"FROM {table} WHERE {where}) TO STDOUT (FORMAT BINARY)"
    )
    buffer = bytearray()
    with raw_connection(db).cursor() as cur, cur.copy(sql, params) as copy:
        for chunk in copy:
            buffer += chunk
    if len(buffer) < len(PG_COPY_HEADER) + 2 or not buffer.startswith(PG_COPY_HEADER[:11]):
        raise RuntimeError("unexpected COPY BINARY stream")
    body = memoryview(buffer)[len(PG_COPY_HEADER) : len(buffer) - 2]
    rows = np.frombuffer(body, dtype=_READ_DTYPE)
    return StoredPoints(
        id=rows["id"].astype(np.int64),
        lon=rows["lon"].astype(np.float64),
        lat=rows["lat"].astype(np.float64),
        grid=rows["grid"].astype(np.int64),
        snapped=rows["snapped"].astype(bool),
        distance=rows["distance"].astype(np.float64),
    )


def _copy_binary(db: Db, sql: str, rows: NDArray[Any]) -> None:
    with raw_connection(db).cursor() as cur, cur.copy(sql) as copy:
        copy.write(PG_COPY_HEADER)
        step = 1 << 18
        for start in range(0, len(rows), step):
            copy.write(rows[start : start + step].tobytes())
        copy.write(PG_COPY_TRAILER)


def _fixed_rows(dtype: np.dtype[Any], n: int, **values: Any) -> NDArray[Any]:
    """Fixed-width binary COPY tuples: field count and byte lengths filled in from the dtype."""
    rows = np.empty(n, dtype=dtype)
    names = [name for name in dtype.names or () if not re.fullmatch(r"n|l\d+", name)]
    rows["n"] = len(names)
    for i, name in enumerate(names):
        rows[f"l{i}"] = dtype.fields[name][0].itemsize  # type: ignore[index]
        rows[name] = values[name]
    return rows


@dataclass(frozen=True)
class TableResult:
    """What one reassignment did to one table."""

    table: str
    rows: int
    changed: int
    snapped: int
    unassigned: int


def assigned_grid_ids(index: GridIndex, placed: Placed) -> NDArray[np.int64]:
    """Grid ids (-1: none) for placed points."""
    ids = np.append(index.grid_id, np.int64(-1))
    return ids[placed.area]


def placement_columns(index: GridIndex, lon: Any, lat: Any) -> dict[str, NDArray[Any]]:
    """The assignment of WGS-84 points that are about to be written, as staged columns
    (``_grid``: -1 for none, ``_snapped``, ``_distance``: NaN for none).

    An import that carries these writes each row once, with its grid, instead of inserting
    it and then updating it (issue 19: at 1 M households the second write was 30 s of 67).
    The answer is :meth:`GridIndex.assign`'s on the very coordinates that will be stored (a
    WKB round trip keeps every bit), so it is what the after-write hook would have stored.
    """
    placed = index.assign(lon, lat)
    return {
        "_grid": assigned_grid_ids(index, placed),
        "_snapped": placed.snapped,
        "_distance": placed.distance_m,
    }


def reassign_table(
    db: Db,
    table: str,
    index: GridIndex,
    *,
    where: str = "TRUE",
    params: Any = None,
) -> TableResult:
    """Recompute the grid of every row matching ``where`` and write back those that changed."""
    points = read_points(db, table, where=where, params=params)
    return write_changes(db, table, index, points, index.assign(points.lon, points.lat))


def write_changes(
    db: Db, table: str, index: GridIndex, points: StoredPoints, placed: Placed
) -> TableResult:
    """Write back the rows whose placement differs from what is stored (``placed`` may have
    been computed elsewhere: a batch worker, see :mod:`data.batch.assign`)."""
    grid = assigned_grid_ids(index, placed)
    distance = placed.distance_m
    same_distance = (np.isnan(distance) & np.isnan(points.distance)) | (
        np.abs(distance - points.distance) <= 1e-9
    )
    changed = np.flatnonzero(
        (grid != points.grid) | (placed.snapped != points.snapped) | ~same_distance
    )
    if len(changed):
        write_assignment(
            db,
            table,
            ids=points.id[changed],
            grid=grid[changed],
            snapped=placed.snapped[changed],
            distance=distance[changed],
        )
    return TableResult(
        table=table,
        rows=len(points.id),
        changed=len(changed),
        snapped=int(placed.snapped.sum()),
        unassigned=int((grid < 0).sum()),
    )


def write_assignment(
    db: Db,
    table: str,
    *,
    ids: NDArray[np.int64],
    grid: NDArray[np.int64],
    snapped: NDArray[np.bool_],
    distance: NDArray[np.float64],
) -> None:
    """COPY (id, grid, snapped, distance) into a temporary table, then one UPDATE … FROM."""
    if table not in ROW_KEY:
        raise InvalidInput(f"not a point table: {table}", field="table")
    db.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS _assign (id int8, grid int8, snapped bool, "
            "distance float8) ON COMMIT DROP"
        )
    )
    db.execute(text("TRUNCATE _assign"))
    rows = _fixed_rows(
        _WRITE_DTYPE, len(ids), id=ids, grid=grid, snapped=snapped, distance=distance
    )
    _copy_binary(db, "COPY _assign (id, grid, snapped, distance) FROM STDIN (FORMAT BINARY)", rows)
    db.execute(
        text(
            f"UPDATE {table} t SET grid_id = NULLIF(a.grid, -1), snapped = a.snapped, "  # noqa: S608
            "assign_distance_m = NULLIF(a.distance, 'NaN'::float8) FROM _assign a "
            "WHERE t.id = a.id"
        )
    )
    db.execute(text("TRUNCATE _assign"))


def reassign(
    db: Db,
    *,
    settings: Settings | None = None,
    tables: Iterable[str] = POINT_TABLES.values(),
    index: GridIndex | None = None,
) -> list[TableResult]:
    """Recompute every stored assignment of ``tables`` (``gridwork assign``, grid imports)."""
    tables = list(tables)
    present = [t for t in tables if db.execute(text(f"SELECT EXISTS (SELECT 1 FROM {t})")).scalar()]  # noqa: S608
    if not present:  # nothing to assign: do not pay for indexing the grids
        return [TableResult(t, 0, 0, 0, 0) for t in tables]
    index = index or load_grid_index(db, settings=settings)
    return [reassign_table(db, table, index) for table in tables]


def reassign_near(
    db: Db,
    bounds: Sequence[float],
    *,
    settings: Settings | None = None,
    index: GridIndex | None = None,
) -> list[TableResult]:
    """Reassign only the points a changed grid can affect: those near its old or new shape.

    ``bounds`` (minlon, minlat, maxlon, maxlat) must enclose both shapes; it is widened by the
    snap tolerance (conservatively converted to degrees) so snapped points are included.
    """
    index = index or load_grid_index(db, settings=settings)
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    lat = min(max(abs(miny), abs(maxy)), 85.0)
    pad_m = index.snap_m * 1.01 + 1.0
    pad_lat = pad_m / 110_000.0
    pad_lon = pad_lat / float(np.cos(np.radians(lat)))
    where = "geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)"
    params = {
        "x0": minx - pad_lon,
        "y0": miny - pad_lat,
        "x1": maxx + pad_lon,
        "y1": maxy + pad_lat,
    }
    return [
        reassign_table(db, table, index, where=where, params=params)
        for table in POINT_TABLES.values()
    ]


def assign_after_import(
    db: Db, kind: str, *, settings: Settings | None = None, keys: Sequence[str] | None = None
) -> list[TableResult]:
    """The import hook: imported points get their grid; a grid import reassigns everything.

    ``keys`` names the rows a point import wrote (codes / source ids): only those are read
    and assigned, so a city imported district by district does not pay again for every
    earlier district. Each gets what a whole-table pass would give it (the rule is decided
    point by point on the same grids), a row re-imported unchanged included, since the grids
    may have changed since it was last assigned. Rows the import did not write are left as
    they are (``gridwork assign`` recomputes everything). Without ``keys``, or when they name
    every stored row (a first import), the whole table is reassigned.
    """
    if kind in POINT_TABLES:
        table = POINT_TABLES[kind]
        if keys is None:
            return reassign(db, settings=settings, tables=[table])
        if not keys:  # nothing written: do not pay for indexing the grids
            return [TableResult(table, 0, 0, 0, 0)]
        stored = db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        if stored == len(set(keys)):  # the import wrote every row: read them without a join
            return reassign(db, settings=settings, tables=[table])
        return [_assign_written(db, table, keys, index=load_grid_index(db, settings=settings))]
    if kind == "grids":
        return reassign(db, settings=settings)
    return []


def assign_keys(db: Db, table: str, keys: Sequence[str], *, index: GridIndex) -> TableResult:
    """Assign the rows named by their code / source id (after an API insert or upload)."""
    return reassign_table(
        db, table, index, where=f"{ROW_KEY[table]} = ANY(%(keys)s)", params={"keys": list(keys)}
    )


def _assign_written(db: Db, table: str, keys: Sequence[str], *, index: GridIndex) -> TableResult:
    """:func:`assign_keys` for the rows of a whole import: the keys go in by ``COPY`` to a
    temporary table the database can join with, not as one array literal in the statement
    (a district's households are hundreds of thousands of keys)."""
    db.execute(text("CREATE TEMP TABLE IF NOT EXISTS _written (key text) ON COMMIT DROP"))
    db.execute(text("TRUNCATE _written"))
    with raw_connection(db).cursor() as cur, cur.copy("COPY _written (key) FROM STDIN") as copy:
        for key in keys:
            copy.write_row((key,))
    db.execute(text("ANALYZE _written"))
    result = reassign_table(
        db,
        table,
        index,
        where=f"{ROW_KEY[table]} IN (SELECT key FROM _written)",  # noqa: S608
    )
    db.execute(text("TRUNCATE _written"))
    return result


# --- the check: stored assignment against PostGIS ----------------------------------------

# The covering grid as grid_covering() (0011) finds it, written as a join: the function is
# run as a query of its own for every point (a SQL function with LIMIT is not inlined). The
# one district's comparison took 3.45 s this way, 6.3-9.0 s before (``bench.megacity
# checks``, docs/scale.md); at the megacity's 10 M households ST_Covers itself dominates.
_COVERING = """
SELECT p.id, p.{key} AS key, p.grid_id, p.snapped, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
       c.id AS expected, c.code AS expected_code, s.code AS stored_code
FROM {table} p
LEFT JOIN LATERAL (
    SELECT g.id, g.code FROM grid g WHERE ST_Covers(g.geom, p.geom) AND g.valid_to IS NULL
    ORDER BY g.code COLLATE "C" LIMIT 1
) c ON true
LEFT JOIN grid s ON s.id = p.grid_id
WHERE (c.id IS NOT NULL AND (p.grid_id IS DISTINCT FROM c.id OR p.snapped))
   OR (c.id IS NULL AND (p.grid_id IS NOT NULL
                         OR EXISTS (SELECT 1 FROM grid g WHERE g.valid_to IS NULL)))
ORDER BY p.id
"""

_NEAREST = """
SELECT g.id, g.code,
       ST_Distance(ST_Transform(g.geom, :epsg), ST_Transform(ST_SetSRID(
           ST_MakePoint(:lon, :lat), 4326), :epsg)) AS d
FROM grid g
WHERE g.valid_to IS NULL AND g.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                                                 :pad)
ORDER BY d, g.code COLLATE "C"
"""


@dataclass(frozen=True)
class Mismatch:
    """A stored assignment that PostGIS disagrees with."""

    table: str
    key: str
    stored: str | None
    expected: str | None
    reason: str
    lon: float
    lat: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "stored": self.stored,
            "expected": self.expected,
            "reason": self.reason,
            "lon": self.lon,
            "lat": self.lat,
        }


_TOLERANCE_M = 1e-6  # PROJ in PostGIS and in pyproj may differ in the last bits


def assignment_mismatches(db: Db, *, settings: Settings | None = None) -> list[Mismatch]:
    """Every point whose stored grid differs from PostGIS: ``ST_Covers``, lowest code first;
    outside every grid, the nearest within the snap tolerance in the metric CRS."""
    snap = settings.snap_tolerance_m if settings else DEFAULT_SNAP_M
    epsg = None
    found: list[Mismatch] = []
    for table, key in ROW_KEY.items():
        rows = db.execute(text(_COVERING.format(table=table, key=key))).mappings().all()
        for r in rows:
            if r["expected"] is not None:
                why = (
                    f"covered by {r['expected_code']} but stored as snapped"
                    if r["grid_id"] == r["expected"]
                    else f"covered by {r['expected_code']}, stored {r['stored_code'] or 'none'}"
                )
                found.append(
                    Mismatch(
                        table,
                        str(r["key"]),
                        r["stored_code"],
                        r["expected_code"],
                        why,
                        r["lon"],
                        r["lat"],
                    )
                )
                continue
            if epsg is None:
                epsg = metric_epsg(db, settings.metric_epsg if settings else None)
            problem = _outside_problem(db, r, epsg=epsg, snap=snap)
            if problem is not None:
                expected, why = problem
                found.append(
                    Mismatch(
                        table, str(r["key"]), r["stored_code"], expected, why, r["lon"], r["lat"]
                    )
                )
    return found


def _outside_problem(
    db: Db, row: Any, *, epsg: int | None, snap: float
) -> tuple[str | None, str] | None:
    """For a point no grid covers: None when the stored answer is right, else why not."""
    if epsg is None:
        return None, "no metric CRS to measure the snap distance in"
    lat = min(abs(float(row["lat"])), 85.0)
    pad = (snap * 1.01 + 1.0) / (110_000.0 * float(np.cos(np.radians(lat))))
    near = db.execute(
        text(_NEAREST), {"epsg": epsg, "lon": row["lon"], "lat": row["lat"], "pad": pad}
    ).all()
    within = [(gid, code, float(d)) for gid, code, d in near if float(d) <= snap + _TOLERANCE_M]
    if row["grid_id"] is None:
        if within and within[0][2] < snap - _TOLERANCE_M:
            return within[0][1], f"outside every grid but {within[0][2]:.3f} m from {within[0][1]}"
        return None
    stored = next((w for w in within if w[0] == row["grid_id"]), None)
    if not row["snapped"]:
        return (within[0][1] if within else None), "no grid covers it, yet not marked snapped"
    if stored is None:
        best = within[0][1] if within else None
        return best, f"snapped to {row['stored_code']}, which is not within {snap:g} m"
    if stored[2] > within[0][2] + _TOLERANCE_M:
        return within[0][1], f"snapped to {row['stored_code']} but {within[0][1]} is nearer"
    return None
