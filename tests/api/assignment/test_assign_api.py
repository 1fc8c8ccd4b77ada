"""``POST /assign`` and ``GET /locate``: the stored answer, any CRS, bad input named precisely."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text


def _households(engine: Engine, limit: int = 400) -> list[tuple[float, float, str, str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT ST_X(h.geom), ST_Y(h.geom), g.code, c.code, w.code FROM household h "
                    "JOIN grid g ON g.id = h.grid_id JOIN community c ON c.id = g.community_id "
                    "JOIN worker w ON w.id = g.worker_id ORDER BY h.id LIMIT :n"
                ),
                {"n": limit},
            ).all()
        ]


def test_assign_answers_what_is_stored(admin: TestClient, gridded_engine: Engine) -> None:
    rows = _households(gridded_engine)
    r = admin.post("/assign", json={"points": [[x, y] for x, y, *_ in rows]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == body["assigned"] == len(rows)
    got = [(p["grid"], p["community"], p["street"], p["worker"]) for p in body["results"]]
    assert got == [(g, c, "PORTO-CH", w) for *_, g, c, w in rows]
    assert all(p["distance_m"] == 0 and not p["snapped"] for p in body["results"])


def test_assign_takes_any_epsg_code(admin: TestClient, gridded_engine: Engine) -> None:
    rows = _households(gridded_engine, 50)
    to_utm = Transformer.from_crs(4326, 32629, always_xy=True)
    x, y = to_utm.transform([r[0] for r in rows], [r[1] for r in rows])
    r = admin.post("/assign", json={"crs": 32629, "points": list(zip(x, y, strict=True))})
    assert r.status_code == 200, r.text
    assert [p["grid"] for p in r.json()["results"]] == [r[2] for r in rows]


def test_assign_reports_unassigned_points_with_their_distance(admin: TestClient) -> None:
    r = admin.post("/assign", json={"points": [[-8.7, 41.1], [0.0, 0.0]]})
    results = r.json()["results"]
    assert [p["grid"] for p in results] == [None, None]
    assert all(p["distance_m"] > 1000 for p in results)
    assert r.json()["unassigned"] == 2


@pytest.mark.parametrize(
    ("points", "field", "index", "words"),
    [
        ([[-8.61, 41.14], [181.0, 41.14]], "points", 1, "longitude"),
        ([[-8.61, 41.14], [-8.61, 41.14], [-8.61, -91.0]], "points", 2, "latitude"),
        ([[-8.61, 41.14], [41.14, -8.61 + 100]], "points", 1, "swapped"),
    ],
    ids=["lon out of range", "lat out of range", "looks swapped"],
)
def test_bad_points_are_named_by_index(
    admin: TestClient, points: list[list[float]], field: str, index: int, words: str
) -> None:
    r = admin.post("/assign", json={"points": points})
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["field"], body["index"]) == (field, index)
    assert words in body["detail"]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(admin: TestClient, bad: str) -> None:
    r = admin.post(
        "/assign",
        content=f'{{"points": [[-8.61, 41.14], [0, 0], [{bad}, 41.14]]}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    if "index" in r.json():  # a guard that refuses NaN before parsing is fine too
        assert r.json()["index"] == 2


def test_unknown_epsg_and_oversized_batch_and_unknown_fields(admin: TestClient) -> None:
    r = admin.post("/assign", json={"crs": 999_999, "points": [[1, 2]]})
    assert r.status_code == 422 and r.json()["field"] == "crs"
    r = admin.post("/assign", json={"points": [[-8.61, 41.14]] * 10_001})
    assert r.status_code == 422
    assert (r.json()["field"], r.json()["index"]) == ("points", 10_000)
    r = admin.post("/assign", json={"points": [[-8.61, 41.14]], "srid": 4326})
    assert r.status_code == 422 and "srid" in r.json()["detail"]
    assert admin.post("/assign", json={"points": []}).status_code == 422


def test_assign_withholds_grids_outside_the_callers_area(
    anon: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine
) -> None:
    rows = _households(gridded_engine, 3000)
    mine = next(r for r in rows if r[3] == "131208")
    other = next(r for r in rows if r[3] != "131208")
    r = anon.post(
        "/assign", json={"points": [mine[:2], other[:2]]}, headers=auth["coordinator"]
    ).json()
    assert r["results"][0]["grid"] == mine[2] and not r["results"][0]["withheld"]
    assert r["results"][1]["grid"] is None and r["results"][1]["withheld"]


# --- /locate ----------------------------------------------------------------------------------


def test_locate_names_grid_worker_and_edge_distance(
    admin: TestClient, gridded_engine: Engine
) -> None:
    lon, lat, grid, community, worker = _households(gridded_engine, 1)[0]
    r = admin.get("/locate", params={"lon": lon, "lat": lat})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grid"] == grid and body["community"]["code"] == community
    assert body["street"]["code"] == "PORTO-CH"
    assert body["worker"]["code"] == worker
    assert body["worker"]["name"].startswith("Worker ") and body["worker"]["phone"]
    assert body["inside"] is True and body["edge_distance_m"] > 0
    with gridded_engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT ST_Distance(ST_Transform(ST_Boundary(g.geom), 32629), "
                "ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 32629)) "
                "FROM grid g WHERE g.code = :g"
            ),
            {"x": lon, "y": lat, "g": grid},
        ).scalar_one()
    assert math.isclose(body["edge_distance_m"], expected, abs_tol=0.01)


def test_locate_snaps_near_points_and_refuses_far_ones(
    admin: TestClient, gridded_engine: Engine
) -> None:
    with gridded_engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(ST_Union(geom))).geom p "
                "FROM grid) v ORDER BY ST_X(p) LIMIT 1"
            )
        ).one()
    west = 1 / (111_320 * np.cos(np.radians(y)))
    near = admin.get("/locate", params={"lon": x - 8 * west, "lat": y}).json()
    assert near["inside"] is False and 7.5 < near["edge_distance_m"] < 8.5
    far = admin.get("/locate", params={"lon": x - 300 * west, "lat": y})
    assert far.status_code == 404 and "nearest" in far.json()["detail"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"lon": 200, "lat": 41}, "longitude"),
        ({"lon": 41.14, "lat": -108.61}, "swapped"),
        ({"lon": "nan", "lat": 41}, "finite"),
        ({"lon": -8.6}, "lat"),
        ({"lon": "west", "lat": 41}, "lon"),
    ],
)
def test_locate_refuses_bad_coordinates(
    admin: TestClient, params: dict[str, Any], words: str
) -> None:
    r = admin.get("/locate", params=params)
    assert r.status_code == 422
    assert words in r.json()["detail"]


def test_locate_outside_the_callers_area_is_404(
    anon: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine
) -> None:
    rows = _households(gridded_engine, 3000)
    mine = next(r for r in rows if r[2] == "131208-G01")
    other = next(r for r in rows if r[3] != "131208")
    worker = auth["grid_worker"]
    assert (
        anon.get(
            "/locate", params=dict(zip(("lon", "lat"), mine[:2], strict=True)), headers=worker
        ).json()["grid"]
        == "131208-G01"
    )
    r = anon.get(
        "/locate", params=dict(zip(("lon", "lat"), other[:2], strict=True)), headers=worker
    )
    assert r.status_code == 404 and "nearest" not in r.json()["detail"]


def test_locate_sees_a_new_worker_at_once(admin: TestClient, gridded_engine: Engine) -> None:
    """The cached index is keyed by the grids-version token: a worker change shows at once."""
    lon, lat, grid, *_ = _households(gridded_engine, 1)[0]
    before = admin.get("/locate", params={"lon": lon, "lat": lat}).json()["worker"]["code"]
    other = "W-131215-G05" if before != "W-131215-G05" else "W-131215-G04"
    try:
        with gridded_engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE grid SET worker_id = (SELECT id FROM worker WHERE code = :w) "
                    "WHERE code = :g"
                ),
                {"w": other, "g": grid},
            )
        assert (
            admin.get("/locate", params={"lon": lon, "lat": lat}).json()["worker"]["code"] == other
        )
    finally:
        with gridded_engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE grid SET worker_id = (SELECT id FROM worker WHERE code = :w) "
                    "WHERE code = :g"
                ),
                {"w": before, "g": grid},
            )
