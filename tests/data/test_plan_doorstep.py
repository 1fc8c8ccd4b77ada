"""A plan counts the households just outside every community where the published grids will.

A household a few metres outside every community (a doorstep across the line, a point taken
on the pavement) is assigned to the nearest grid within the snap tolerance, so a plan of the
nearest community must count it, at a point half a metre inside its edge. The read that finds
them (``community_unit_inputs``) must use the indexes, and still miss nobody: a box in
degrees sized for the community's latitude, and the nearest community by the spatial index.
Two 200 m squares 30 m apart, in metres (UTM 29N, Porto), on a real PostGIS.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, box
from shapely.ops import transform
from sqlalchemy import Engine, text

from data.db import transaction
from data.planning.service import _community, community_unit_inputs
from tests.factory import fresh_store

UTM = 32629
X0, Y0 = 530_000.0, 4_554_000.0  # Porto
TO_WGS84 = Transformer.from_crs(UTM, 4326, always_xy=True)
A = box(X0, Y0, X0 + 200, Y0 + 200)
B = box(X0 + 230, Y0, X0 + 430, Y0 + 200)
#: Households by name: (x, y) from A's south-west corner, in metres.
HOMES = {
    "inside-a": (100, 100),
    "doorstep-west-of-a": (-5, 100),  # outside every community, 5 m from A
    "gap-near-a": (212, 100),  # 12 m from A, 18 m from B
    "gap-near-b": (218, 100),  # 18 m from A, 12 m from B
    "corner-of-a": (-13, -13),  # 18.4 m from A's corner, diagonally
    "too-far": (-25, 100),  # beyond the 20 m snap tolerance
}


def _wkt(geom: shapely.Geometry) -> str:
    """``geom`` (UTM metres) as WGS-84 WKT, as the store keeps it."""
    return shapely.to_wkt(transform(TO_WGS84.transform, geom), rounding_precision=10)


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    for engine in fresh_store(server_url, "gridwork_test_plan_doorstep"):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO district (code, name) VALUES ('D1', 'D')"))
            conn.execute(
                text(
                    "INSERT INTO street (code, name, district_id, geom) SELECT 'S1', 'S', id, "
                    "ST_GeomFromText(:g, 4326) FROM district"
                ),
                {"g": _wkt(A.union(B).envelope)},
            )
            for code, shape in (("CA", A), ("CB", B)):
                conn.execute(
                    text(
                        "INSERT INTO community (code, name, kind, street_id, geom) SELECT :c, "
                        ":c, 'community', id, ST_GeomFromText(:g, 4326) FROM street"
                    ),
                    {"c": code, "g": _wkt(shape)},
                )
                conn.execute(
                    text(
                        "INSERT INTO building (source_id, households_estimated, community_id, "
                        "geom) SELECT CAST(:c AS text), false, id, ST_GeomFromText(:g, 4326) "
                        "FROM community WHERE code = :c"
                    ),
                    {"c": code, "g": _wkt(shape.centroid.buffer(10, quad_segs=1))},
                )
            for name, (dx, dy) in HOMES.items():
                conn.execute(
                    text(
                        "INSERT INTO household (code, size, lives_alone, estimated, geom) "
                        "VALUES (:n, 2, false, false, ST_GeomFromText(:g, 4326))"
                    ),
                    {"n": name, "g": _wkt(Point(X0 + dx, Y0 + dy))},
                )
        yield engine


def _counted(engine: Engine, community: str) -> dict[str, Point]:
    """The households a plan of ``community`` counts, by name, at the points it counts them."""
    with transaction(engine) as db:
        inputs = community_unit_inputs(db, _community(db, community), epsg=UTM, snap_m=20.0)
        names: dict[int, str] = dict(
            db.execute(text("SELECT id, code FROM household")).tuples().all()
        )
    homes = inputs.households
    assert homes is not None
    return {names[i]: g for i, g in zip(homes["id"], homes.geometry, strict=True)}


def test_the_nearest_community_counts_its_doorsteps_inside_its_edge(engine: Engine) -> None:
    a = _counted(engine, "CA")
    assert set(a) == {"inside-a", "doorstep-west-of-a", "gap-near-a", "corner-of-a"}
    for name in ("doorstep-west-of-a", "gap-near-a", "corner-of-a"):
        assert A.covers(a[name]), name
        assert a[name].distance(A.exterior) == pytest.approx(0.5, abs=0.05), name
    assert a["inside-a"].distance(Point(X0 + 100, Y0 + 100)) < 0.01  # where it is


def test_a_household_between_two_communities_is_counted_once_by_the_nearer(
    engine: Engine,
) -> None:
    b = _counted(engine, "CB")
    assert set(b) == {"gap-near-b"}
    assert B.covers(b["gap-near-b"])
