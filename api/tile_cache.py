"""Vector tiles of the OGC layers kept in memory while what they show has not changed.

A z10 tile of ``ogc.grids`` at a tenth of the megacity holds ~2,200 grids; reprojecting,
clipping and encoding them takes PostgreSQL ~100 ms however the view is written, against a
target of 20 ms (docs/scale.md). The tiles a map asks for at low zoom are few and asked for
again and again, so each API process keeps the bytes it served and serves them again for as
long as the store says nothing they show has changed.

**When a tile is stale.** Each OGC collection names the tables its view reads
(:data:`SOURCES`). Before each tile the cache reads, on the server the tile would be read from
(the primary, or the hot standby while reads go there), those tables' versions:
``deployment_setting['grids_version']`` for grids, workers, communities and streets (migration
0003) and ``table_version`` for households, buildings, roads and facilities (0021) and for the
household count per grid (0022: renewed only by a statement that moved a count, so the grid
tiles outlive the edits of a household's size or name). Both are written by statement-level
triggers in the writing transaction, so they become visible with the rows they stand for, on
the primary and on a standby alike. A tile is served from memory only under the versions it was
stored with. The versions are read before the tile is rendered, so a tile is never older than
the versions it is filed under (at worst newer, and rendered once more at the next request). A
restore replaces the store under the running processes: the change feed's epoch
(:attr:`data.changes.ChangeFeed.epoch`, renewed by a restore and whenever the feed connects or
loses its connection, not by ordinary writes, which the versions already tell) is part of the
key too, and while the feed is not live (a notification may have been lost) nothing is cached
or served from the cache.

**A grid tile outlives a change elsewhere.** At the megacity's full size any household
registered anywhere moved a count, renewed those versions and made every grid tile of the city
cold, ~120 ms for a z10 tile. A grid tile is also kept with the key of the grids under it
(:data:`GRID_TILE_KEY`, migration 0029): when the versions have changed, that key is read (a
GiST scan of the shapes under the tile; ~14 ms for a z10 tile of 6,000 grids, so only then),
and if it is what it was, the change was elsewhere: the tile is served and filed under the new
versions. An edit makes cold only the tiles over the grids it touched.

**Who sees what.** The OGC layers are district-wide and answered only to callers who may
see the whole district (:func:`api.ogc.district_wide`), so one tile is the same for every
caller: the key is the path and the query string, nothing about the caller.

**Low zooms ahead of time.** :mod:`api.tile_seeder` asks this cache for the low-zoom grid
tiles in the background, at start and after each change, so that the tiles holding thousands
of grids are drawn before a viewer asks for them.

The price is a read per tile (the versions by primary key; for a grid tile, the stamps and
counts of the grids under it, by a GiST index) and the memory: at most :data:`MAX_BYTES` per
process, the least recently used tiles going first.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

MAX_BYTES = 64 << 20
"""Tile bytes kept per API process (a z10 tile of the megacity's tenth is ~0.2 MB)."""

SOURCES: dict[str, tuple[str, ...]] = {
    # collection: the ``table_version`` rows of the tables its view reads besides those of
    # ``grids_version`` (grid, worker, community, street), which every collection is keyed on
    "ogc.grids": ("grid_households",),  # the count per grid (0022), renewed only when it moves
    "ogc.communities": ("building", "household"),
    "ogc.streets": (),
    "ogc.roads": ("road_segment",),
    "ogc.buildings": ("building",),
    "ogc.facilities": ("facility",),
}

_TILE = re.compile(
    r"^/collections/(?P<collection>[^/]+)/tiles/(?P<tms>[^/]+)/(?P<z>\d+)/(?P<x>\d+)/(?P<y>\d+)/?$"
)

VERSIONS_SQL = (
    "SELECT (SELECT value FROM deployment_setting WHERE key = 'grids_version'), "
    "ARRAY(SELECT name || '=' || version::text FROM table_version "
    "WHERE name = ANY($1::text[]) ORDER BY name)"
)
"""The versions a tile is filed under, read with the tile's own pool (asyncpg)."""

GRID_TILE_KEY = (
    "SELECT count(*), coalesce(bit_xor(hashint8extended(s.stamp, 0)), 0), "
    "coalesce(bit_xor(hashint8extended((s.grid_id::bigint << 32) | h.households, 0)), 0), "
    "ARRAY(SELECT name || '=' || version::text FROM table_version "
    "WHERE name = ANY($5::text[]) ORDER BY name) "
    "FROM grid_tile_shape s LEFT JOIN grid_households h ON h.grid_id = s.grid_id "
    "WHERE s.exact && ST_MakeEnvelope($1, $2, $3, $4, 3857)"
)
"""The key of one ``ogc.grids`` tile in Web Mercator (migration 0029), read from the grids
under it: how many current grids' shapes reach into the (buffered) tile, an XOR of their
shapes' stamps (renewed with every outline, code, community or worker of a grid), an XOR of
their household counts, and the versions of :data:`GRID_TILE_TABLES`. Anything the tile
shows changes one of them; a change elsewhere in the city changes none."""

GRID_TILE_TABLES = ("community", "worker")
"""Tables whose every write renews the key of every grid tile: the tile shows their codes
and names, which are seldom written."""

GRID_TILE_MARGIN = 1 / 8
"""How far past its edges (a share of its width) a grid tile's key looks: at least tipg's
buffer (256 of 4096 units), so a grid drawn in the buffer counts."""


def grid_tile_envelope(path: str) -> tuple[float, float, float, float] | None:
    """The Web Mercator box (metres) whose grids key an ``ogc.grids`` tile, with
    :data:`GRID_TILE_MARGIN` around it; None for any other tile or tile matrix set."""
    found = _TILE.match(path)
    if found is None or found["collection"] != "ogc.grids":
        return None
    if found["tms"] != "WebMercatorQuad":
        return None
    z, x, y = int(found["z"]), int(found["x"]), int(found["y"])
    if not 0 <= z <= 30 or not (0 <= x < 2**z and 0 <= y < 2**z):
        return None
    size = 2 * _HALF_WORLD / 2**z
    margin = size * GRID_TILE_MARGIN
    west = -_HALF_WORLD + x * size
    north = _HALF_WORLD - y * size
    return (west - margin, north - size - margin, west + size + margin, north + margin)


_HALF_WORLD = 20037508.342789244
"""Half the width of the Web Mercator world (metres): WebMercatorQuad's tile 0/0/0."""

Message = MutableMapping[str, Any]
Flight = asyncio.Future[None]
Send = Callable[[Message], Awaitable[None]]


def tile_collection(path: str) -> str | None:
    """The collection of a tile request (``/collections/ogc.grids/tiles/…/z/x/y``) that the
    cache knows the sources of, else None."""
    found = _TILE.match(path)
    if found is None or found["collection"] not in SOURCES:
        return None
    return found["collection"]


@dataclass
class _Tile:
    version: tuple[object, ...]
    start: Message
    body: bytes
    under: tuple[object, ...] | None = None  # the key of the grids under it (grid tiles)


class TileCache:
    """The tiles one API process served, by path and query string, under their versions."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._tiles: OrderedDict[tuple[str, bytes], _Tile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.unchanged = 0  # served after a change elsewhere: the grids under it checked
        self.joined = 0  # served after waiting for the same tile's drawing under way
        self.misses = 0  # drawn by PostgreSQL
        self._flights: dict[tuple[asyncio.AbstractEventLoop, tuple[str, bytes]], Flight] = {}

    def __len__(self) -> int:
        return len(self._tiles)

    @property
    def size(self) -> int:
        """The bytes of the tiles kept."""
        return self._bytes

    async def serve(
        self,
        key: tuple[str, bytes],
        version: tuple[object, ...],
        send: Send,
        *,
        counting: bool = True,
        joined: bool = False,
    ) -> bool:
        """Send the tile stored under ``key`` if it was stored under ``version``
        (``counting``: False for the seeder's own checks, which are no requests; ``joined``:
        counted as served after waiting for its drawing)."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is None or tile.version != version:
                return False
            self._tiles.move_to_end(key)
            if joined:
                self.joined += counting
            else:
                self.hits += counting
        await _send(tile, send)
        return True

    async def serve_unchanged(
        self,
        key: tuple[str, bytes],
        under: tuple[object, ...],
        version: tuple[object, ...],
        send: Send,
        *,
        counting: bool = True,
    ) -> bool:
        """Send the tile stored under ``key`` if the grids under it are as they were when
        it was drawn (``under``: :data:`GRID_TILE_KEY`'s answer, read after ``version``),
        and file it under ``version`` from now on: what changed was elsewhere."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is None or tile.under is None or tile.under != under:
                return False
            tile.version = version
            self._tiles.move_to_end(key)
            self.unchanged += counting
        await _send(tile, send)
        return True

    def drawn(self, *, counting: bool = True) -> None:
        """Count a tile PostgreSQL is asked to draw (a miss)."""
        with self._lock:
            self.misses += counting

    def flight(self, key: tuple[str, bytes]) -> tuple[Flight, bool]:
        """The drawing of ``key`` under way in this event loop, and whether the caller is the
        one to draw it (it then calls :meth:`landed` when done, kept or not). Two viewers
        opening the same map, or a viewer and the seeder, ask for the same cold tile at once;
        the second waits for the first's drawing instead of drawing it again."""
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._flights.get((loop, key))
            if found is not None:
                return found, False
            flight: Flight = loop.create_future()
            self._flights[(loop, key)] = flight
            return flight, True

    def landed(self, key: tuple[str, bytes], flight: Flight) -> None:
        """The drawing of ``key`` begun with :meth:`flight` is over: wake who waits."""
        with self._lock:
            self._flights.pop((asyncio.get_running_loop(), key), None)
        if not flight.done():
            flight.set_result(None)

    def keeping(
        self,
        key: tuple[str, bytes],
        version: tuple[object, ...],
        send: Send,
        *,
        under: tuple[object, ...] | None = None,
    ) -> Send:
        """``send``, also keeping a whole 200 response under ``key`` and ``version`` (and
        ``under``, the key of the grids under a grid tile, read before it was drawn)."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = dict(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False) and start.get("status") == 200:
                    self._put(key, _Tile(version, start, b"".join(chunks), under))
            await send(message)

        return keep

    def _put(self, key: tuple[str, bytes], tile: _Tile) -> None:
        size = len(tile.body)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._tiles[key] = tile
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self._bytes -= len(dropped.body)


async def _send(tile: _Tile, send: Send) -> None:
    await send(tile.start)
    await send({"type": "http.response.body", "body": tile.body})
