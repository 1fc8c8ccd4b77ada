"""OGC API – Features and Tiles for QGIS, GDAL, OWSLib and MapLibre, served by tipg at /ogc.

What is served is the ``ogc`` schema of views (migration 0005): streets, communities,
current grids with their household count and worker, roads and facilities. Nothing else is
registered, so households, elders and positions cannot be asked for.

Access: these layers are district-wide (not cut to an area), so ``/ogc/*`` answers only to
a principal whose scope is unrestricted — an admin, or an API key made with
``gridwork key add NAME --role admin`` for an integration. Everyone else gets 401 (no
credentials) or 403. Clients send ``Authorization: Bearer <token>`` or ``X-API-Key: <key>``
(OWSLib: ``Features(url, headers=...)``; GDAL: ``GDAL_HTTP_HEADERS="X-API-Key: ..."``).
The check wraps the whole sub-app, its OpenAPI document and docs included.

tipg is used as a library, not as its app: its factories give the routes, but its HTML
templates load Bootstrap, jQuery and Leaflet from CDNs, so every template is replaced by
one plain page of our own; its bbox and tile parameters are replaced by checked ones (a
bbox with min > max, a tile outside the matrix: 422 naming the parameter); every other
parameter that tipg writes into SQL (datetime, CQL2 filters, ids, offset, limit, simplify,
filters by value) is checked by :mod:`api.ogc_guard` before tipg sees the request, and what
only PostgreSQL can refuse in a filter (``code = 1``) comes back as a 422 naming ``filter``,
never a 500; and because
asyncpg pools belong to one event loop, the pool is made per loop on first use (tests run
several loops over one app; uvicorn runs one). With a hot standby
(``GRIDWORK_READ_DATABASE_URL``, :mod:`data.replica`) a second pool reads the features and
tiles there while the standby may be read; tipg's catalog is read on the primary. Tiles
are kept in memory and served again while the store's versions of what they show are
unchanged (:mod:`api.tile_cache`); the grid tiles are drawn from the outlines the store keeps
in Web Mercator (:mod:`api.grid_tiles`).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import weakref
from collections.abc import Callable
from typing import Annotated, Any, Literal

import asyncpg
import jinja2
import morecantile
import orjson
from cql2 import Expr
from fastapi import FastAPI, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from morecantile import Tile
from sqlalchemy import Engine
from starlette.datastructures import QueryParams
from starlette.templating import Jinja2Templates
from starlette.types import Message, Receive, Scope, Send
from tipg import dependencies as tipg_deps
from tipg import errors as tipg_errors
from tipg import factory as tipg_factory
from tipg.collections import pg_get_collection_index
from tipg.database import connection_factory
from tipg.dependencies import TileParams
from tipg.dependencies import bbox_query as tipg_bbox_query
from tipg.factory import Endpoints
from tipg.openapi import _update_openapi
from tipg.settings import DatabaseSettings

from api.deps import parse_bbox
from api.errors import add_exception_handlers, problem, status_for
from api.grid_tiles import with_stored_shapes
from api.ogc_guard import bbox_literals_as_polygons, check_request, parse_filter
from api.security import Principal, optional_principal
from api.state import AppState, app_state
from api.tile_cache import (
    GRID_TILE_KEY,
    GRID_TILE_TABLES,
    SOURCES,
    VERSIONS_SQL,
    TileCache,
    grid_tile_envelope,
    tile_collection,
)
from geo.errors import Forbidden, GridworkError, InvalidInput, Unauthorized

SCHEMA = "ogc"
TMS_ID = "WebMercatorQuad"
CATALOG_TTL_S = 300.0
"""Collections (and their extents) are re-read at most this often."""

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ template.title }}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;max-height:70vh}</style></head><body>
<p>{% for c in crumbs %}<a href="{{ c.url }}">{{ c.part }}</a>{% if not loop.last %} / {% endif %}
{% endfor %}</p>
<h1>{{ template.title }}</h1>
{% if response.links %}<ul>{% for l in response.links %}
<li><a href="{{ l.href }}">{{ l.title or l.rel }}</a> <small>({{ l.rel }})</small></li>
{% endfor %}</ul>{% endif %}
<p>JSON: add <code>?f=json</code>. Standard clients (QGIS, GDAL, OWSLib) read this API
directly.</p>
<pre>{{ response | tojson(indent=2) }}</pre></body></html>"""
_TEMPLATE_NAMES = [
    "landing",
    "conformance",
    "collections",
    "collection",
    "items",
    "item",
    "queryables",
    "tilematrixsets",
    "tilematrixset",
    "tilesets",
    "tileset",
    "map",
    "viewer",
    "debug",
    "header",
    "footer",
]


def _templates() -> Jinja2Templates:
    """One offline page for every template tipg may render (tipg's own use CDNs)."""
    loader = jinja2.DictLoader({f"{name}.html": _TEMPLATE for name in _TEMPLATE_NAMES})
    return Jinja2Templates(env=jinja2.Environment(loader=loader, autoescape=True))


async def bbox_query(
    bbox: Annotated[
        str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS-84)", max_length=200)
    ] = None,
) -> list[float] | None:
    """tipg's bbox, but refusing min > max and non-numbers with 422 naming ``bbox``."""
    return None if bbox is None else list(parse_bbox(bbox))


async def tile_params(
    z: Annotated[int, Path(description="zoom level (TileMatrix), 0–24")],
    x: Annotated[int, Path(description="column, 0 to 2^z − 1")],
    y: Annotated[int, Path(description="row, 0 to 2^z − 1")],
) -> Tile:
    """A tile inside the WebMercatorQuad matrix, else 422 naming z, x or y."""
    if not 0 <= z <= 24:
        raise InvalidInput(f"zoom {z} is outside the tile matrix set's 0–24", field="z")
    size = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < size:
            raise InvalidInput(
                f"{value} is outside the matrix at zoom {z} (0–{size - 1})", field=name
            )
    return Tile(x, y, z)


async def filter_query(
    query: Annotated[str | None, Query(alias="filter", description="CQL2 filter")] = None,
    filter_lang: Annotated[
        Literal["cql2-text", "cql2-json"] | None,
        Query(alias="filter-lang", description="cql2-text or cql2-json (guessed if absent)"),
    ] = None,
) -> Expr | None:
    """tipg's filter, parsed in the language ``filter-lang`` declares (tipg guesses it) and
    refused with 422 naming ``filter`` if it does not parse or calls what CQL2 does not have;
    ``BBOX(…)`` literals become polygons in EPSG:4326 (see
    :func:`api.ogc_guard.bbox_literals_as_polygons`)."""
    if query is None:
        return None
    return Expr(bbox_literals_as_polygons(parse_filter(query, filter_lang)))


# Only what PostgreSQL sees can refuse these in a filter: 22 (data exceptions: invalid text
# for an integer, out of range, a bad LIKE escape), and type errors (operator or function does
# not exist for these types, datatype mismatch, cannot coerce, unknown type).
_FILTER_SQLSTATES = ("42883", "42804", "42725", "42704", "42846", "42P18", "42P08")


async def _filter_refused_by_database(request: Request, exc: Exception) -> JSONResponse:
    """A filter PostgreSQL cannot evaluate is the caller's to fix: 422 naming ``filter``.
    Any other database error, or one on a request without a filter, stays a server fault."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    if "filter" in request.query_params and (
        sqlstate.startswith("22") or sqlstate in _FILTER_SQLSTATES
    ):
        reason = " ".join(str(exc).split())[:300]
        return problem(
            422, "InvalidInput", f"filter: the database cannot evaluate it: {reason}",
            field="filter",
        )  # fmt: skip
    raise exc


async def _no_time_column(_: Request, exc: Exception) -> JSONResponse:
    return problem(400, "NotApplicable", f"datetime: {exc}", field="datetime")


# tipg's parameter parsers are plain functions, so FastAPI runs each in the thread pool: a
# tile paid eight thread hops (~8 ms of its ~16) before its query. They do no I/O, so they
# run in the event loop instead.
_PURE_DEPENDENCIES = (
    tipg_deps.CollectionParams,
    tipg_deps.CollectionsParams,
    tipg_deps.OutputType,
    tipg_deps.ItemsOutputType,
    tipg_deps.ItemOutputType,
    tipg_deps.QueryablesOutputType,
    tipg_deps.ids_query,
    tipg_deps.datetime_query,
    tipg_deps.properties_query,
    tipg_deps.sortby_query,
)


def _in_loop(dependency: Callable[..., Any]) -> Callable[..., Any]:
    """The same dependency (same parameters, same answer) as a coroutine function."""

    @functools.wraps(dependency)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return dependency(*args, **kwargs)

    return run


class LoopPools:
    """asyncpg pools per event loop and server, made on first use; ``acquire`` as tipg
    expects it, from the pool :meth:`ready` gave last in this request's context."""

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[asyncpg.Pool]]
        ] = weakref.WeakKeyDictionary()
        self._chosen: contextvars.ContextVar[asyncpg.Pool] = contextvars.ContextVar("ogc_pool")
        # Per loop and server, the feed's epoch its pool serves (an asyncpg pool takes no weak
        # reference, and an id could be reused once a loop's pool is closed).
        self._epochs: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, int | None]
        ] = weakref.WeakKeyDictionary()

    async def ready(
        self, engine: Engine, *, standby: bool = False, epoch: int | None = None
    ) -> asyncpg.Pool:
        """This loop's pool to ``engine``'s database (same server and credentials), the one
        the request's queries use from now on. A standby's connections skip tipg's catalog
        functions, which a hot standby refuses to create: the catalog is read on the
        primary (:func:`_refresh_catalog`). ``epoch``: the change feed's
        (:attr:`data.changes.ChangeFeed.epoch`); when it moved (a restore, or the feed lost
        and found the database) the pool's connections are replaced as they come back, since
        their prepared statements may name tables the restore dropped."""
        pool = await self._pool(engine, standby=standby)
        served = self._epochs.setdefault(asyncio.get_running_loop(), {})
        dsn = _dsn(engine)
        if served.setdefault(dsn, epoch) != epoch:
            served[dsn] = epoch
            await pool.expire_connections()
        self._chosen.set(pool)
        return pool

    async def _pool(self, engine: Engine, *, standby: bool) -> asyncpg.Pool:
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        dsn = _dsn(engine)
        task = pools.get(dsn)
        if task is None:
            init = _standby_connection if standby else connection_factory([SCHEMA], "pg_temp")
            # A standby gone from the network fails in seconds: the primary then serves.
            timeout = 2.0 if standby else 60.0  # (asyncpg's default)

            async def create() -> asyncpg.Pool:
                return await asyncpg.create_pool(
                    dsn, min_size=1, max_size=4, init=init, timeout=timeout,
                    server_settings=_SESSION,
                )  # fmt: skip

            task = pools[dsn] = asyncio.get_running_loop().create_task(create())
        try:
            pool: asyncpg.Pool = await task
        except BaseException:
            if pools.get(dsn) is task:  # a server that was down: try again next time
                del pools[dsn]
                self._epochs.get(asyncio.get_running_loop(), {}).pop(dsn, None)
            raise
        return pool

    def acquire(self) -> Any:
        return self._chosen.get().acquire()

    async def close(self) -> None:
        """Close this loop's pools (an app's lifespan ends in the loop that served it)."""
        self._epochs.pop(asyncio.get_running_loop(), None)
        for task in self._pools.pop(asyncio.get_running_loop(), {}).values():
            if task.done() and not task.exception():
                await task.result().close()


def _dsn(engine: Engine) -> str:
    """asyncpg's address of ``engine``'s database (same server and credentials)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


# A tile's query is costed far above jit_above_cost (ST_AsMVTGeom over thousands of rows),
# and compiling it took ~13 of a cold z10 tile's ~40 ms in PostgreSQL for nothing: every
# query tipg sends is one short statement. A startup setting, not a SET: asyncpg runs
# RESET ALL whenever a connection goes back to the pool.
_SESSION = {"jit": "off"}


async def _standby_connection(conn: asyncpg.Connection) -> None:
    """tipg's connection set-up (JSON codecs, search path) without its catalog functions."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog"
        )
    await conn.execute(
        f"SELECT set_config('search_path', 'pg_temp,{SCHEMA},' || "
        "current_setting('search_path', false), false)"
    )


async def _read_from_standby(pools: LoopPools, state: AppState, epoch: int | None) -> None:
    """Switch the request to the standby's pool while reads may go there (the layers and
    tiles are not personal: :mod:`data.replica`); one that cannot be reached is marked down
    and the request stays on the primary's."""
    reads = state.reads
    if reads is None or reads.engine() is not reads.standby:
        return
    try:
        await pools.ready(reads.standby, standby=True, epoch=epoch)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reads.fall_back(exc)


async def _refresh_catalog(app: FastAPI) -> None:
    catalog = getattr(app.state, "collection_catalog", None)
    now = dt.datetime.now()
    if catalog is not None and (now - catalog["last_updated"]).total_seconds() < CATALOG_TTL_S:
        return
    async with app.state.pool.acquire() as conn:
        found = await pg_get_collection_index(
            conn,
            settings=DatabaseSettings(
                schemas=[SCHEMA],
                functions=[],
                exclude_function_schemas=None,
                spatial_extent=True,
                datetime_extent=False,
            ),
        )
    collections = [with_stored_shapes(c) for c in found if c.id.startswith(f"{SCHEMA}.")]
    for collection in collections:
        _clamp_to_tile_matrix_set(collection)
    app.state.collection_catalog = {
        "collections": {c.id: c for c in collections},
        "last_updated": now,
    }


def _problem_for(exc: GridworkError) -> JSONResponse:
    extra = {"field": exc.field} if exc.field else {}
    return problem(status_for(exc), type(exc).__name__, str(exc), **extra)


def _clamp_to_tile_matrix_set(collection: Any) -> None:
    """Keep each geometry column's extent inside WebMercatorQuad's: an empty layer's extent
    is the whole globe (±90°), which tipg's tileset page cannot place in the matrix (a 500)."""
    west, south, east, north = morecantile.tms.get(TMS_ID).bbox
    columns = [*collection.table_columns, *collection.properties, collection.geometry_column]
    for column in columns:
        if column is not None and column.is_geometry and column.bounds:
            w, s, e, n = column.bounds[:4]
            column.bounds = [max(w, west), max(s, south), min(e, east), min(n, north)]


def district_wide(principal: Principal | None) -> Principal:
    """Only callers who may see the whole district read the unscoped OGC layers."""
    if principal is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>' or X-API-Key")
    if not principal.scope.unrestricted:
        raise Forbidden(
            "the OGC layers cover the whole district; they need an admin or a district-wide "
            "API key (gridwork key add NAME --role admin)"
        )
    return principal


class DistrictWideOnly:
    """Deny by default around the whole OGC sub-app: every path, docs and OpenAPI included."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # scope["app"] is still the outer app here
        try:
            district_wide(await optional_principal(request))
        except GridworkError as exc:
            await _problem_for(exc)(scope, receive, send)
            return
        state = app_state(request)
        await self.prepare(state)
        try:
            check_request(
                _route_path(scope),
                QueryParams(scope.get("query_string", b"")),
                self.app.state.collection_catalog["collections"],
            )
        except GridworkError as exc:
            await _problem_for(exc)(scope, receive, send)
            return
        # url_for inside the sub-app must find its own routes (/api, /api.html), not the
        # outer app's, which Starlette would otherwise search first.
        scope["router"] = self.app.router
        # ... and absolute links (tipg's, OpenAPI's) must keep the /ogc prefix: Starlette
        # builds base_url from app_root_path, the outermost root, unless told otherwise.
        scope["app_root_path"] = scope.get("root_path", "")
        collection = tile_collection(_route_path(scope))
        feed = state.changes
        if collection is not None and feed is not None and feed.live:
            await self._tile(collection, feed.epoch, scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def prepare(self, state: AppState) -> None:
        """Connect the sub-app to ``state``'s database in this event loop: the pool (made
        again after a restore), tipg's catalog, and the standby's pool while reads go there."""
        epoch = None if state.changes is None else state.changes.epoch
        if getattr(self.app.state, "catalog_epoch", epoch) != epoch:
            self.app.state.collection_catalog = None  # a restore: read the catalog again
        self.app.state.catalog_epoch = epoch
        await self.app.state.pool.ready(state.engine, epoch=epoch)
        await _refresh_catalog(self.app)  # on the primary: tipg's catalog functions
        await _read_from_standby(self.app.state.pool, state, epoch)

    async def keep_tile(self, state: AppState, path: str) -> str:
        """Make sure the tile at ``path`` (``/collections/…/z/x/y``, no query string, as the
        viewer asks for it) is in this process's cache, drawing it only if what it shows
        changed, for :mod:`api.tile_seeder`. Not a request: no caller, no counting in the
        cache's figures. Returns ``hit``, ``unchanged``, ``joined`` or ``drawn`` ('' while
        the change feed is not live: nothing is cached then)."""
        feed = state.changes
        collection = tile_collection(path)
        if collection is None or feed is None or not feed.live:
            return ""
        await self.prepare(state)
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "server": ("gridwork-tile-seeder", 0),
            "client": None,
            "root_path": "",
            "app_root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [],
            "state": {},
            "router": self.app.router,
        }
        statuses: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))

        found = await self._tile(collection, feed.epoch, scope, receive, discard, counting=False)
        if statuses and statuses[0] != 200:
            raise RuntimeError(f"tile {path}: HTTP {statuses[0]}")
        return found

    async def _tile(
        self,
        collection: str,
        epoch: int,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        counting: bool = True,
    ) -> str:
        """A tile from this process's :class:`~api.tile_cache.TileCache` while the versions
        of what it shows, read on the server the tile is read from, are those it was kept
        under, or, for a grid tile, after they changed, while the grids under it are as they
        were (read only then: ~14 ms for a z10 tile of the full megacity); else from tipg,
        kept for next time; a request for a tile whose drawing is under way waits for it
        (:meth:`~api.tile_cache.TileCache.flight`). Returns ``hit``, ``unchanged``,
        ``joined`` or ``drawn``."""
        path = _route_path(scope)
        envelope = grid_tile_envelope(path)
        async with self.app.state.pool.acquire() as conn:
            grids, tables = await conn.fetchrow(VERSIONS_SQL, list(SOURCES[collection]))
        version = (epoch, grids, tuple(tables))
        key = (path, bytes(scope.get("query_string", b"")))
        cache: TileCache = self.app.state.tiles
        if await cache.serve(key, version, send, counting=counting):
            return "hit"
        under: tuple[object, ...] | None = None
        if envelope is not None:
            # Something the grid tiles show changed somewhere: was it under this tile?
            async with self.app.state.pool.acquire() as conn:
                row = await conn.fetchrow(GRID_TILE_KEY, *envelope, list(GRID_TILE_TABLES))
            under = (epoch, *row[:3], tuple(row[3]))
            if await cache.serve_unchanged(key, under, version, send, counting=counting):
                return "unchanged"
        flight, mine = cache.flight(key)
        if not mine:  # the same tile is being drawn: take it from there
            await asyncio.shield(flight)
            if await cache.serve(key, version, send, counting=counting, joined=True):
                return "joined"
            # (not kept, or drawn under other versions: drawn here too)
        cache.drawn(counting=counting)
        try:
            await self.app(scope, receive, cache.keeping(key, version, send, under=under))
        finally:
            if mine:
                cache.landed(key, flight)
        return "drawn"


def _route_path(scope: Scope) -> str:
    """The path inside the OGC app (``/collections/…``), whether or not the mount stripped
    its prefix."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


class _SharedTileMatrixSets(morecantile.TileMatrixSets):
    """The tile matrix sets, handed out as they are: morecantile's copies the whole set on
    every ``get``, once per tile request (~0.5 ms); nothing here changes one."""

    def get(self, identifier: str) -> morecantile.TileMatrixSet:
        found = self.tilematrixsets.get(identifier)
        if isinstance(found, morecantile.TileMatrixSet):
            return found
        return super().get(identifier)


def _endpoints(replacements: dict[Any, Callable[..., Any]], **options: Any) -> Endpoints:
    """tipg's endpoints, built with ``replacements`` in place of its own dependencies.

    tipg's routes name their dependencies when :class:`Endpoints` is built, from its factory
    module's names, so those names point at ours while it is built (and at tipg's again
    after). ``app.dependency_overrides`` would do the same per request, but while it holds
    anything FastAPI analyses the signature of every dependency of a route again on every
    request (``get_dependant``): ~7 ms of a cold tile's ~15 ms, measured in-process."""
    by_identity = {id(theirs): ours for theirs, ours in replacements.items()}
    names = {
        name: by_identity[id(value)]
        for name, value in vars(tipg_factory).items()
        if id(value) in by_identity
    }
    saved = {name: getattr(tipg_factory, name) for name in names}
    try:
        for name, ours in names.items():
            setattr(tipg_factory, name, ours)
        collection = replacements.get(tipg_deps.CollectionParams, tipg_deps.CollectionParams)
        return Endpoints(collection_dependency=collection, **options)
    finally:
        for name, theirs in saved.items():
            setattr(tipg_factory, name, theirs)


def create_ogc_app() -> FastAPI:
    """The OGC sub-app; mount it wrapped in :class:`DistrictWideOnly`, which connects it to
    the outer app's database on first use (an asyncpg pool per event loop)."""
    app = FastAPIOffline(
        title="gridwork OGC API – Features and Tiles",
        description="Non-personal layers of gridwork: streets, communities, grids (with "
        "households counted and the grid worker), roads and facilities.",
        version="0.1.0",
        openapi_url="/api",
        docs_url=None,
        redoc_url=None,
        static_url="/static-docs",
    )
    endpoints = _endpoints(
        {
            tipg_bbox_query: bbox_query,
            TileParams: tile_params,
            tipg_deps.filter_query: filter_query,
            **{dependency: _in_loop(dependency) for dependency in _PURE_DEPENDENCIES},
        },
        title="gridwork OGC API",
        templates=_templates(),
        with_tiles_viewer=False,
        supported_tms=_SharedTileMatrixSets({TMS_ID: morecantile.tms.get(TMS_ID)}),
    )
    app.include_router(endpoints.router)
    _update_openapi(app)
    add_exception_handlers(app)
    tipg_errors.add_exception_handlers(
        app,
        {
            cls: code
            for cls, code in tipg_errors.DEFAULT_STATUS_CODES.items()
            if code < 500 and issubclass(cls, tipg_errors.TiPgError)
        },
    )
    app.add_exception_handler(tipg_errors.MissingDatetimeColumn, _no_time_column)
    app.add_exception_handler(asyncpg.PostgresError, _filter_refused_by_database)

    @app.get("/api.html", include_in_schema=False, name="swagger_ui_html")
    async def swagger_ui_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}/api",
            title="gridwork OGC API",
            swagger_js_url=f"{root}/static-docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static-docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/static-docs/favicon.png",
        )

    app.state.pool = LoopPools()
    app.state.tiles = TileCache()
    return app
