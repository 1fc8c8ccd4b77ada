"""The low-zoom grid tiles, drawn in the background so that nobody waits for them.

A z10 tile of a city of 60,000 grids holds ~4,000 of them; PostgreSQL takes 70-110 ms to draw
it (``bench.megacity tiles``) where the target is 20 ms. The tile cache (:mod:`api.tile_cache`)
serves it again in ~2 ms, but someone pays the drawing: the first viewer after a start, and
the first after every edit under the tile. Those tiles are few (the city's extent at z10 and
z11: tens of tiles) and the same for everyone, so each API process draws them itself, the way
tile servers seed their low zooms:

* **Which**: every ``ogc.grids`` tile over the district's bounds from the zoom the viewer
  starts asking for grid tiles (:func:`maps.viewer.feature_minzoom`, computed as the viewer
  computes it) up to ``GRIDWORK_TILE_SEED_ZOOM`` (11: from z12 on, a first drawing is under
  20 ms at full size), at most :data:`MAX_TILES`, low zooms first.
* **When**: at start, and whenever the versions that grid tiles are cached under have moved
  (one primary-key read every ``GRIDWORK_TILE_SEED_SECONDS``), at most a tenth of the time
  (:data:`BUSY_SHARE`). A pass asks the cache for each
  tile as a request would (:meth:`api.ogc.DistrictWideOnly.keep_tile`): a tile whose grids are
  unchanged (the key of the grids under it, migration 0029) is only filed under the new
  versions, so an edit redraws the tiles over it and costs the others a key read each.
* **What it does not do**: it serves no one and counts in none of the cache's request figures;
  a request that comes before the pass reaches its tile draws it itself (one that comes while
  the seeder draws it waits for that drawing: :meth:`api.tile_cache.TileCache.flight`); a
  tile dropped from memory (the cache is bounded) is drawn by the next pass only if something
  moved. While the change feed is not live nothing is cached, so nothing is seeded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import anyio.to_thread
import morecantile
from sqlalchemy import Engine

from api.ogc import DistrictWideOnly
from api.state import AppState
from api.tile_cache import SOURCES, VERSIONS_SQL
from data.district.hierarchy import count_grids
from data.district.maps import district_bounds
from maps.viewer import feature_minzoom

log = logging.getLogger(__name__)

MAX_TILES = 256
"""The most tiles a pass draws (the full megacity has 106 at z10-z11: ``bench.megacity
tiles``); past it the highest zooms are left to requests."""

BUSY_SHARE = 0.1
"""The most of its time the seeder spends in passes: after a pass of ``t`` seconds the next
look waits ``t (1 / BUSY_SHARE − 1)``, at least ``GRIDWORK_TILE_SEED_SECONDS``. A city edits
households all day, and every edit moves the versions a pass is set off by; at the full
megacity's size a pass after one household moved took 0.5 s (``bench.megacity tiles``),
so without the bound an edit every 2 s would keep a quarter of a core busy reading tile keys
(an *estimate*: 0.5 s in every 2 s, not measured under such a load)."""

_PATH = "/collections/ogc.grids/tiles/WebMercatorQuad/{}/{}/{}"
_TMS = morecantile.tms.get("WebMercatorQuad")


def seed_paths(engine: Engine, max_zoom: int) -> list[str]:
    """The grid tiles to keep drawn: over the district's bounds, from the viewer's grid min
    zoom up to ``max_zoom``, low zooms first, at most :data:`MAX_TILES`."""
    with engine.connect() as conn:  # what the viewer computes its grid min zoom from
        bounds = district_bounds(conn)
        grids = count_grids(conn)
    if bounds is None:
        return []
    paths: list[str] = []
    for z in range(feature_minzoom(grids, bounds), max_zoom + 1):
        tiles = list(_TMS.tiles(*bounds, [z]))
        if len(paths) + len(tiles) > MAX_TILES:
            break
        paths += [_PATH.format(t.z, t.x, t.y) for t in tiles]
    return paths


@dataclass
class TileSeeder:
    """What the background drawing of one API process has done (for ``/metrics``)."""

    passes: int = 0
    drawn: int = 0  # tiles drawn by all passes
    tiles: int = 0  # tiles the last pass looked after
    last_pass_s: float = 0.0
    busy: bool = False
    failures: int = 0  # looks that failed, and tiles a pass could not draw
    _mark: tuple[object, ...] | None = field(default=None, repr=False)

    async def step(self, gate: DistrictWideOnly, state: AppState, max_zoom: int) -> bool:
        """One look: a pass over the tiles if what grid tiles show has moved since the last
        pass (or there was none). Whether a pass ran."""
        feed = state.changes
        if feed is None or not feed.live:
            return False
        await gate.prepare(state)
        async with gate.app.state.pool.acquire() as conn:
            grids, tables = await conn.fetchrow(VERSIONS_SQL, list(SOURCES["ogc.grids"]))
        mark = (feed.epoch, grids, tuple(tables))
        if mark == self._mark:
            return False
        self.busy = True
        started = time.perf_counter()
        failed: list[str] = []
        try:
            paths = await anyio.to_thread.run_sync(seed_paths, state.engine, max_zoom)
            drawn = 0
            for path in paths:
                try:
                    drawn += await gate.keep_tile(state, path) == "drawn"
                except Exception as exc:  # one tile refused: the others are still drawn,
                    failed.append(f"{path}: {exc!r}")  # and a request draws this one
        finally:
            self.busy = False
        if failed:
            self.failures += len(failed)
            log.warning("tile seeder: %d of %d tiles not drawn, first %s", len(failed),
                        len(paths), failed[0])  # fmt: skip
        self.passes += 1
        self.drawn += drawn
        self.tiles = len(paths)
        self.last_pass_s = time.perf_counter() - started
        self._mark = mark  # read before the pass: an edit during it makes another pass
        if drawn:
            log.info("tile seeder: %d of %d tiles drawn in %.2f s", drawn, len(paths),
                     self.last_pass_s)  # fmt: skip
        return True


async def seed_loop(gate: DistrictWideOnly, state: AppState, seeder: TileSeeder) -> None:
    """Look every ``tile_seed_seconds``; a failed look (the database restarting) is logged
    and tried again next time."""
    settings = state.settings
    while True:
        rest = settings.tile_seed_seconds
        try:
            if await seeder.step(gate, state, settings.tile_seed_zoom):
                rest = max(rest, seeder.last_pass_s * (1 / BUSY_SHARE - 1))
        except Exception:  # the loop must outlive a database restart
            seeder.failures += 1
            log.warning("tile seeder: look failed; trying again", exc_info=True)
        await asyncio.sleep(rest)


def start(gate: DistrictWideOnly, state: AppState) -> asyncio.Task[None] | None:
    """Start seeding unless ``tile_seed_zoom`` is -1; the caller stops it on shutdown
    (:func:`api.state.stop_task`). Its
    figures are kept on the OGC sub-app's state as ``seeder``, beside the cache's ``tiles``."""
    if state.settings.tile_seed_zoom < 0:
        return None
    seeder = gate.app.state.seeder = TileSeeder()
    return asyncio.get_running_loop().create_task(seed_loop(gate, state, seeder))
