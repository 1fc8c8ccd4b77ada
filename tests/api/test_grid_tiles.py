"""The grid vector tiles drawn from the outlines the store keeps in Web Mercator (0024) show
what tipg's own drawing showed (issue 19).

:mod:`api.grid_tiles` changes only where a tile's geometry comes from: the outline already
projected, simplified to half a tile unit per zoom band. Each test reads tiles over HTTP as a
map would (decoding the MVT) and draws the same tiles with tipg's own query on the same store
(every vertex projected per request), then compares: the same grids with the same properties
at every zoom, the same outlines from z14 on, and below z14 outlines within the simplification
(half a unit of the band's lowest zoom) and the snapping to whole units. A grid redrawn is
drawn anew, as tipg would draw it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, text
from tipg.collections import PgCollection, pg_get_collection_index
from tipg.database import connection_factory
from tipg.settings import DatabaseSettings

from data.models import Role
from tests.factory import Account, fresh_store, make_app, signed_in

ADMIN = Account("t-grid-tiles-admin", Role.admin)
GRIDS = "/ogc/collections/ogc.grids/tiles/WebMercatorQuad"
TMS = morecantile.tms.get("WebMercatorQuad")
ZOOMS = (9, 10, 11, 12, 13, 14, 16)
EXTENT = 4096


@pytest.fixture
def store(server_url: str) -> Iterator[Engine]:
    """A fresh copy of Porto with test grids (one test redraws a grid)."""
    yield from fresh_store(server_url, "gridwork_test_grid_tiles", "porto_grids", [ADMIN])


@pytest.fixture
def client(store: Engine) -> Iterator[TestClient]:
    with signed_in(make_app(store), ADMIN.username) as client:
        yield client


def _tiles(store: Engine, per_zoom: int = 4) -> list[morecantile.Tile]:
    """At each zoom, the tile with the most grids and a few more over the grids' extent."""
    with store.connect() as conn:
        west, south, east, north = conn.execute(
            text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                 "ST_Extent(geom)::geometry e FROM grid WHERE valid_to IS NULL) s")
        ).one()  # fmt: skip
        middle = conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                 "WHERE valid_to IS NULL ORDER BY id LIMIT 1) s")
        ).one()  # fmt: skip
    out = []
    for z in ZOOMS:
        every = list(TMS.tiles(west, south, east, north, [z]))
        step = max(1, len(every) // per_zoom)
        lon, lat = middle
        out += [TMS.tile(lon, lat, z), *every[::step][:per_zoom]]
    return list(dict.fromkeys(out))


def _tipg_tiles(store: Engine, tiles: list[morecantile.Tile]) -> dict[morecantile.Tile, bytes]:
    """The tiles as tipg's own collection draws them: every vertex projected per tile."""

    async def run() -> dict[morecantile.Tile, bytes]:
        dsn = store.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await connection_factory(["ogc"], "pg_temp")(conn)
            found = await pg_get_collection_index(
                conn, settings=DatabaseSettings(schemas=["ogc"], functions=[],
                                                exclude_function_schemas=None)
            )  # fmt: skip
            grids = {c.id: c for c in found}["ogc.grids"]
            assert type(grids) is PgCollection
            return {t: await grids.get_tile(conn, tms=TMS, tile=t) for t in tiles}
        finally:
            await conn.close()

    return asyncio.run(run())


def _decoded(tile: bytes) -> dict[str, tuple[dict[str, Any], BaseGeometry]]:
    """Code → (properties, outline in tile units) of every grid in the tile."""
    layers = mapbox_vector_tile.decode(tile)
    if not layers:
        return {}
    features = layers["default"]["features"]
    return {f["properties"]["code"]: (f["properties"], shape(f["geometry"])) for f in features}


def _simplified_by(zoom: int) -> float | None:
    """Tile units of ``zoom`` an outline may be moved by simplification (migration 0024:
    half a unit of the band's lowest zoom; bands z ≤ 9, 10–11, 12–13), None from z14."""
    if zoom >= 14:
        return None
    lowest = 8 if zoom < 10 else 10 if zoom < 12 else 12
    return float(2 ** (zoom - lowest)) / 2


def _compare(store: Engine, client: TestClient, tiles: list[morecantile.Tile]) -> int:
    """Assert that the API's tiles show tipg's grids, properties and (within the band's
    simplification) outlines; the number of grids compared."""
    theirs = _tipg_tiles(store, tiles)
    compared = 0
    for t in tiles:
        r = client.get(f"{GRIDS}/{t.z}/{t.x}/{t.y}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        ours, before = _decoded(r.content), _decoded(theirs[t])
        assert set(ours) == set(before), t
        for code, (properties, outline) in ours.items():
            assert properties == before[code][0], (t, code)
            moved = _simplified_by(t.z)
            if moved is None:
                assert outline.equals_exact(before[code][1], 0), (t, code)
            else:  # plus up to a unit of snapping to whole units on each side
                assert outline.hausdorff_distance(before[code][1]) <= moved + 2, (t, code)
        compared += len(ours)
    return compared


def test_tiles_show_what_tipg_drew_at_every_zoom(store: Engine, client: TestClient) -> None:
    tiles = _tiles(store)
    assert {t.z for t in tiles} == set(ZOOMS)
    assert _compare(store, client, tiles) > 100


def test_the_low_zoom_tiles_are_drawn_from_fewer_vertices(store: Engine) -> None:
    """What the stored shapes are for: a z10 tile's outlines are not the grids' every vertex,
    yet every current grid has all four, and the exact one is the grid projected."""
    with store.connect() as conn:
        z8, z10, z12, exact, grids, off = conn.execute(
            text(
                "SELECT sum(ST_NPoints(s.z8)), sum(ST_NPoints(s.z10)), sum(ST_NPoints(s.z12)), "
                "sum(ST_NPoints(s.exact)), count(g.id), "
                "max(ST_HausdorffDistance(s.exact, ST_Transform(g.geom, 3857))) "
                "FROM grid g LEFT JOIN grid_tile_shape s ON s.grid_id = g.id "
                "WHERE g.valid_to IS NULL"
            )
        ).one()
    assert grids > 0 and off == 0
    assert z8 <= z10 <= z12 < exact


def test_a_redrawn_grid_is_drawn_anew(store: Engine, client: TestClient) -> None:
    """A grid's outline changed in the store (as ``PATCH /grids`` does): the next tiles at
    every zoom show the new outline as tipg would draw it, the old one nowhere."""
    with store.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                 "WHERE code = '131208-G01' AND valid_to IS NULL) s")
        ).one()  # fmt: skip
    tiles = [TMS.tile(lon, lat, z) for z in ZOOMS]
    _compare(store, client, tiles)  # and the cache now holds them
    before = _decoded(client.get(f"{GRIDS}/16/{tiles[-1].x}/{tiles[-1].y}").content)
    with store.begin() as conn:
        conn.execute(
            text("UPDATE grid SET geom = ST_Buffer(ST_PointOnSurface(geom), 0.0004, 3) "
                 "WHERE code = '131208-G01' AND valid_to IS NULL")
        )  # fmt: skip
    _compare(store, client, tiles)
    after = _decoded(client.get(f"{GRIDS}/16/{tiles[-1].x}/{tiles[-1].y}").content)
    assert not after["131208-G01"][1].equals(before["131208-G01"][1])
