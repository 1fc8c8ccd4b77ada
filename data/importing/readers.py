"""Read any geodata file into a validated WGS-84 GeoDataFrame plus the list of rows refused.

``read_layer`` is the one entry point. It reads GeoPackage, GeoJSON, Shapefile and FlatGeobuf
(anything GDAL opens, through pyogrio), CSV with longitude/latitude columns, and OSM PBF
extracts (roads, buildings and facilities only). It writes nothing:
``data.importing.importer`` stores
the frame it returns.

What comes back (:class:`ReadResult`):

* ``frame``: EPSG:4326, one row per storable feature, index 0..n-1, columns ``source_id``
  (str), ``_row`` (int) and the kind's normalised columns (see :data:`FIELDS`), then
  ``geometry``. A normalised column is present only when the file carried it, so that an
  upsert of a file without, say, populations leaves the stored populations alone. Text,
  whole numbers and flags are ``object`` columns holding ``str`` / ``int`` / ``bool`` or
  ``None`` (pandas' ``pd.NA`` cannot be handed to the database driver); decimals are
  ``float64`` with NaN for "unknown"; ``reported_at`` holds ``datetime`` or ``None``.
  Buildings also get ``footprint_m2``, measured in the layer's UTM zone.
* ``rejects``: one :class:`~geo.errors.RowReject` per problem, sorted by row; a row with two
  problems is listed twice. Rejected rows are not in ``frame``.
* ``notes``: things the user should know that are not errors (columns dropped or ignored,
  GDAL warnings, a CRS overridden).

Rules worth knowing:

* **Row numbers** are 1-based as the user sees them: the feature's position in a GIS layer;
  in a CSV the spreadsheet row (the header is row 1, so the first record is row 2); in an OSM
  PBF the position of the object among those of the requested kind.
* **Ids** (``source_id``): ``id_field`` when given; else the first column named ``osm_id``,
  ``source_id``, ``code``, ``编码``, ``编号``, ``id``, ``fid``, ``gid``, ``objectid`` or
  ``ogc_fid`` (case does not matter; a GeoPackage's own FID column counts); else the row
  number. Empty ids and repeated ids (every occurrence after the first) are rejects.
* **CRS**: every layer is reprojected to EPSG:4326. A layer without a CRS is refused
  (:class:`~geo.errors.CRSError`) unless ``crs`` is given; a given ``crs`` also overrides a
  declared one (a wrong ``.prj``), with a note. The one default: a CSV whose coordinate
  columns are named lon/lng/longitude and lat/latitude is taken as EPSG:4326; columns named
  ``x``/``y`` may be projected metres, so they need ``crs``.
* **Personal data**: columns named like ethnicity, religion, political views or identity
  numbers (身份证, 民族, 宗教, 政治面貌 …) are dropped before anything else, with a note; they
  can never be the id. Columns not in the kind's list are ignored, with a note.
* **Values** in files are checked strictly (numbers, flags, enumerations, dates): a value that
  cannot be read is a reject naming the file's column and the value. The exception is road
  ``oneway``, OSM's free-form tag ("reversible", "alternating"…), which becomes null when it is
  not yes/no. ``oneway=-1`` means one-way against the drawing direction, so such lines are
  reversed and marked one-way.
* **OSM PBF**: roads are ``highway=*`` ways (not ``area=yes`` squares, nor proposed, under
  construction, abandoned, razed, disused or platform ways); buildings are closed ways and
  multipolygon relations with ``building=*`` other than ``no``; facilities are *every*
  ``amenity=*`` node, closed way and multipolygon (areas reduced to a point inside them; filter
  on ``kind`` to keep the services you manage). Ids use the OSM notation ``n123`` / ``w123`` /
  ``r123`` because node, way and relation ids overlap; tags are read leniently (an unreadable
  ``building:levels`` or ``capacity`` is null). Multipolygons libosmium cannot assemble are
  skipped by libosmium without a trace.
* **Geometry**: every row goes through :func:`geo.district.validate.validate_geometries` with the
  kind's geometry type (:data:`EXPECTED`). Workers are the one kind whose file may carry no
  coordinates at all (their geometry is then null).
* **Progress**: ``progress(done, total)`` is called as features are read; ``total`` is None
  when it cannot be known in advance (OSM PBF, where ``done`` counts matching objects).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import mmap
import re
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal, get_args

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pyogrio
import pyproj
import shapely
from pyogrio.errors import CRSError as OgrCRSError
from pyogrio.errors import DataLayerError, DataSourceError

from geo.district.validate import ROW_COLUMN, SOURCE_ID_COLUMN, GeometryKind, validate_geometries
from geo.errors import CRSError, InvalidInput, RowReject

__all__ = [
    "EXPECTED",
    "FIELDS",
    "Field",
    "Kind",
    "Progress",
    "ReadResult",
    "read_layer",
]

Kind = Literal[
    "streets",
    "communities",
    "grids",
    "roads",
    "buildings",
    "facilities",
    "households",
    "incidents",
    "workers",
]
Progress = Callable[[int, int | None], None]

EXPECTED: Final[dict[str, GeometryKind]] = {
    "streets": "Polygon",
    "communities": "Polygon",
    "grids": "Polygon",
    "roads": "LineString",
    "buildings": "Polygon",
    "facilities": "Point",
    "households": "Point",
    "incidents": "Point",
    "workers": "Point",
}
"""The geometry type each kind is stored as."""

PBF_KINDS: Final = ("roads", "buildings", "facilities")
_PBF_SUFFIXES: Final = (".osm.pbf", ".pbf")
_CSV_SUFFIXES: Final = (".csv", ".tsv")
_ID_CANDIDATES: Final = (
    "osm_id",
    "source_id",
    "code",
    "编码",
    "编号",
    "id",
    "fid",
    "gid",
    "objectid",
    "ogc_fid",
)
_LON_NAMES: Final = ("lon", "lng", "long", "longitude", "经度")
_LAT_NAMES: Final = ("lat", "latitude", "纬度")
_CHUNK: Final = 50_000
_HAS_ARROW: Final = importlib.util.find_spec("pyarrow") is not None
_SENSITIVE: Final = re.compile(
    r"ethnic|religio|politic|identity|身份|民族|宗教|政治|证件"
    r"|(?:^|[^a-z])id[\s_-]?(?:number|num|no|card)(?:$|[^a-z])",
    re.IGNORECASE,
)
# highway values that are not (yet, or any longer) a road one can walk or drive along
_NOT_ROADS: Final = frozenset(
    {"proposed", "construction", "abandoned", "razed", "disused", "platform"}
)


@dataclass
class ReadResult:
    """A layer ready for the importer: the storable rows, the refused rows, and what to tell."""

    frame: gpd.GeoDataFrame
    rejects: list[RowReject]
    source: str
    notes: list[str] = field(default_factory=list)
    layer: str | None = None


# ---------------------------------------------------------------------------------------------
# value parsers: each returns the normalised value or None, or raises ValueError(why)


def _is_empty(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: Any) -> str | None:
    if _is_empty(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a code a GIS program stored as a real number
    return str(value).strip()


def _count(value: Any) -> int | None:
    """A whole number >= 0 (population, household size, capacity); '2,067' is accepted."""
    if _is_empty(value):
        return None
    if isinstance(value, bool | np.bool_):
        raise ValueError("is a true/false value, not a number")
    if isinstance(value, int | np.integer):
        number = float(value)
    else:
        text = re.sub(r"[,_\s]", "", str(value))
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number") from None
    if not np.isfinite(number) or not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return int(number)


def _amount(value: Any) -> float | None:
    """A number >= 0 that may have decimals (building levels); '3,5' reads as 3.5."""
    if _is_empty(value):
        return None
    if isinstance(value, bool | np.bool_):
        raise ValueError("is a true/false value, not a number")
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a number >= 0")
    return number


_TRUE: Final = frozenset({"true", "t", "yes", "y", "1", "是", "√"})
_FALSE: Final = frozenset({"false", "f", "no", "n", "0", "否", "×"})


def _flag(value: Any) -> bool | None:
    if _is_empty(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().casefold()
    if isinstance(value, float | np.floating) and float(value).is_integer():
        text = str(int(value))
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes/no (use yes, no, true, false, 1 or 0)")


def _choice(*allowed: str, default: str | None = None) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        if _is_empty(value):
            return default
        text = re.sub(r"[\s-]+", "_", str(value).strip().casefold())
        for option in allowed:
            if text == re.sub(r"[\s-]+", "_", option.casefold()):
                return option
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")

    return parse


def _age_band(value: Any) -> str | None:
    if isinstance(value, str):
        value = re.sub(r"\s+", "", value).replace("–", "-")
    return _choice("0-17", "18-59", "60-79", "80+")(value)


def _timestamp(value: Any) -> datetime | None:
    """ISO 8601 date and time ('2024-05-01 14:30', '2024-05-01T14:30+08:00'); '/' for '-'."""
    if _is_empty(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    text = re.sub(r"^(\d{4})/(\d{1,2})/(\d{1,2})", r"\1-\2-\3", text)
    text = re.sub(r"^(\d{4})-(\d)(?=\D|$)", r"\1-0\2", text)
    text = re.sub(r"^(\d{4}-\d{2})-(\d)(?=\D|$)", r"\1-0\2", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a date and time (write 2024-05-01 14:30)") from None


def _longitude(value: Any) -> float | None:
    return _in_range(value, 180)


def _latitude(value: Any) -> float | None:
    return _in_range(value, 90)


def _in_range(value: Any, limit: int) -> float | None:
    if _is_empty(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not -limit <= number <= limit:
        raise ValueError(f"{value!r} is out of range [-{limit}, {limit}]")
    return number


def _lenient(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """For OSM tags: a value that cannot be read is unknown, not an error."""

    def parse_or_none(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError:
            return None

    return parse_or_none


def _oneway(value: Any) -> bool | None:
    if isinstance(value, str) and value.strip() == "-1":
        return True
    return _lenient(_flag)(value)


# ---------------------------------------------------------------------------------------------
# the normalised columns of each kind


@dataclass(frozen=True)
class Field:
    """One normalised column: where it may come from in a file and how its values are read."""

    target: str
    aliases: tuple[str, ...]
    parse: Callable[[Any], Any]
    decimal: bool = False  # float64 column (NaN = unknown) instead of an object column


_CODE = Field("code", ("code", "ref_code", "ref", "编码", "代码", "编号"), _text)
_NAME = Field("name", ("name", "名称", "名字"), _text)
_NAME_LOCAL = Field(
    "name_local", ("name_local", "local_name", "name:zh", "name_zh", "中文名"), _text
)
_COMMUNITY_CODE = Field(
    "community_code", ("community_code", "community", "社区编码", "所属社区"), _text
)

FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    "streets": (_CODE, _NAME, _NAME_LOCAL),
    "communities": (
        _CODE,
        _NAME,
        _NAME_LOCAL,
        Field(
            "kind",
            ("kind", "community_kind", "类型"),
            _choice("community", "extended", default="community"),
        ),
        Field(
            "street_code", ("street_code", "parent_code", "street", "街道编码", "所属街道"), _text
        ),
        Field("population", ("population", "pop", "人口"), _count),
        Field("service_centre_lon", ("service_centre_lon", "centre_lon"), _longitude, decimal=True),
        Field("service_centre_lat", ("service_centre_lat", "centre_lat"), _latitude, decimal=True),
    ),
    "grids": (
        _CODE,
        _COMMUNITY_CODE,
        Field("worker_code", ("worker_code", "worker", "网格员编码", "网格员"), _text),
    ),
    "roads": (
        _NAME,
        Field("road_class", ("road_class", "class", "highway", "fclass", "道路等级"), _text),
        Field("oneway", ("oneway", "one_way", "单行"), _oneway),
    ),
    "buildings": (
        _NAME,
        Field("building_type", ("building_type", "building", "type", "建筑类型"), _text),
        Field(
            "levels",
            ("levels", "building:levels", "building_levels", "floors", "storeys", "层数"),
            _amount,
            decimal=True,
        ),
        Field("households", ("households", "户数"), _count),
    ),
    "facilities": (
        Field(
            "kind",
            ("kind", "amenity", "facility_kind", "type", "category", "fclass", "类型"),
            _text,
        ),
        _NAME,
        _NAME_LOCAL,
        Field("capacity", ("capacity", "容量"), _count),
    ),
    "households": (
        Field("code", ("code", "household_code", "户编码", "户号"), _text),
        Field("size", ("size", "household_size", "members", "persons", "人数", "户人数"), _count),
        Field("lives_alone", ("lives_alone", "alone", "独居"), _flag),
        Field("age_band", ("age_band", "年龄段"), _age_band),
        Field(
            "building_source_id",
            ("building_source_id", "building_id", "building", "building_code", "楼栋编码"),
            _text,
        ),
    ),
    "incidents": (
        Field("category", ("category", "kind", "type", "类别", "事件类型"), _text),
        Field("status", ("status", "状态"), _choice("open", "in_progress", "closed")),
        Field("summary", ("summary", "description", "title", "描述", "摘要"), _text),
        Field(
            "reported_at",
            ("reported_at", "reported", "datetime", "time", "date", "上报时间", "时间"),
            _timestamp,
        ),
    ),
    "workers": (
        Field("code", ("code", "worker_code", "工号", "编码"), _text),
        Field("display_name", ("display_name", "name", "姓名"), _text),
        Field("phone", ("phone", "mobile", "tel", "telephone", "电话", "手机"), _text),
        _COMMUNITY_CODE,
    ),
}
"""Per kind, the normalised columns and the file column names each is taken from (first wins)."""


# ---------------------------------------------------------------------------------------------
# the entry point


@dataclass
class _Raw:
    """A layer as read, before ids, CRS, values and geometry are checked."""

    frame: gpd.GeoDataFrame  # original columns + _row + geometry (None where unreadable)
    crs: pyproj.CRS | None
    source: str
    layer: str | None = None
    fid: str | None = None  # name of the file's own FID column, held in the index
    rejects: list[RowReject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    normalised: bool = False  # the OSM reader already produced the kind's columns
    has_geometry: bool = True
    default_crs: pyproj.CRS | None = None  # assumed when neither the file nor the caller says


def read_layer(
    path: str | Path,
    *,
    kind: Kind,
    layer: str | None = None,
    id_field: str | None = None,
    crs: str | int | None = None,
    progress: Progress | None = None,
) -> ReadResult:
    """Read one layer of any geodata file as ``kind``: WGS-84, normalised columns, rows refused."""
    path = Path(path)
    if kind not in EXPECTED:
        raise InvalidInput(
            f"unknown kind {kind!r}; one of {', '.join(get_args(Kind))}", field="kind"
        )
    if not path.exists():
        raise InvalidInput(f"no such file: {path}", field="file")
    given_crs = _parse_crs(crs) if crs is not None else None
    name = path.name.casefold()
    if name.endswith(_PBF_SUFFIXES):
        raw = _read_pbf(
            path, kind, layer=layer, id_field=id_field, crs=given_crs, progress=progress
        )
    elif name.endswith(_CSV_SUFFIXES):
        raw = _read_csv(path, kind, crs_given=given_crs is not None, progress=progress)
    else:
        raw = _read_ogr(path, kind, layer=layer, progress=progress)
    return _finish(raw, kind, id_field=id_field, crs=given_crs)


def _finish(raw: _Raw, kind: str, *, id_field: str | None, crs: pyproj.CRS | None) -> ReadResult:
    frame, notes, id_column = raw.frame, list(raw.notes), None
    source_crs = _source_crs(raw, crs, notes)  # refuse a layer without CRS before any work
    skip_geometry = {r.row for r in raw.rejects}  # the reader already said what is wrong
    if not raw.normalised:
        frame = _drop_sensitive(frame, notes, raw.source)
        frame[SOURCE_ID_COLUMN], id_column = _source_ids(frame, raw, id_field)
    as_read = frame
    ids = dict(zip(frame[ROW_COLUMN], frame[SOURCE_ID_COLUMN], strict=True))
    rejects = [replace(r, source_id=r.source_id or ids.get(r.row)) for r in raw.rejects]
    if not raw.normalised:
        frame, more = _normalise(frame, kind, notes, id_column=id_column)
        rejects += more
    rejects += _id_rejects(frame)
    if not raw.normalised:
        rejects += _nul_rejects(as_read, derived_id=SOURCE_ID_COLUMN not in raw.frame.columns)
    bad_rows = {r.row for r in rejects}

    frame = _to_wgs84(frame, source_crs)
    if raw.has_geometry:
        checked = frame[~frame[ROW_COLUMN].isin(skip_geometry)]
        frame, geometry_rejects = validate_geometries(
            checked, expected=EXPECTED[kind], source=raw.source
        )
        rejects += geometry_rejects
    frame = frame[~frame[ROW_COLUMN].isin(bad_rows)].reset_index(drop=True)
    if kind == "buildings":
        frame = _with_footprint(frame)
    geometry = frame.geometry.name
    middle = [c for c in frame.columns if c not in (SOURCE_ID_COLUMN, ROW_COLUMN, geometry)]
    frame = frame[[SOURCE_ID_COLUMN, ROW_COLUMN, *middle, geometry]]
    rejects.sort(key=lambda r: (r.row, r.source_id or ""))
    return ReadResult(frame=frame, rejects=rejects, source=raw.source, notes=notes, layer=raw.layer)


# ---------------------------------------------------------------------------------------------
# CRS


def _parse_crs(crs: str | int) -> pyproj.CRS:
    text = str(crs).strip()
    user_input = f"EPSG:{text}" if text.isdigit() else text
    try:
        return pyproj.CRS.from_user_input(user_input)
    except pyproj.exceptions.CRSError:
        raise CRSError(
            f"unknown coordinate reference system {crs!r} (give an EPSG code such as 4326)",
            field="crs",
        ) from None


def _source_crs(raw: _Raw, given: pyproj.CRS | None, notes: list[str]) -> pyproj.CRS:
    """The CRS the layer's coordinates are in: the one asked for, else the file's own."""
    if not raw.has_geometry:
        return pyproj.CRS.from_epsg(4326)
    if given is not None:
        if raw.crs is not None and not raw.crs.equals(given, ignore_axis_order=True):
            notes.append(
                f"the file declares {_crs_name(raw.crs)}; read as {_crs_name(given)} as asked"
            )
        return given
    if raw.crs is None and raw.default_crs is not None:
        return raw.default_crs
    if raw.crs is None:
        raise CRSError(
            f"{raw.source} has no coordinate reference system; pass crs= "
            "(4326 if the coordinates are longitude/latitude degrees)",
            field="crs",
        )
    return raw.crs


def _to_wgs84(frame: gpd.GeoDataFrame, source_crs: pyproj.CRS) -> gpd.GeoDataFrame:
    frame = frame.set_crs(source_crs, allow_override=True)
    if source_crs.equals("EPSG:4326", ignore_axis_order=True):
        return frame.set_crs("EPSG:4326", allow_override=True)
    return frame.to_crs("EPSG:4326")


def _crs_name(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


# ---------------------------------------------------------------------------------------------
# GIS files through GDAL


def _read_ogr(path: Path, kind: str, *, layer: str | None, progress: Progress | None) -> _Raw:
    try:
        layers = [(str(n), None if t is None else str(t)) for n, t in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidInput(
            f"{path.name} is not a geodata file that can be read ({_first_line(exc)})",
            field="file",
        ) from None
    chosen = _choose_layer(path, layers, kind, layer)
    source = f"{path.name}:{chosen}" if len(layers) > 1 else path.name
    info = pyogrio.read_info(path, layer=chosen)
    total = int(info["features"])
    fast = bool(info["capabilities"].get("fast_set_next_by_index")) and total > _CHUNK
    notes: list[str] = []
    chunks = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = 0
        while True:
            try:
                chunk = pyogrio.read_dataframe(
                    path,
                    layer=chosen,
                    fid_as_index=True,
                    use_arrow=_HAS_ARROW,
                    skip_features=start,
                    max_features=_CHUNK if fast else None,
                )
            except OgrCRSError as exc:
                raise CRSError(
                    f"{source}: unusable CRS ({_first_line(exc)})", field="crs"
                ) from None
            except (DataSourceError, DataLayerError) as exc:
                raise InvalidInput(
                    f"{source} cannot be read ({_first_line(exc)})", field="file"
                ) from None
            chunks.append(chunk)
            start += len(chunk)
            if progress is not None:
                progress(start, max(total, start))
            if not fast or len(chunk) < _CHUNK:
                break
    notes += [f"GDAL: {w.message}" for w in caught]
    frame = pd.concat(chunks) if len(chunks) > 1 else chunks[0]
    has_geometry = isinstance(frame, gpd.GeoDataFrame)
    if not has_geometry:
        if kind != "workers":
            raise InvalidInput(f"layer {chosen!r} of {path.name} has no geometry", field="layer")
        frame = gpd.GeoDataFrame(frame, geometry=[None] * len(frame))
    crs = None if frame.crs is None else pyproj.CRS.from_user_input(frame.crs)
    frame[ROW_COLUMN] = np.arange(1, len(frame) + 1, dtype=np.int64)
    fid = str(info.get("fid_column") or "") or None
    rejects = _geojson_nul_rejects(path) if path.suffix.casefold() in _JSON_SUFFIXES else []
    return _Raw(
        frame,
        crs,
        source,
        layer=chosen,
        fid=fid,
        rejects=rejects,
        notes=notes,
        has_geometry=has_geometry,
    )


_JSON_SUFFIXES: Final = (".geojson", ".json", ".geojsonl", ".geojsons")
_NUL_REASON: Final = "contains a NUL character (U+0000), which cannot be stored; remove it"


def _nul_rejects(frame: gpd.GeoDataFrame, *, derived_id: bool) -> list[RowReject]:
    """A NUL in any text cell is a reject naming the row and the column: PostgreSQL cannot
    store it, and cutting the value there would change it silently."""
    rejects: list[RowReject] = []
    skip = {frame.geometry.name, ROW_COLUMN} | ({SOURCE_ID_COLUMN} if derived_id else set())
    ids = dict(zip(frame[ROW_COLUMN], frame[SOURCE_ID_COLUMN], strict=True))
    for column in frame.columns:
        if column in skip or pd.api.types.is_numeric_dtype(frame[column].dtype):
            continue
        for value, row in zip(frame[column], frame[ROW_COLUMN], strict=True):
            if isinstance(value, str) and "\x00" in value:
                sid = ids.get(row)
                rejects.append(
                    RowReject(
                        int(row),
                        f"{column}: {_NUL_REASON}",
                        None if sid is None else str(sid).replace("\x00", "\\0"),
                    )
                )
    return rejects


def _geojson_nul_rejects(path: Path) -> list[RowReject]:
    """GDAL cuts a GeoJSON string at a NUL (``"RC-N\\u0000J"`` is read as ``"RC-N"``), so
    the file itself is searched: each feature whose id or a property holds a NUL is a reject
    naming the feature (its row) and the property. Files without one are not parsed again."""
    with path.open("rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return []
        with data:
            if data.find(b"\\u0000") < 0 and data.find(b"\x00") < 0:
                return []
            text = data[:].decode("utf-8", errors="replace")
    try:
        document = json.loads(text, strict=False)
    except ValueError:
        return []  # not JSON GDAL understands either; it says so itself
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features") or []
    elif isinstance(document, dict) and document.get("type") == "Feature":
        features = [document]
    else:
        return []
    rejects: list[RowReject] = []
    for row, feature in enumerate(features, start=1):
        if not isinstance(feature, dict):
            continue
        fields: list[tuple[str, Any]] = [("id", feature.get("id"))]
        properties = feature.get("properties")
        if isinstance(properties, dict):
            fields += list(properties.items())
        for name, value in fields:
            if "\x00" in str(name) or _holds_nul(value):
                label = str(name).replace("\x00", "\\0")
                rejects.append(RowReject(row, f"{label}: {_NUL_REASON}"))
    return rejects


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _first_line(exc: Exception) -> str:
    return str(exc).split(";")[0].strip()


def _choose_layer(
    path: Path, layers: list[tuple[str, str | None]], kind: str, layer: str | None
) -> str:
    listing = ", ".join(f"{n} ({t or 'no geometry'})" for n, t in layers) or "none"
    if layer is not None:
        if layer not in [n for n, _ in layers]:
            raise InvalidInput(
                f"{path.name} has no layer {layer!r}; its layers: {listing}", field="layer"
            )
        return layer
    if len(layers) == 1:
        return layers[0][0]
    expected = EXPECTED[kind]
    for name, geometry_type in layers:
        if name.casefold() == kind and geometry_type and expected in geometry_type:
            return name
    raise InvalidInput(
        f"{path.name} has {len(layers)} layers; say which one holds the {kind}: {listing}",
        field="layer",
    )


# ---------------------------------------------------------------------------------------------
# CSV


def _read_csv(path: Path, kind: str, *, crs_given: bool, progress: Progress | None) -> _Raw:
    notes: list[str] = []
    table = _csv_table(path, notes)
    lon_col, lat_col, named_lonlat = _coordinate_columns(list(table.columns))
    rows = np.arange(2, len(table) + 2, dtype=np.int64)  # the header is row 1
    if lon_col is None or lat_col is None:
        if kind != "workers":
            raise InvalidInput(
                f"{path.name} is not geodata: no longitude/latitude columns "
                "(expected lon, lng or longitude and lat or latitude, or x and y); "
                f"its columns: {', '.join(map(str, table.columns)) or 'none'}",
                field="file",
            )
        frame = gpd.GeoDataFrame(table, geometry=[None] * len(table))
        frame[ROW_COLUMN] = rows
        return _Raw(frame, None, path.name, notes=notes, has_geometry=False)
    if not named_lonlat and not crs_given:
        raise CRSError(
            f"{path.name} has coordinate columns {lon_col!r}/{lat_col!r}, which may be projected "
            "metres; pass crs= (4326 if they are longitude/latitude degrees)",
            field="crs",
        )
    rejects: list[RowReject] = []
    xs, ys = (_coordinate_values(table[c], c, rows, rejects) for c in (lon_col, lat_col))
    ok = ~np.isnan(xs) & ~np.isnan(ys)  # NaN: unreadable, already a reject; inf is checked later
    points = np.full(len(table), None, dtype=object)
    points[ok] = shapely.points(xs[ok], ys[ok])
    frame = gpd.GeoDataFrame(table.drop(columns=[lon_col, lat_col]), geometry=list(points))
    frame[ROW_COLUMN] = rows
    if progress is not None:
        progress(len(frame), len(frame))
    wgs84 = pyproj.CRS.from_epsg(4326) if named_lonlat else None
    return _Raw(frame, None, path.name, rejects=rejects, notes=notes, default_crs=wgs84)


def _csv_table(path: Path, notes: list[str]) -> pd.DataFrame:
    """The CSV as text cells: UTF-8 (with or without BOM), else GB18030 as Chinese Excel saves."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with path.open(encoding=encoding, newline="") as handle:
                sample = handle.read(65536)
                handle.read()  # the whole file must decode, not only its start
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InvalidInput(f"{path.name} is not a text CSV file", field="file")
    if encoding == "gb18030":
        notes.append(f"{path.name} is not UTF-8; read it as GB18030 (Chinese Windows encoding)")
    if path.suffix.casefold() == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=delimiter, encoding=encoding)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{path.name} cannot be read as CSV ({_first_line(exc)})", field="file"
        ) from None


def _coordinate_columns(columns: list[Hashable]) -> tuple[str | None, str | None, bool]:
    """The longitude and latitude columns, and whether they are *named* lon/lat (not x/y)."""
    folded = {str(c).strip().casefold(): str(c) for c in columns}
    lon = next((folded[n] for n in _LON_NAMES if n in folded), None)
    lat = next((folded[n] for n in _LAT_NAMES if n in folded), None)
    if lon is not None and lat is not None:
        return lon, lat, True
    return folded.get("x"), folded.get("y"), False


def _coordinate_values(
    column: pd.Series, name: str, rows: np.ndarray, rejects: list[RowReject]
) -> np.ndarray:
    numbers = pd.to_numeric(column.str.strip(), errors="coerce").to_numpy(dtype=float)
    for i in np.flatnonzero(np.isnan(numbers)):
        text = str(column.iloc[i]).strip()
        reason = f"{name} is empty" if not text else f"{name} {text!r} is not a number"
        rejects.append(RowReject(int(rows[i]), reason))
    return numbers


# ---------------------------------------------------------------------------------------------
# OSM PBF through pyosmium


def _read_pbf(
    path: Path,
    kind: str,
    *,
    layer: str | None,
    id_field: str | None,
    crs: pyproj.CRS | None,
    progress: Progress | None,
) -> _Raw:
    if kind not in PBF_KINDS:
        raise InvalidInput(
            f"an OSM PBF file gives {', '.join(PBF_KINDS)}, not {kind}", field="kind"
        )
    if layer is not None:
        raise InvalidInput("an OSM PBF file has no layers; leave layer empty", field="layer")
    if id_field is not None:
        raise InvalidInput(
            "OSM objects are identified by their type and id (w123); leave id_field empty",
            field="id_field",
        )
    if crs is not None and not crs.equals("EPSG:4326", ignore_axis_order=True):
        raise CRSError(f"OSM data is always EPSG:4326, not {_crs_name(crs)}", field="crs")
    reader = {"roads": _osm_roads, "buildings": _osm_buildings, "facilities": _osm_facilities}
    collected = _OsmRows(_OSM_COLUMNS[kind], progress)
    try:
        reader[kind](str(path), collected)
    except RuntimeError as exc:  # libosmium reports unreadable input as RuntimeError
        raise InvalidInput(
            f"{path.name} is not a readable OSM PBF file ({exc})", field="file"
        ) from None
    frame = collected.frame(point_on_surface=kind == "facilities")
    if progress is not None:
        progress(collected.done, collected.done)
    return _Raw(
        frame, pyproj.CRS.from_epsg(4326), path.name, rejects=collected.rejects, normalised=True
    )


class _OsmRows:
    """Rows gathered from OSM objects, in file order, with the objects that had no geometry."""

    def __init__(self, names: tuple[str, ...], progress: Progress | None) -> None:
        self.progress = progress
        self.done = 0
        self.columns: dict[str, list[Any]] = {
            k: [] for k in (SOURCE_ID_COLUMN, ROW_COLUMN, "osm_id", *names)
        }
        self.wkb: list[str | None] = []
        self.rejects: list[RowReject] = []

    def add(self, source_id: str, osm_id: int, make: Callable[[], str], **values: Any) -> None:
        self.done += 1
        try:
            wkb: str | None = make()
        except (osmium.InvalidLocationError, RuntimeError) as exc:
            self.rejects.append(RowReject(self.done, f"no geometry: {exc}", source_id))
            wkb = None
        row = {SOURCE_ID_COLUMN: source_id, ROW_COLUMN: self.done, "osm_id": osm_id, **values}
        for key, value in row.items():
            self.columns[key].append(value)
        self.wkb.append(wkb)
        if self.progress is not None and self.done % 1000 == 0:
            self.progress(self.done, None)

    def add_area(
        self, factory: osmium.geom.WKBFactory, area: osmium.osm.Area, **values: Any
    ) -> None:
        """An area, named after the way or relation it was assembled from (``w12``, ``r34``)."""
        kind = "w" if area.from_way() else "r"
        make = partial(factory.create_multipolygon, area)
        self.add(f"{kind}{area.orig_id()}", area.orig_id(), make, **values)

    def frame(self, *, point_on_surface: bool) -> gpd.GeoDataFrame:
        geometry = shapely.from_wkb(np.asarray(self.wkb, dtype=object))
        if point_on_surface:
            areas = shapely.get_type_id(geometry) == 6
            geometry[areas] = shapely.point_on_surface(geometry[areas])
        data = {k: pd.Series(v, dtype=_OSM_DTYPES.get(k, object)) for k, v in self.columns.items()}
        return gpd.GeoDataFrame(data, geometry=list(geometry), crs="EPSG:4326")


_OSM_DTYPES: Final[dict[str, Any]] = {ROW_COLUMN: np.int64, "levels": float}
_OSM_COLUMNS: Final = {
    "roads": ("name", "road_class", "oneway"),
    "buildings": ("name", "building_type", "levels"),
    "facilities": ("kind", "name", "name_local", "capacity"),
}


def _osm_tag(tags: Any, key: str) -> str | None:
    value = tags.get(key)
    return None if value is None else str(value)


def _osm_roads(path: str, rows: _OsmRows) -> None:
    factory = osmium.geom.WKBFactory()
    processor = (
        osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        if not isinstance(way, osmium.osm.Way):
            continue
        tags = way.tags
        highway = tags.get("highway")
        if highway in _NOT_ROADS or tags.get("area") == "yes":
            continue
        oneway = tags.get("oneway")
        direction = (
            osmium.geom.direction.BACKWARD if oneway == "-1" else osmium.geom.direction.FORWARD
        )
        rows.add(
            f"w{way.id}",
            way.id,
            partial(factory.create_linestring, way, direction=direction),
            name=_osm_tag(tags, "name"),
            road_class=highway,
            oneway=_oneway(oneway),
        )


def _tagged(path: str, key: str, entities: osmium.osm.osm_entity_bits) -> osmium.FileProcessor:
    """The objects of ``entities`` tagged ``key``, areas assembled from the ways and
    relations so tagged (only those: assembling every area of a city costs minutes)."""
    return (
        osmium.FileProcessor(path)
        .with_areas(osmium.filter.KeyFilter(key))
        .with_filter(osmium.filter.EntityFilter(entities))
        .with_filter(osmium.filter.KeyFilter(key))
    )


def _osm_buildings(path: str, rows: _OsmRows) -> None:
    factory = osmium.geom.WKBFactory()
    for area in _tagged(path, "building", osmium.osm.AREA):
        if not isinstance(area, osmium.osm.Area):
            continue
        tags = area.tags
        if tags.get("building") == "no":
            continue
        levels = _lenient(_amount)(tags.get("building:levels"))
        rows.add_area(
            factory,
            area,
            name=_osm_tag(tags, "name"),
            building_type=_osm_tag(tags, "building"),
            levels=np.nan if levels is None else levels,
        )


def _osm_facilities(path: str, rows: _OsmRows) -> None:
    factory = osmium.geom.WKBFactory()
    for obj in _tagged(path, "amenity", osmium.osm.NODE | osmium.osm.AREA):
        tags = obj.tags
        values = {
            "kind": _osm_tag(tags, "amenity"),
            "name": _osm_tag(tags, "name"),
            "name_local": _osm_tag(tags, "name:zh"),
            "capacity": _lenient(_count)(tags.get("capacity")),
        }
        if isinstance(obj, osmium.osm.Node):
            rows.add(f"n{obj.id}", obj.id, partial(factory.create_point, obj), **values)
        elif isinstance(obj, osmium.osm.Area):
            rows.add_area(factory, obj, **values)


# ---------------------------------------------------------------------------------------------
# columns: personal data, ids, normalisation


def _drop_sensitive(frame: gpd.GeoDataFrame, notes: list[str], source: str) -> gpd.GeoDataFrame:
    sensitive = [c for c in frame.columns if c != frame.geometry.name and _SENSITIVE.search(str(c))]
    if sensitive:
        notes.append(
            f"dropped column(s) {', '.join(map(str, sensitive))} of {source}: personal data "
            "(ethnicity, religion, political views, identity numbers) is never stored"
        )
    return frame.drop(columns=sensitive)


def _source_ids(
    frame: gpd.GeoDataFrame, raw: _Raw, id_field: str | None
) -> tuple[pd.Series, str | None]:
    """The id of every row as text, and the column it came from (None: FID or row number)."""
    columns = [str(c) for c in frame.columns if c not in (frame.geometry.name, ROW_COLUMN)]
    by_name = {c.casefold(): c for c in columns}
    fid = raw.fid if raw.fid and raw.fid.casefold() not in by_name else None
    if id_field is not None:
        wanted = id_field.strip()
        if _SENSITIVE.search(wanted):
            raise InvalidInput(
                f"{wanted!r} is personal data and is never stored; choose another id column",
                field="id_field",
            )
        if fid is not None and wanted.casefold() == fid.casefold():
            return _id_text(pd.Series(frame.index, index=frame.index)), None
        column = wanted if wanted in columns else by_name.get(wanted.casefold())
        if column is None:
            available = ", ".join([*columns, *([fid] if fid else [])]) or "none"
            raise InvalidInput(
                f"{raw.source} has no column {id_field!r}; its columns: {available}",
                field="id_field",
            )
        return _id_text(frame[column]), column
    for candidate in _ID_CANDIDATES:
        if candidate in by_name:
            return _id_text(frame[by_name[candidate]]), by_name[candidate]
        if fid is not None and candidate == fid.casefold():
            return _id_text(pd.Series(frame.index, index=frame.index)), None
    return frame[ROW_COLUMN].astype(str).astype(object), None


def _id_text(values: pd.Series) -> pd.Series:
    return pd.Series([_text(v) for v in values], index=values.index, dtype=object)


def _id_rejects(frame: gpd.GeoDataFrame) -> list[RowReject]:
    rejects: list[RowReject] = []
    first: dict[str, int] = {}
    for sid, row in zip(frame[SOURCE_ID_COLUMN], frame[ROW_COLUMN], strict=True):
        if sid is None:
            rejects.append(RowReject(int(row), "the id is empty"))
        elif sid in first:
            rejects.append(RowReject(int(row), f"id {sid!r} already used at row {first[sid]}", sid))
        else:
            first.setdefault(sid, int(row))
    return rejects


def _normalise(
    frame: gpd.GeoDataFrame, kind: str, notes: list[str], *, id_column: str | None
) -> tuple[gpd.GeoDataFrame, list[RowReject]]:
    """The kind's columns from the file's, each value read by its field's rule."""
    by_name = {str(c).strip().casefold(): c for c in frame.columns}
    out = gpd.GeoDataFrame(
        {
            SOURCE_ID_COLUMN: frame[SOURCE_ID_COLUMN],
            ROW_COLUMN: frame[ROW_COLUMN].astype(np.int64),
        },
        geometry=frame.geometry.array,
        index=frame.index,
    )
    rejects: list[RowReject] = []
    used = {SOURCE_ID_COLUMN, ROW_COLUMN, frame.geometry.name, id_column}
    for spec in FIELDS[kind]:
        column = next((by_name[a] for a in spec.aliases if a in by_name), None)
        if column is None:
            continue
        used.add(column)
        values: list[Any] = []
        for raw_value, row, sid in zip(
            frame[column], frame[ROW_COLUMN], frame[SOURCE_ID_COLUMN], strict=True
        ):
            try:
                values.append(spec.parse(raw_value))
            except ValueError as exc:
                rejects.append(RowReject(int(row), f"{column}: {exc}", sid))
                values.append(None)
        if spec.decimal:
            out[spec.target] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            out[spec.target] = pd.Series(values, index=frame.index, dtype=object)
        if kind == "roads" and spec.target == "oneway":
            out = _reverse_oneway_against(out, frame[column])
    ignored = [str(c) for c in frame.columns if c not in used]
    if ignored:
        notes.append(f"ignored column(s) not used for {kind}: {', '.join(ignored)}")
    return out, rejects


def _reverse_oneway_against(frame: gpd.GeoDataFrame, oneway: pd.Series) -> gpd.GeoDataFrame:
    """Turn ``oneway=-1`` lines round, so a one-way road always runs the way it is drawn."""
    against = np.array([isinstance(v, str) and v.strip() == "-1" for v in oneway], dtype=bool)
    if not against.any():
        return frame
    geoms = np.asarray(frame.geometry.array, dtype=object).copy()
    geoms[against] = shapely.reverse(geoms[against])
    return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))


def _with_footprint(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add ``footprint_m2``, measured in the layer's UTM zone (never in degrees)."""
    if frame.empty:
        frame["footprint_m2"] = pd.Series(dtype=float)
        return frame
    metric = frame.geometry.to_crs(frame.estimate_utm_crs())
    frame["footprint_m2"] = metric.area.round(1).to_numpy()
    return frame
