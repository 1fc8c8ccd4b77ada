"""The low-zoom grid tiles drawn in the background (:mod:`api.tile_seeder`).

What a viewer sees: the first request of a low-zoom grid tile, after a start and after an edit
under it, is served from memory, and shows the edit; the seeder draws again only the tiles
over what changed, and a tile it does not look after is drawn on request as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import tile_seeder
from api.state import app_state
from api.tile_cache import TileCache, grid_tile_envelope
from api.tile_seeder import TileSeeder, seed_paths
from tests.api.test_tile_cache import (
    ADMIN,
    _features,
    _households,
    _tile_path,
    move_a_household,
)
from tests.factory import fresh_store, make_app, signed_in

SEED_ZOOM = 15  # past the default 11, so the district spans many tiles of the top zooms


@pytest.fixture
def store(server_url: str) -> Iterator[Engine]:
    """A fresh copy of Porto with test grids (tests write to it)."""
    yield from fresh_store(server_url, "gridwork_test_tile_seeder", "porto_grids", [ADMIN])


@pytest.fixture
def client(store: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # Look again right after a pass (in service it rests nine times the pass's length).
    monkeypatch.setattr(tile_seeder, "BUSY_SHARE", 1.0)
    app = make_app(store, tile_seed_zoom=SEED_ZOOM, tile_seed_seconds=0.05)
    with signed_in(app, ADMIN.username) as client:
        yield client


def _ogc(client: TestClient) -> FastAPI:
    return app_state(cast(FastAPI, client.app)).ogc


def _until(done: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"the seeder did not {what} in {timeout_s:g} s"
        time.sleep(0.05)


def _reaches(store: Engine, path: str, codes: set[str]) -> bool:
    """Whether one of the grids ``codes`` reaches into the tile at ``path`` (the box whose
    grids key it)."""
    envelope = grid_tile_envelope(path)
    assert envelope is not None
    with store.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT EXISTS (SELECT FROM grid_tile_shape s JOIN grid g ON g.id = "
                     "s.grid_id WHERE g.code = ANY(:c) AND g.valid_to IS NULL AND s.exact && "
                     "ST_MakeEnvelope(:w, :s, :e, :n, 3857))"),
                {"c": sorted(codes), **dict(zip("wsen", envelope, strict=True))},
            ).scalar_one()
        )  # fmt: skip


def _settled(seeder: TileSeeder, passes: int) -> Callable[[], bool]:
    """More than ``passes`` passes, and none running."""
    return lambda: seeder.passes > passes and not seeder.busy


def test_low_zoom_grid_tiles_are_drawn_before_anyone_asks_and_again_after_an_edit(
    client: TestClient, store: Engine
) -> None:
    ogc = _ogc(client)
    cache: TileCache = ogc.state.tiles
    seeder: TileSeeder = ogc.state.seeder
    _until(_settled(seeder, 0), "finish its first pass")
    paths = seed_paths(store, SEED_ZOOM)
    # The district's few hundred grids: the viewer draws them from zoom 0, so every zoom up
    # to the seeder's is looked after, and every one of those tiles was drawn once.
    assert {int(p.split("/")[-3]) for p in paths} == set(range(SEED_ZOOM + 1))
    assert seeder.tiles == len(paths) == seeder.drawn == len(cache)

    path = _tile_path(store, "131208-G01", zoom=SEED_ZOOM)
    assert path.removeprefix("/ogc") in paths
    grids = _features(client, path)  # the first request of the tile: from memory
    assert (cache.hits, cache.misses) == (1, 0)
    shown = {code: p["households"] for code, p in grids.items()}
    assert shown == _households(store, set(grids)) and sum(shown.values()) > 0

    # A household moves between two grids of the tile.
    source, target = sorted(grids, key=lambda c: -shown[c])[:2]
    passes, drawn = seeder.passes, seeder.drawn
    move_a_household(store, source, target)
    _until(_settled(seeder, passes), "notice the move")
    # Drawn again: the tiles those two grids reach into; the rest were only checked.
    under = [p for p in paths if _reaches(store, p, {source, target})]
    assert SEED_ZOOM + 1 <= len(under) < len(paths)
    assert seeder.drawn - drawn == len(under)
    now = {code: p["households"] for code, p in _features(client, path).items()}
    assert (cache.hits, cache.misses) == (2, 0)  # the edit shown, and still from memory
    assert now == {**shown, source: shown[source] - 1, target: shown[target] + 1}
    assert now == _households(store, set(grids))

    # Higher zooms are drawn on request, as without the seeder.
    _features(client, _tile_path(store, "131208-G01", zoom=SEED_ZOOM + 1))
    assert cache.misses == 1

    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    for line in (
        f"gridwork_tile_seed_passes_total {float(seeder.passes)}",
        f"gridwork_tile_seed_drawn_total {float(seeder.drawn)}",
        f"gridwork_tile_seed_tiles {float(len(paths))}",
    ):
        assert line in metrics.text
