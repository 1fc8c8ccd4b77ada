"""OGC vector tiles served again from memory, and never once what they show has changed.

The cache (:mod:`api.tile_cache`) keeps each tile under the versions the store gives the
tables its collection reads. These tests read a tile's grids and household counts as a map
would (decoding the MVT), change the store the ways gridwork does — a household moved, a
worker renamed, a grid redrawn — and check that the next tile shows the change, while a
change rolled back, or none, serves the same bytes from memory.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import mapbox_vector_tile
import morecantile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.state import app_state
from api.tile_cache import TileCache
from data.changes import ChangeFeed
from data.models import Role
from tests.factory import Account, fresh_store, make_app, signed_in

ADMIN = Account("t-tiles-admin", Role.admin)
GRIDS = "/ogc/collections/ogc.grids/tiles/WebMercatorQuad"
Z = 14


@pytest.fixture
def store(server_url: str) -> Iterator[Engine]:
    """A fresh copy of Porto with test grids (tests write to it)."""
    yield from fresh_store(server_url, "gridwork_test_tile_cache", "porto_grids", [ADMIN])


@pytest.fixture
def client(store: Engine) -> Iterator[TestClient]:
    with signed_in(make_app(store), ADMIN.username) as client:
        feed = app_state(cast(FastAPI, client.app)).changes
        assert feed is not None and feed.live
        yield client


def _cache(client: TestClient) -> TileCache:
    cache: TileCache = app_state(cast(FastAPI, client.app)).ogc.state.tiles
    return cache


def _tile_path(store: Engine, grid: str, zoom: int = Z) -> str:
    """The tile at ``zoom`` (z14 unless said) holding the middle of ``grid``."""
    with store.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                 "WHERE code = :g AND valid_to IS NULL) s"),
            {"g": grid},
        ).one()  # fmt: skip
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, zoom)
    return f"{GRIDS}/{t.z}/{t.x}/{t.y}"


def _features(client: TestClient, path: str, **params: Any) -> dict[str, dict[str, Any]]:
    """Code → properties of every grid in the tile, as a map reads it."""
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = mapbox_vector_tile.decode(r.content)["default"]
    return {f["properties"]["code"]: f["properties"] for f in layer["features"]}


def _households(store: Engine, codes: set[str]) -> dict[str, int]:
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.code, count(h.id) FROM grid g LEFT JOIN household h ON h.grid_id = g.id "
                "WHERE g.code = ANY(:c) AND g.valid_to IS NULL GROUP BY g.code"
            ),
            {"c": sorted(codes)},
        ).all()
    return dict(rows)


def move_a_household(store: Engine, source: str, target: str) -> None:
    """Move the first household of grid ``source`` into grid ``target`` (codes)."""
    with store.begin() as conn:
        conn.execute(
            text("UPDATE household SET grid_id = (SELECT id FROM grid WHERE code = :t "
                 "AND valid_to IS NULL) WHERE id = (SELECT min(h.id) FROM household h JOIN grid g "
                 "ON g.id = h.grid_id WHERE g.code = :s AND g.valid_to IS NULL)"),
            {"s": source, "t": target},
        )  # fmt: skip


def test_a_tile_is_served_again_until_its_households_change(
    client: TestClient, store: Engine
) -> None:
    path = _tile_path(store, "131208-G01")
    first = client.get(path)
    cache = _cache(client)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    again = client.get(path)
    assert (cache.hits, cache.misses) == (1, 1)
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]

    grids = _features(client, path)
    shown = {code: p["households"] for code, p in grids.items()}
    assert shown == _households(store, set(grids)) and sum(shown.values()) > 0

    # A household of one grid of the tile moves to another grid of the tile.
    source, target = sorted(grids, key=lambda c: -shown[c])[:2]
    move_a_household(store, source, target)
    now = {code: p["households"] for code, p in _features(client, path).items()}
    assert now == {**shown, source: shown[source] - 1, target: shown[target] + 1}
    assert now == _households(store, set(grids))


def test_an_edit_that_moves_no_count_keeps_the_tile(client: TestClient, store: Engine) -> None:
    """A household's size edited, or one added and removed again: every grid's count is what
    it was, so the tile is served again from memory (a busy city edits households all day)."""
    path = _tile_path(store, "131208-G01")
    before = _features(client, path)
    cache = _cache(client)
    with store.begin() as conn:
        conn.execute(
            text("UPDATE household SET size = CASE WHEN size < 30 THEN size + 1 ELSE 1 END")
        )
    hits = cache.hits
    assert _features(client, path) == before
    assert cache.hits == hits + 1
    with store.begin() as conn:  # a count that moves, even by one, draws the tile anew
        _remove_a_household(conn, in_grid=next(iter(before)))
    misses = cache.misses
    _features(client, path)
    assert (cache.hits, cache.misses) == (hits + 1, misses + 1)


def _remove_a_household(conn: Connection, *, in_grid: str) -> None:
    conn.execute(
        text("DELETE FROM household WHERE id = (SELECT min(h.id) FROM household h JOIN grid g "
             "ON g.id = h.grid_id WHERE g.code = :g AND g.valid_to IS NULL)"),
        {"g": in_grid},
    )  # fmt: skip


def _grid_away_from(store: Engine, path: str) -> str:
    """A current grid with households that keeps a quarter of a tile's width away from the
    tile at ``path``."""
    z, x, y = (int(part) for part in path.rsplit("/", 3)[1:])
    box = morecantile.tms.get("WebMercatorQuad").xy_bounds(morecantile.Tile(x, y, z))
    pad = (box.right - box.left) / 4
    with store.connect() as conn:
        found: str = conn.execute(
            text(
                "SELECT g.code FROM grid g WHERE g.valid_to IS NULL "
                "AND EXISTS (SELECT FROM household h WHERE h.grid_id = g.id) "
                "AND NOT ST_Intersects(ST_Transform(g.geom, 3857), "
                "ST_MakeEnvelope(:w, :s, :e, :n, 3857)) ORDER BY g.code LIMIT 1"
            ),
            {"w": box.left - pad, "s": box.bottom - pad, "e": box.right + pad, "n": box.top + pad},
        ).scalar_one()
    return found


def test_a_change_elsewhere_in_the_city_keeps_the_tile(client: TestClient, store: Engine) -> None:
    """A tile is kept with the key of the grids under it (migration 0029): after a household
    gone and a grid redrawn and given another worker two kilometres away, it is served from
    memory once those grids are found unchanged; the same edits to a grid of the tile draw it
    anew."""
    path = _tile_path(store, "131208-G01", zoom=16)
    before = _features(client, path)
    far = _grid_away_from(store, path)
    cache = _cache(client)

    def counts() -> tuple[int, int, int]:
        return cache.hits, cache.unchanged, cache.misses

    hits, unchanged, misses = counts()
    with store.begin() as conn:
        _remove_a_household(conn, in_grid=far)
        conn.execute(
            text("UPDATE grid SET worker_id = NULL, geom = ST_Buffer(geom, -0.00001) "
                 "WHERE code = :g AND valid_to IS NULL"),
            {"g": far},
        )  # fmt: skip
    assert _features(client, path) == before
    assert counts() == (hits, unchanged + 1, misses)
    assert _features(client, path) == before  # filed under the new versions: a plain hit
    assert counts() == (hits + 1, unchanged + 1, misses)

    inside = sorted(before)[0]
    with store.begin() as conn:
        conn.execute(
            text("UPDATE grid SET worker_id = NULL WHERE code = :g AND valid_to IS NULL"),
            {"g": inside},
        )
    after = _features(client, path)
    assert "worker_name" not in after[inside] and "worker_name" in before[inside]
    assert counts() == (hits + 1, unchanged + 1, misses + 1)

    # An outline redrawn inside the tile: the grid keeps its place, its shape changes.
    layer = _layer(client, path)  # from memory
    with store.begin() as conn:
        conn.execute(
            text("UPDATE grid SET geom = ST_Buffer(geom, -0.0002) "
                 "WHERE code = :g AND valid_to IS NULL"),
            {"g": inside},
        )  # fmt: skip
    assert _layer(client, path)[inside] != layer[inside]
    assert counts() == (hits + 2, unchanged + 1, misses + 2)


def _layer(client: TestClient, path: str) -> dict[str, Any]:
    """Code → geometry (tile units) of every grid in the tile."""
    r = client.get(path)
    assert r.status_code == 200, r.text
    layer = mapbox_vector_tile.decode(r.content)["default"]
    return {f["properties"]["code"]: f["geometry"] for f in layer["features"]}


def test_a_change_rolled_back_keeps_the_tile_a_renamed_worker_does_not(
    client: TestClient, store: Engine
) -> None:
    path = _tile_path(store, "131208-G01")
    before = _features(client, path)
    cache = _cache(client)
    with store.connect() as conn, conn.begin() as tx:
        conn.execute(text("DELETE FROM household"))
        conn.execute(text("UPDATE worker SET display_name = 'Nobody'"))
        tx.rollback()
    hits = cache.hits
    assert _features(client, path) == before
    assert cache.hits == hits + 1

    with store.begin() as conn:
        conn.execute(text("UPDATE worker SET display_name = 'Renamed' WHERE code = 'W-131208-G01'"))
    after = _features(client, path)
    assert after["131208-G01"]["worker_name"] == "Renamed"
    assert cache.hits == hits + 1


def test_a_redrawn_grid_and_other_queries_are_tiles_of_their_own(
    client: TestClient, store: Engine
) -> None:
    path = _tile_path(store, "131208-G01")
    full = _features(client, path)
    only_codes = _features(client, path, properties="code")
    assert set(only_codes) == set(full)
    assert all(set(p) == {"code"} for p in only_codes.values())
    assert len(_cache(client)) == 2
    # The grid shrinks to a sliver far from this tile: it leaves the tile.
    with store.begin() as conn:
        conn.execute(
            text("UPDATE grid SET geom = ST_Buffer(ST_SetSRID(ST_MakePoint(0, 0), 4326), "
                 "0.0001, 4) WHERE code = '131208-G01' AND valid_to IS NULL")
        )  # fmt: skip
    assert "131208-G01" not in _features(client, path)


def test_nothing_is_kept_while_the_change_feed_is_not_live(
    client: TestClient, store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ChangeFeed, "live", property(lambda _self: False))
    path = _tile_path(store, "131208-G01")
    client.get(path)
    client.get(path)
    cache = _cache(client)
    assert (len(cache), cache.hits, cache.misses) == (0, 0, 0)


def test_the_cache_keeps_at_most_its_bytes() -> None:
    import asyncio

    cache = TileCache(max_bytes=10)
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def serve(key: str, body: bytes) -> None:
        keep = cache.keeping((key, b""), ("v",), send)
        await keep({"type": "http.response.start", "status": 200, "headers": []})
        await keep({"type": "http.response.body", "body": body})

    async def run() -> None:
        await serve("a", b"123456")
        await serve("b", b"1234")
        assert len(cache) == 2
        await serve("c", b"12")  # 12 bytes: "a", the least recently used, goes
        assert len(cache) == 2
        assert not await cache.serve(("a", b""), ("v",), send)
        assert await cache.serve(("b", b""), ("v",), send)
        assert not await cache.serve(("b", b""), ("w",), send)  # another version
        await serve("big", b"x" * 11)  # larger than the whole cache: not kept
        assert len(cache) == 2

    asyncio.run(run())


def test_a_cold_tile_asked_for_at_once_is_drawn_once(client: TestClient, store: Engine) -> None:
    """Eight viewers open the same map at once: PostgreSQL draws the tile once, the other
    requests wait for that drawing and get the same bytes."""
    path = _tile_path(store, "131208-G01", zoom=12)
    cache = _cache(client)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.get(path), range(8)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert cache.misses == 1
    # The others came from memory: after waiting for that drawing, or once it was kept (a
    # request that checked the grids under the tile while it was drawn counts unchanged).
    assert cache.hits + cache.joined + cache.unchanged == 7
    assert _features(client, path)  # a real tile, with grids in it
