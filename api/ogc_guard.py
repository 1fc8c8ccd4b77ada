"""The query parameters of /ogc, checked before tipg writes them into SQL.

tipg turns ``datetime``, ``filter``, ``ids``, ``offset``, ``limit``, ``simplify`` and filters
by a property's value into SQL text, and anything PostgreSQL (or the cql2 parser) then refuses
became a 500. :func:`check_request` refuses such values first, as a 422 naming the parameter
(400 for ``datetime`` on a layer without time), from the path and query string alone and the
catalog of collections, so the OGC wrapper can call it before tipg sees the request.

CQL2 filters are where most of it is:

* cql2's parser recurses on the C stack: a filter nested 2,000 deep crashed the whole server
  process. Filters are therefore parsed in a thread with a large stack, at most
  ``FILTER_MAX_CHARS`` long, and refused deeper than ``FILTER_MAX_DEPTH``; what passes is
  shallow enough for tipg to handle anywhere.
* cql2 passes any function name through to SQL (``pg_sleep(5)``, ``query_to_xml('select …
  from public.household', …)``), which would let a filter run arbitrary reads unaudited;
  only the operators and functions of the CQL2 standard are accepted.
* properties must be columns of the collection, and the filter must be a condition.
* ``filter-lang`` is honoured (tipg guesses the language whatever it says).

Type mismatches (``code = 1``) only PostgreSQL can see; the OGC app maps those errors to a
422 naming ``filter`` (see ``api.ogc``).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import cql2
from ciso8601 import parse_rfc3339  # the parser tipg itself uses for datetime
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from tipg.settings import FeaturesSettings, MVTSettings

from api.deps import parse_bbox
from geo.errors import GridworkError, InvalidInput

FILTER_MAX_CHARS = 16_000
FILTER_MAX_DEPTH = 64
_PARSE_STACK_BYTES = 128 * 1024 * 1024
"""16,000 characters of the deepest nesting need under 64 MB of stack in cql2's parser."""

BIGINT_MAX = 2**63 - 1
MAX_ZOOM = 24
"""The deepest zoom of the tile matrix set served (see ``api.ogc.tile_params``)."""
_INTEGER_BITS = {
    "smallint": 16, "smallserial": 16, "int2": 16,
    "integer": 32, "serial": 32, "int": 32, "int4": 32,
    "bigint": 64, "bigserial": 64, "int8": 64,
}  # fmt: skip
_FLOAT_TYPES = {"real", "double precision", "float4", "float8", "numeric", "decimal"}
_BOOLEAN_TYPES = {"boolean", "bool"}
_BOOLEAN_WORDS = {"t", "f", "true", "false", "y", "n", "yes", "no", "on", "off", "1", "0"}
_GEOMETRY_TYPES = {"geometry", "geography"}

_CONDITIONS = {
    "and", "or", "not", "=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "isnull",
    "s_intersects", "s_equals", "s_disjoint", "s_touches", "s_within", "s_overlaps",
    "s_crosses", "s_contains",
    "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby",
    "t_finishes", "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps",
    "t_startedby", "t_starts",
    "a_equals", "a_contains", "a_containedby", "a_overlaps",
}  # fmt: skip
_OPERATORS = _CONDITIONS | {"casei", "+", "-", "*", "/", "%", "^", "div"}
"""CQL2's own operators (``accenti`` is left out: PostgreSQL has no function for it)."""

# Query parameters tipg takes as its own; any other one named like a column filters by value.
_RESERVED = {
    "f", "ids", "datetime", "bbox", "properties", "filter", "filter-lang", "geom-column",
    "datetime-column", "limit", "offset", "bbox-only", "simplify", "sortby",
}  # fmt: skip
_COLLECTION = re.compile(r"^/collections/(?P<collection>[^/]+)(?P<rest>/.*)?$")
_ITEMS = re.compile(r"^/items(?:/(?P<item>[^/]+))?/?$")
_TILE = re.compile(r"^/tiles/[^/]+/[^/]+/[^/]+/[^/]+/?$")

_INT = TypeAdapter(int)
_FLOAT = TypeAdapter(float)
_stack_size_lock = threading.Lock()


class NotApplicable(GridworkError):
    """A parameter this collection cannot honour (``datetime`` on a layer without time): 400."""


def check_request(path: str, query: QueryParams, collections: Mapping[str, Any]) -> None:
    """Refuse, naming the parameter, what tipg would otherwise send to PostgreSQL as it is.

    ``path`` is the route inside the OGC app (``/collections/ogc.grids/items``), ``query``
    its query string, ``collections`` tipg's catalog (id → ``tipg.collections.Collection``).
    """
    for value in query.getlist("datetime"):
        check_datetime(value)
    for value in query.getlist("bbox"):
        # The collections list reads bbox through tipg's own parser, which a word makes
        # a 500; the items' and tiles' own check says the same as this one (api.ogc).
        if value:
            parse_bbox(value)
    in_collection = _COLLECTION.match(path)
    if in_collection is None:
        return
    collection = collections.get(in_collection["collection"])
    if collection is None:
        return  # tipg answers 404 before it reads anything else
    rest = in_collection["rest"] or ""
    items, tile = _ITEMS.match(rest), _TILE.match(rest)
    for value in query.getlist("geom-column"):
        _check_geometry_column(value, collection, none_allowed=items is not None)
    for name in ("minzoom", "maxzoom"):  # tilejson.json and style.json
        for value in query.getlist(name):
            _check_integer(value, name, 0, MAX_ZOOM)
    if not (items or tile):
        return
    for value in query.getlist("simplify"):
        _check_simplify(value)
    if items and items["item"] is not None:
        _check_id(items["item"], collection, "itemId", allow_text=True)
        return
    max_limit = (
        FeaturesSettings().max_features_per_query if items else MVTSettings().max_features_per_tile
    )
    for value in query.getlist("limit"):
        _check_integer(value, "limit", 0, max_limit)
    for value in query.getlist("offset"):
        _check_integer(value, "offset", 0, BIGINT_MAX)
    for value in query.getlist("ids"):
        for one in value.split(",") if value else ():
            _check_id(one, collection, "ids", allow_text=False)
    if any(query.getlist("datetime")) and not collection.datetime_columns:
        raise NotApplicable(
            f"{collection.id} has no time column, so it cannot be filtered by time",
            field="datetime",
        )
    filters = query.getlist("filter")
    languages = query.getlist("filter-lang")
    for value in languages:
        if value not in ("cql2-text", "cql2-json"):
            raise InvalidInput(f"{value!r} is not cql2-text or cql2-json", field="filter-lang")
    for value in filters:
        tree = parse_filter(value, languages[-1] if languages else None)
        _check_properties(tree, collection)
    _check_filters_by_value(query, collection)


def check_datetime(value: str) -> None:
    """An RFC 3339 instant, or an interval ``start/end`` with ``..`` (or nothing) for open."""
    if not value:
        return  # tipg reads an empty datetime as none
    parts = value.split("/")
    if len(parts) > 2:
        raise InvalidInput(
            f"{value!r} is neither an instant nor an interval start/end", field="datetime"
        )
    bounds: list[datetime | None] = []
    for part in parts:
        if len(parts) == 2 and part in ("..", ""):
            bounds.append(None)
            continue
        try:
            bounds.append(parse_rfc3339(part))
        except ValueError:
            raise InvalidInput(
                f"{part!r} is not an RFC 3339 date-time (such as 2024-05-01T08:00:00Z)",
                field="datetime",
            ) from None
    if len(bounds) == 2:
        start, end = bounds
        if start is None and end is None:
            raise InvalidInput("an interval needs a start or an end", field="datetime")
        if start is not None and end is not None and start > end:
            raise InvalidInput(f"the interval {value!r} ends before it starts", field="datetime")


def parse_filter(text: str, language: str | None) -> Any:
    """A CQL2 filter as its JSON tree, in ``language`` (guessed as tipg does when ``None``):
    refused, naming ``filter``, if it does not parse, is not a condition, calls anything but
    CQL2's operators, holds a number that is not finite, or nests deeper than
    ``FILTER_MAX_DEPTH``."""
    if len(text) > FILTER_MAX_CHARS:
        raise InvalidInput(
            f"is {len(text):,} characters long; at most {FILTER_MAX_CHARS:,} are accepted",
            field="filter",
        )
    tree, error = _parse_with_a_large_stack(text, language)
    if error is not None:
        reason = " ".join(str(error).split())[:300]
        what = f"valid {language}" if language else "valid cql2-text or cql2-json"
        raise InvalidInput(f"is not {what}: {reason}", field="filter")
    _check_shape(tree)
    return tree


def bbox_literals_as_polygons(node: Any) -> Any:
    """The tree with every ``BBOX(…)`` literal as a GeoJSON polygon: cql2 writes a bbox as an
    envelope without SRID, which PostGIS refuses to compare with the layers' EPSG:4326, while a
    polygon is read as EPSG:4326. ``node`` must have passed :func:`parse_filter` (it is shallow)."""
    if isinstance(node, list):
        return [bbox_literals_as_polygons(n) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"} and isinstance(node["bbox"], list) and len(node["bbox"]) in (4, 6):
        box = node["bbox"]
        west, south, east, north = box if len(box) == 4 else (box[0], box[1], box[3], box[4])
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {"type": "Polygon", "coordinates": [ring]}
    return {key: bbox_literals_as_polygons(value) for key, value in node.items()}


def _parse_with_a_large_stack(text: str, language: str | None) -> tuple[Any, Exception | None]:
    outcome: list[Any] = []

    def parse() -> None:
        try:
            if language == "cql2-json":
                expr = cql2.parse_json(text)
            elif language == "cql2-text":
                expr = cql2.parse_text(text)
            else:
                expr = cql2.Expr(text)
            outcome.append((expr.to_json(), None))
        except Exception as exc:  # cql2 raises ParseError, ValueError and bare Exception
            outcome.append((None, exc))

    with _stack_size_lock:
        previous = threading.stack_size(_PARSE_STACK_BYTES)
        try:
            worker = threading.Thread(target=parse, name="cql2-parse", daemon=True)
            worker.start()
        finally:
            threading.stack_size(previous)
    worker.join()
    tree, error = outcome[0]
    return tree, error


def _check_shape(tree: Any) -> None:
    if not (isinstance(tree, bool) or _operator(tree) in _CONDITIONS):
        raise InvalidInput(
            "must be a condition (a comparison, LIKE, IN, BETWEEN, IS NULL, a spatial, "
            "temporal or array predicate, or AND/OR/NOT of them), not a value",
            field="filter",
        )
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > FILTER_MAX_DEPTH:
            raise InvalidInput(f"nests deeper than {FILTER_MAX_DEPTH} levels", field="filter")
        if isinstance(node, float) and not math.isfinite(node):
            raise InvalidInput("numbers must be finite", field="filter")
        if isinstance(node, dict):
            op = _operator(node)
            if "op" in node and op not in _OPERATORS:
                raise InvalidInput(
                    f"{node['op']!r} is not a CQL2 operator or function this server "
                    "supports (functions of the database cannot be called)",
                    field="filter",
                )
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def _operator(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("op"), str):
        return str(node["op"]).lower()
    return None


def _properties(node: Any) -> Iterable[Any]:
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "property" in node:
                yield node["property"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_properties(tree: Any, collection: Any) -> None:
    columns = {column.name for column in collection.properties}
    for name in _properties(tree):
        if name not in columns:
            raise InvalidInput(
                f"{name!r} is not a property of {collection.id} "
                f"(its properties: {', '.join(sorted(columns))})",
                field="filter",
            )


def _check_geometry_column(value: str, collection: Any, *, none_allowed: bool) -> None:
    names = [column.name for column in collection.geometry_columns]
    if value in names or (none_allowed and value.lower() == "none"):
        return
    choices = " or ".join(repr(n) for n in [*names, *(["none"] if none_allowed else [])])
    raise InvalidInput(
        f"{value!r} is not a geometry column of {collection.id} ({choices})",
        field="geom-column",
    )


def _check_integer(value: str, field: str, low: int, high: int) -> int:
    try:
        number = _INT.validate_python(value)
    except ValidationError:
        raise InvalidInput(f"{value!r} is not an integer", field=field) from None
    if not low <= number <= high:
        raise InvalidInput(f"must be from {low} to {high}, not {value}", field=field)
    return number


def _check_simplify(value: str) -> None:
    try:
        tolerance = _FLOAT.validate_python(value)
    except ValidationError:
        raise InvalidInput(f"{value!r} is not a number", field="simplify") from None
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidInput(f"must be a finite tolerance ≥ 0, not {value}", field="simplify")


def _integer_range(pg_type: str) -> tuple[int, int] | None:
    bits = _INTEGER_BITS.get(pg_type)
    return None if bits is None else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _check_id(value: str, collection: Any, field: str, *, allow_text: bool) -> None:
    """An id of an integer id column must be an integer that column can hold. A path's item
    id that is no integer at all is left to tipg (404, no such item), as OGC clients expect."""
    column = collection.id_column
    bounds = None if column is None else _integer_range(column.type)
    if bounds is None:
        return
    try:
        number = int(value)  # how tipg reads it
    except ValueError:
        if allow_text:
            return
        raise InvalidInput(
            f"{value!r} is not an integer, and the ids of {collection.id} are", field=field
        ) from None
    low, high = bounds
    if not low <= number <= high:
        raise InvalidInput(
            f"{value} is outside the range of {collection.id}'s ids ({column.type}: "
            f"{low} to {high})",
            field=field,
        )


def _check_filters_by_value(query: QueryParams, collection: Any) -> None:
    columns = {column.name: column for column in collection.properties}
    for key, value in query.multi_items():
        column = columns.get(key)
        if key.lower() in _RESERVED or column is None:
            continue  # tipg answers 404 for a key that matches a column only without case
        pg_type = column.type.lower()
        if (bounds := _integer_range(pg_type)) is not None:
            if not re.fullmatch(r"\s*[+-]?\d+\s*", value) or not (
                bounds[0] <= int(value) <= bounds[1]
            ):
                raise InvalidInput(
                    f"{value!r} is not an integer {key} can hold ({pg_type}: "
                    f"{bounds[0]} to {bounds[1]})",
                    field=key,
                )
        elif pg_type in _FLOAT_TYPES:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise InvalidInput(f"{value!r} is not a finite number", field=key)
        elif pg_type in _BOOLEAN_TYPES:
            if value.strip().lower() not in _BOOLEAN_WORDS:
                raise InvalidInput(f"{value!r} is not true or false", field=key)
        elif pg_type in _GEOMETRY_TYPES or column.geometry_type is not None:
            raise InvalidInput(
                "a geometry cannot be matched by value; use bbox, or a filter such as "
                f"S_INTERSECTS({key}, POINT(lon lat))",
                field=key,
            )
