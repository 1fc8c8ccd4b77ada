"""Grid summaries, the household band, and a grid's new shape reassigning its points at once."""

from __future__ import annotations

from typing import Any

import shapely
import shapely.ops
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from data.assignment.service import assignment_mismatches


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT g.code, count(h.id) FROM grid g LEFT JOIN household h "
                    "ON h.grid_id = g.id GROUP BY g.code"
                )
            ).all()
        )


def test_summary_counts_what_is_stored(admin: TestClient, gridded_engine: Engine) -> None:
    body = admin.get("/grids/131213-G02/summary").json()
    with gridded_engine.connect() as conn:
        households, residents, alone = conn.execute(
            text(
                "SELECT count(*), sum(size), count(*) FILTER (WHERE lives_alone) FROM household "
                "h JOIN grid g ON g.id = h.grid_id WHERE g.code = '131213-G02'"
            )
        ).one()
        kinds: dict[Any, Any] = dict(
            conn.execute(
                text(
                    "SELECT f.kind, count(*) FROM facility f JOIN grid g ON g.id = f.grid_id "
                    "WHERE g.code = '131213-G02' GROUP BY f.kind"
                )
            ).all()
        )
    assert (body["households"], body["residents"], body["living_alone"]) == (
        households,
        residents,
        alone,
    )
    assert body["facilities"] == kinds
    assert body["community"] == {"code": "131213", "name": "São Nicolau"}
    assert body["worker"] == "W-131213-G02" and body["street"] == "PORTO-CH"
    assert set(body["incidents"]) == {"open", "in_progress", "closed"}


def test_summary_is_counts_only_for_coordinators(
    anon: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    body = anon.get("/grids/131208-G03/summary", headers=auth["coordinator"]).json()
    assert isinstance(body["households"], int)
    assert not any(isinstance(v, list) for v in body.values()), "numbers, never rows"
    r = anon.get("/grids/131208-G03/households", headers=auth["coordinator"])
    assert r.status_code == 403


def test_out_of_band_lists_grids_and_communities(admin: TestClient, gridded_engine: Engine) -> None:
    counts = _counts(gridded_engine)
    body = admin.get("/grids/out-of-band", params={"band": "150,180"}).json()
    expected = sorted(code for code, n in counts.items() if not 150 <= n <= 180)
    assert sorted(g["code"] for g in body["grids"]) == expected
    assert all(g["status"] == ("under" if g["households"] < 150 else "over") for g in body["grids"])
    assert {c["code"] for c in body["communities"]} <= {"131208", "131213", "131214", "131215"}
    everything = admin.get("/grids/out-of-band", params={"band": "0,100000"}).json()
    assert everything["grids"] == [] and everything["communities"] == []
    assert admin.get("/grids/out-of-band").json()["band"] == [150, 180]


def test_out_of_band_refuses_a_bad_band(admin: TestClient) -> None:
    for band in ("180,150", "a,b", "150", "1,2,3", "-1,5"):
        r = admin.get("/grids/out-of-band", params={"band": band})
        assert r.status_code == 422, band
        assert r.json()["field"] == "band"


def test_new_grid_shape_reassigns_affected_points_in_the_same_request(
    admin: TestClient, gridded_engine: Engine
) -> None:
    """Move the boundary between G01 and G02: G02 gives up a strip along G01, G01 takes it.
    (Growing G01 over G02 in one step is refused: grids must not overlap.)"""
    with gridded_engine.connect() as conn:
        g1, g2 = (
            shapely.from_wkb(
                conn.execute(
                    text("SELECT ST_AsBinary(geom) FROM grid WHERE code = :c"), {"c": code}
                ).scalar_one()
            )
            for code in ("131208-G01", "131208-G02")
        )
    before = _counts(gridded_engine)
    # Cut in metres on a millimetre grid, as plans are, so the shapes stay valid in metres.
    to_m = Transformer.from_crs(4326, 32629, always_xy=True)
    to_ll = Transformer.from_crs(32629, 4326, always_xy=True)
    m1, m2 = (shapely.ops.transform(to_m.transform, g) for g in (g1, g2))
    strip_m = shapely.intersection(m2, m1.buffer(50), grid_size=0.001)
    g2_less, g1_more, strip = (
        shapely.ops.transform(to_ll.transform, g)
        for g in (
            shapely.difference(m2, strip_m, grid_size=0.001),
            shapely.union(m1, strip_m, grid_size=0.001),
            strip_m,
        )
    )
    assert g2_less.geom_type == g1_more.geom_type == "Polygon", "G01 and G02 must be neighbours"
    swallow = admin.patch("/grids/131208-G01", json={"geometry": shapely.geometry.mapping(g1_more)})
    assert swallow.status_code == 422 and "131208-G02" in swallow.json()["detail"]
    with gridded_engine.connect() as conn:
        in_strip = conn.execute(
            text(
                "SELECT count(*) FROM household h JOIN grid g ON g.id = h.grid_id "
                "WHERE g.code = '131208-G02' AND ST_Covers(ST_GeomFromWKB(:s, 4326), h.geom)"
            ),
            {"s": shapely.to_wkb(strip)},
        ).scalar_one()
    assert in_strip > 0
    shrink = admin.patch("/grids/131208-G02", json={"geometry": shapely.geometry.mapping(g2_less)})
    assert shrink.status_code == 200, shrink.text
    r = admin.patch("/grids/131208-G01", json={"geometry": shapely.geometry.mapping(g1_more)})
    try:
        assert r.status_code == 200, r.text
        assert r.json()["reassigned"]["household"] > 0
        after = _counts(gridded_engine)
        assert after["131208-G01"] == before["131208-G01"] + in_strip
        assert after["131208-G02"] == before["131208-G02"] - in_strip
        with gridded_engine.connect() as conn:
            assert assignment_mismatches(conn) == []
        inside = strip.representative_point()
        located = admin.get("/locate", params={"lon": inside.x, "lat": inside.y}).json()
        assert located["grid"] == "131208-G01", "the cached index follows the new shape"
    finally:
        back = admin.patch("/grids/131208-G01", json={"geometry": shapely.geometry.mapping(g1)})
        assert back.status_code == 200, back.text
        back = admin.patch("/grids/131208-G02", json={"geometry": shapely.geometry.mapping(g2)})
        assert back.status_code == 200, back.text
    assert _counts(gridded_engine) == before


def test_bad_grid_shapes_are_refused(admin: TestClient) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    r = admin.patch("/grids/131208-G01", json={"geometry": bowtie})
    assert r.status_code == 422 and r.json()["field"] == "geometry"
    line = {"type": "LineString", "coordinates": [[-8.6, 41.1], [-8.61, 41.11]]}
    assert admin.patch("/grids/131208-G01", json={"geometry": line}).status_code == 422
    garbage = {"type": "Polygon", "coordinates": "nope"}
    assert admin.patch("/grids/131208-G01", json={"geometry": garbage}).status_code == 422
    assert admin.patch("/grids/NOPE", json={"worker_code": "W-131208-G01"}).status_code == 404
