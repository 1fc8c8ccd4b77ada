"""Stored assignment on a real PostGIS: it must be PostGIS's own ST_Covers answer, row by row.

Porto gets test grids (each parish cut in five, see ``tests.data.porto_grids``); the synthetic
district brings its own grids and households, whose true grid is known from their buildings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from api.cli import app as cli
from bench.copy_load import insert_points
from data.assignment.service import (
    GridIndex,
    GridIndexCache,
    assignment_mismatches,
    grids_version,
    load_grid_index,
    reassign,
)
from data.db import make_engine, transaction
from data.importing.loading import import_file
from data.settings import Settings
from geo.errors import Conflict, InvalidInput
from tests.conftest import own_database
from tests.data.porto_grids import write_grid_files
from tests.factory import stored_before_the_rule

# PostGIS's answer for a batch of points: the lowest code among the grids covering each.
_POSTGIS = text(
    """
    SELECT p.i, (SELECT g.code FROM grid g WHERE g.valid_to IS NULL
                 AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))
                 ORDER BY g.code COLLATE "C" LIMIT 1),
           (SELECT code FROM grid
            WHERE id = grid_covering(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)))
    FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS p(x, y, i)
    ORDER BY p.i
    """
)


@pytest.fixture(scope="module")
def porto(server_url: str) -> Iterator[Engine]:
    """Porto with test grids, in its own database (the shared Porto one stays grid-free): a
    copy of the session's ``porto_grids`` template (tests/factory.py)."""
    engine = make_engine(own_database(server_url, "gridwork_test_assign", "porto_grids"))
    yield engine
    engine.dispose()


def _postgis_codes(conn: Any, xs: np.ndarray, ys: np.ndarray) -> list[str | None]:
    """The rule spelled out in SQL, checked equal to ``grid_covering()`` that every SQL path
    uses (migration 0011), so the index compared with it is compared with both."""
    rows = conn.execute(_POSTGIS, {"xs": xs.tolist(), "ys": ys.tolist()}).all()
    assert [r[2] for r in rows] == [r[1] for r in rows], "grid_covering() differs from the rule"
    return [r[1] for r in rows]


def _stored_vs_postgis(engine: Engine, table: str) -> tuple[int, int]:
    """(rows, rows whose stored grid differs from the lowest-code covering grid)."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                f"SELECT count(*), count(*) FILTER (WHERE p.grid_id IS DISTINCT FROM ("
                "SELECT g.id FROM grid g WHERE g.valid_to IS NULL AND ST_Covers(g.geom, p.geom) "
                f'ORDER BY g.code COLLATE "C" LIMIT 1)) FROM {table} p'
            )
        ).one()


def test_porto_households_and_facilities_equal_postgis_st_covers(porto: Engine) -> None:
    households, wrong = _stored_vs_postgis(porto, "household")
    assert households > 3000 and wrong == 0
    facilities, wrong = _stored_vs_postgis(porto, "facility")
    assert facilities == 72 and wrong == 0
    with porto.connect() as conn:
        assert assignment_mismatches(conn) == []
        unassigned = conn.execute(
            text("SELECT count(*) FROM household WHERE grid_id IS NULL OR snapped")
        ).scalar_one()
    assert unassigned == 0, "every estimated household lies inside a parish, so in a grid"


def _vertices_and_midpoints(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    with engine.connect() as conn:
        geoms = shapely.from_wkb(
            conn.execute(text("SELECT ST_AsBinary(geom) FROM grid ORDER BY code")).scalars().all()
        )
    rings = shapely.get_exterior_ring(geoms)
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    same = owner[1:] == owner[:-1]
    mid = (coords[:-1][same] + coords[1:][same]) / 2
    points = np.concatenate([coords, mid])
    return points[:, 0], points[:, 1]


def _write_incidents(path: Path, xs: np.ndarray, ys: np.ndarray, prefix: str) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"id": f"{prefix}{i}", "category": "test"},
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
        }
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_points_on_every_vertex_and_edge_are_stored_as_postgis_says(
    porto: Engine, tmp_path: Path
) -> None:
    xs, ys = _vertices_and_midpoints(porto)
    path = _write_incidents(tmp_path / "edges.geojson", xs, ys, "edge-")
    import_file(porto, "incidents", path, id_field="id")
    with porto.connect() as conn:
        stored: dict[Any, Any] = dict(
            conn.execute(
                text(
                    "SELECT i.source_id, CASE WHEN i.snapped THEN NULL ELSE g.code END "
                    "FROM incident i LEFT JOIN grid g ON g.id = i.grid_id "
                    "WHERE i.source_id LIKE 'edge-%'"
                )
            ).all()
        )
        expected = _postgis_codes(conn, xs, ys)
        assert assignment_mismatches(conn) == []
        # A midpoint computed in floating point may miss an outer edge by 1e-16°: outside for
        # PostGIS too, so it is snapped; less than a millimetre away once projected (a straight
        # lon/lat edge bends slightly in UTM).
        far = conn.execute(
            text("SELECT max(assign_distance_m) FROM incident WHERE source_id LIKE 'edge-%'")
        ).scalar_one()
    assert len(stored) == len(xs) > 500
    assert [stored[f"edge-{i}"] for i in range(len(xs))] == expected
    assert far < 0.005
    assert expected[: len(xs) // 2].count(None) == 0, "every vertex is covered by its grid"


def _shared_vertex(conn: Connection) -> tuple[float, float, list[str]]:
    """A vertex at least three grids share, and their codes, lowest first."""
    lon, lat, codes = conn.execute(
        text(
            'SELECT ST_X(v.geom), ST_Y(v.geom), array_agg(g.code ORDER BY g.code COLLATE "C") '
            "FROM (SELECT DISTINCT (ST_DumpPoints(geom)).geom FROM grid) v "
            "JOIN grid g ON ST_Covers(g.geom, v.geom) GROUP BY 1, 2 "
            "HAVING count(*) >= 3 ORDER BY 1, 2 LIMIT 1"
        )
    ).one()
    return lon, lat, list(codes)


def test_shared_vertex_goes_to_the_lowest_code(porto: Engine) -> None:
    with porto.connect() as conn:
        lon, lat, codes = _shared_vertex(conn)
        index = load_grid_index(conn)
    placed = index.assign([lon], [lat])
    assert index.code[placed.area[0]] == codes[0]
    assert not placed.snapped[0]


def test_the_check_expects_the_lowest_code_on_a_shared_vertex(porto: Engine) -> None:
    """A household on a vertex three grids share, stored in the highest of them: the check
    names the lowest as expected (the rule of grid_covering() and of the index)."""
    with porto.connect() as conn:
        lon, lat, codes = _shared_vertex(conn)
        household, geom, grid, snapped = conn.execute(
            text("SELECT id, geom, grid_id, snapped FROM household ORDER BY id LIMIT 1")
        ).one()
    move = text(
        "UPDATE household SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326), snapped = false, "
        "grid_id = (SELECT id FROM grid WHERE code = :g) WHERE id = :h"
    )
    try:
        with transaction(porto) as session:
            session.execute(move, {"x": lon, "y": lat, "g": codes[-1], "h": household})
        with porto.connect() as conn:
            [wrong] = assignment_mismatches(conn)
        assert (wrong.stored, wrong.expected) == (codes[-1], codes[0])
        with transaction(porto) as session:
            session.execute(move, {"x": lon, "y": lat, "g": codes[0], "h": household})
        with porto.connect() as conn:
            assert assignment_mismatches(conn) == []
    finally:
        with transaction(porto) as session:
            session.execute(
                text("UPDATE household SET geom = :geom, grid_id = :g, snapped = :s WHERE id = :h"),
                {"geom": geom, "g": grid, "s": snapped, "h": household},
            )


def test_outside_points_snap_within_tolerance_and_stay_unassigned_beyond(
    porto: Engine, tmp_path: Path
) -> None:
    with porto.connect() as conn:
        index = load_grid_index(conn)
        outline = shapely.from_wkb(
            conn.execute(text("SELECT ST_AsBinary(ST_Union(geom)) FROM grid")).scalar_one()
        )
    # Walk away from the outline's westernmost vertex, due west, 10 m then 100 m.
    coords = shapely.get_coordinates(outline.exterior)
    lon, lat = coords[np.argmin(coords[:, 0])]
    metres_per_degree = 111_320 * np.cos(np.radians(lat))
    xs = np.array([lon - 10 / metres_per_degree, lon - 100 / metres_per_degree])
    ys = np.array([lat, lat])
    placed = index.assign(xs, ys)
    assert placed.snapped.tolist() == [True, False]
    assert placed.area[0] >= 0 and placed.area[1] == -1
    assert 9.5 < placed.distance_m[0] < 10.5 and 95 < placed.distance_m[1] < 105
    assert placed.nearest[1] >= 0
    path = _write_incidents(tmp_path / "outside.geojson", xs, ys, "outside-")
    import_file(porto, "incidents", path, id_field="id")
    with porto.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT source_id, grid_id IS NOT NULL, snapped, assign_distance_m FROM incident "
                "WHERE source_id LIKE 'outside-%' ORDER BY source_id"
            )
        ).all()
        assert assignment_mismatches(conn) == []
    assert [(r[1], r[2]) for r in rows] == [(True, True), (False, False)]
    assert 95 < rows[1][3] < 105


@pytest.fixture(scope="module")
def porto_index(porto: Engine) -> GridIndex:
    with porto.connect() as conn:
        return load_grid_index(conn)


@pytest.fixture(scope="module")
def porto_rings(porto: Engine) -> list[np.ndarray]:
    with porto.connect() as conn:
        geoms = shapely.from_wkb(
            conn.execute(text("SELECT ST_AsBinary(geom) FROM grid ORDER BY code")).scalars().all()
        )
    return [shapely.get_coordinates(g.exterior) for g in geoms]


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_in_process_assignment_equals_postgis_on_edges_and_vertices(
    porto: Engine, porto_rings: list[np.ndarray], porto_index: GridIndex, data: st.DataObject
) -> None:
    """Random vertices, points along edges and points near them: same grid as PostGIS."""
    picks = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(porto_rings) - 1),
                st.integers(0, 10_000),
                st.sampled_from([0.0, 0.5, 0.25, 1 / 3]) | st.floats(0, 1),
                st.sampled_from([0.0, 0.0, 1e-9, -1e-9, 1e-5, -2e-4]),
            ),
            min_size=1,
            max_size=40,
        )
    )
    xs, ys = [], []
    for ring_i, vertex, t, offset in picks:
        ring = porto_rings[ring_i]
        a = ring[vertex % (len(ring) - 1)]
        b = ring[vertex % (len(ring) - 1) + 1]
        x, y = a + (b - a) * t
        xs.append(x + offset)
        ys.append(y - offset)
    lon, lat = np.array(xs), np.array(ys)
    with porto.connect() as conn:
        expected = _postgis_codes(conn, lon, lat)
    placed = porto_index.assign(lon, lat)
    covered = [
        None if a < 0 or s else porto_index.code[a]
        for a, s in zip(placed.area, placed.snapped, strict=True)
    ]
    assert covered == expected
    # The one-point path of GET /locate gives exactly the batch answer, edges included.
    one_by_one = [porto_index.locate(float(x), float(y)) for x, y in zip(lon, lat, strict=True)]
    batch = list(
        zip(
            placed.area.tolist(),
            placed.snapped.tolist(),
            placed.distance_m.tolist(),
            placed.nearest.tolist(),
            strict=True,
        )
    )
    assert one_by_one == batch


def test_one_point_locate_equals_batch_assign_inside_outside_and_near(
    porto: Engine, porto_index: GridIndex
) -> None:
    with porto.connect() as conn:
        lon0, lat0, lon1, lat1 = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) AS e FROM grid) AS extent"
            )
        ).one()
    rng = np.random.default_rng(7)
    pad = 0.003  # a few hundred metres beyond the grids: snapped and unassigned points too
    lon = rng.uniform(lon0 - pad, lon1 + pad, 3000)
    lat = rng.uniform(lat0 - pad, lat1 + pad, 3000)
    placed = porto_index.assign(lon, lat)
    assert (placed.area >= 0).sum() > 500 and (placed.area < 0).sum() > 100
    assert placed.snapped.sum() > 0
    for i in range(len(lon)):
        assert porto_index.locate(float(lon[i]), float(lat[i])) == (
            int(placed.area[i]),
            bool(placed.snapped[i]),
            float(placed.distance_m[i]),
            int(placed.nearest[i]),
        )


def test_grid_geometry_change_by_import_reassigns_in_the_same_transaction(
    porto: Engine, tmp_path: Path
) -> None:
    with porto.connect() as conn:
        grids = gpd.read_postgis(
            text(
                "SELECT g.code, c.code AS community_code, w.code AS worker_code, g.geom "
                "FROM grid g JOIN community c ON c.id = g.community_id "
                "JOIN worker w ON w.id = g.worker_id ORDER BY g.code"
            ),
            conn,
            geom_col="geom",
            crs=4326,
        )
        before: dict[Any, Any] = dict(
            conn.execute(
                text(
                    "SELECT g.code, count(h.id) FROM grid g LEFT JOIN household h "
                    "ON h.grid_id = g.id GROUP BY g.code"
                )
            ).all()
        )
    original = grids.copy()
    # G01 grows over the whole of G02: every G02 household is now covered by both, and the
    # lower code, G01, takes them.
    g1, g2 = (grids.index[grids["code"] == c][0] for c in ("131208-G01", "131208-G02"))
    grids.loc[g1, "geom"] = shapely.union(grids.loc[g1, "geom"], grids.loc[g2, "geom"])
    if grids.loc[g1, "geom"].geom_type != "Polygon":
        pytest.fail("G01 and G02 must be neighbours for this test")
    _, path = write_grid_files(tmp_path, grids.rename_geometry("geometry"))
    import_file(porto, "grids", path, layer="grids", id_field="code")
    try:
        with porto.connect() as conn:
            after: dict[Any, Any] = dict(
                conn.execute(
                    text(
                        "SELECT g.code, count(h.id) FROM grid g LEFT JOIN household h "
                        "ON h.grid_id = g.id GROUP BY g.code"
                    )
                ).all()
            )
            assert assignment_mismatches(conn) == []
        assert after["131208-G02"] == 0
        assert after["131208-G01"] == before["131208-G01"] + before["131208-G02"]
        assert sum(after.values()) == sum(before.values())
    finally:
        _, path = write_grid_files(tmp_path, original.rename_geometry("geometry"))
        import_file(porto, "grids", path, layer="grids", id_field="code")
    with porto.connect() as conn:
        restored: dict[Any, Any] = dict(
            conn.execute(
                text(
                    "SELECT g.code, count(h.id) FROM grid g LEFT JOIN household h "
                    "ON h.grid_id = g.id GROUP BY g.code"
                )
            ).all()
        )
    assert restored == before


def test_check_lists_every_wrong_row_and_assign_repairs_them(porto: Engine) -> None:
    with transaction(porto) as session:
        session.execute(
            text(
                "UPDATE household SET grid_id = (SELECT id FROM grid WHERE code = '131215-G05') "
                "WHERE id IN (SELECT h.id FROM household h JOIN grid g ON g.id = h.grid_id "
                "WHERE g.code = '131208-G01' ORDER BY h.id LIMIT 7)"
            )
        )
        session.execute(
            text("UPDATE facility SET grid_id = NULL WHERE id IN (SELECT min(id) FROM facility)")
        )
    with porto.connect() as conn:
        wrong = assignment_mismatches(conn)
    assert len(wrong) == 8
    assert sum(1 for m in wrong if m.table == "household" and m.stored == "131215-G05") == 7
    assert all(m.expected is not None for m in wrong)
    with transaction(porto) as session:
        results = {r.table: r for r in reassign(session)}
    assert results["household"].changed == 7 and results["facility"].changed == 1
    with porto.connect() as conn:
        assert assignment_mismatches(conn) == []


def test_cli_assign_and_check(porto: Engine) -> None:
    url = porto.url.render_as_string(hide_password=False)
    env = {"DATABASE_URL": url}
    runner = CliRunner()
    assigned = runner.invoke(cli, ["assign"], env=env)
    assert assigned.exit_code == 0, assigned.output
    assert "household" in assigned.output
    checked = runner.invoke(cli, ["check"], env=env)
    assert "0 mismatch(es)" in checked.output
    assert "keys no page or API path can open: 0" in checked.output


def test_cli_check_lists_a_household_code_no_path_can_open_and_recode_mends_it(
    porto: Engine,
) -> None:
    """A household coded ``12/3`` before such codes were refused: the check names it and
    fails; ``gridwork recode`` refuses another bad code and one already taken, then gives it
    a code the pages open, and the check passes."""
    with transaction(porto) as session:
        first, other = session.execute(text("SELECT min(id), max(code) FROM household")).one()
        first_code = session.execute(
            text("SELECT code FROM household WHERE id = :id"), {"id": first}
        ).scalar_one()
        session.execute(text("UPDATE household SET code = '12/3' WHERE id = :id"), {"id": first})
    env = {"DATABASE_URL": porto.url.render_as_string(hide_password=False)}
    runner = CliRunner()
    try:
        checked = runner.invoke(cli, ["check"], env=env)
        assert checked.exit_code == 1, checked.output
        assert "household '12/3'" in checked.output
        assert "keys no page or API path can open: 1" in checked.output
        assert _check_reads(porto) == [("household", ["12/3"])]  # printed: a read, audited
        # (the command's main() prints these as "error: …" and exits 2)
        refused = runner.invoke(cli, ["recode", "household", "12/3", "new"], env=env)
        assert isinstance(refused.exception, InvalidInput), refused.output
        assert "'new' is the register's page" in str(refused.exception)
        taken = runner.invoke(cli, ["recode", "household", "12/3", other], env=env)
        assert isinstance(taken.exception, Conflict), taken.output
        mended = runner.invoke(cli, ["recode", "household", "12/3", "12-3"], env=env)
        assert mended.exit_code == 0, mended.output
        with porto.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT code FROM household WHERE id = :id"), {"id": first}
                ).scalar_one()
                == "12-3"
            )
        again = runner.invoke(cli, ["check"], env=env)
        assert "keys no page or API path can open: 0" in again.output
        assert len(_check_reads(porto)) == 1  # no household printed, nothing read
        with porto.connect() as conn:  # the old code's audit rows stay findable
            reason = conn.execute(
                text(
                    "SELECT reason FROM audit_log WHERE route = 'gridwork recode' "
                    "AND '12-3' = ANY(subject_ids)"
                )
            ).scalar_one()
        assert reason == "recoded from 12/3 to 12-3 (command line)"
    finally:
        with transaction(porto) as session:
            session.execute(
                text("UPDATE household SET code = :c WHERE id = :id"),
                {"c": first_code, "id": first},
            )


def _check_reads(engine: Engine) -> list[tuple[str, list[str]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT subject_type, subject_ids FROM audit_log "
                "WHERE route = 'gridwork check' ORDER BY id"
            )
        )
        return [(kind, list(ids)) for kind, ids in rows]


def test_grids_version_changes_with_every_grid_write(porto: Engine) -> None:
    cache = GridIndexCache()
    with porto.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first, "unchanged grids: the cached index is reused"
        v1 = grids_version(conn)
    with transaction(porto) as session:
        session.execute(text("UPDATE worker SET phone = phone WHERE code = 'W-131208-G01'"))
    with porto.connect() as conn:
        assert grids_version(conn) != v1
        assert cache.get(conn) is not first


def test_without_grids_points_stay_unassigned(clean_engine: Engine, tmp_path: Path) -> None:
    path = _write_incidents(tmp_path / "i.geojson", np.array([-8.61]), np.array([41.14]), "x-")
    import_file(clean_engine, "incidents", path, id_field="id")
    with clean_engine.connect() as conn:
        row = conn.execute(text("SELECT grid_id, snapped, assign_distance_m FROM incident")).one()
        assert assignment_mismatches(conn) == []
    assert tuple(row) == (None, False, None)


# --- the synthetic district: real grids, households whose grid is known from their building


def _subset(path: Path, folder: Path, prefix: str) -> tuple[Path, dict[str, str]]:
    """Households of the grids whose code starts with ``prefix``, without their building
    column (buildings are not imported), and the grid each belongs to according to the
    generator: the grid of its building."""
    households = pyogrio.read_dataframe(
        path,
        sql="SELECT h.*, b.grid_code FROM households h JOIN buildings b "
        f"ON b.building_id = h.building_id WHERE b.grid_code LIKE '{prefix}%'",
        sql_dialect="SQLITE",
    )
    out = folder / "households.gpkg"
    households.drop(columns=["building_id", "grid_code"]).to_file(out, layer="households")
    return out, dict(zip(households["household_code"], households["grid_code"], strict=True))


def test_synthetic_district_households_land_in_their_buildings_grid(
    server_url: str, synthetic_district_path: Path, tmp_path: Path
) -> None:
    url = own_database(server_url, "gridwork_test_assign_synthetic")
    engine = make_engine(url)
    try:
        s = Settings(database_url=url)
        for kind, layer in (
            ("streets", "streets"),
            ("communities", "communities"),
            ("workers", "workers"),
            ("grids", "grids"),
        ):
            import_file(engine, kind, synthetic_district_path, layer=layer, settings=s)  # type: ignore[arg-type]
        households, truth = _subset(synthetic_district_path, tmp_path, "S02-C0")
        report = import_file(engine, "households", households, layer="households", settings=s)
        assert report.inserted == len(truth) > 15_000
        with engine.connect() as conn:
            stored: dict[Any, Any] = dict(
                conn.execute(
                    text(
                        "SELECT h.code, g.code FROM household h LEFT JOIN grid g "
                        "ON g.id = h.grid_id"
                    )
                ).all()
            )
            assert assignment_mismatches(conn, settings=s) == []
        wrong = {code for code, grid in truth.items() if stored.get(code) != grid}
        assert wrong == set()
    finally:
        engine.dispose()


def test_insert_points_copies_rows_with_their_grid(porto: Engine) -> None:
    """The bulk path: grid, snap flag, distance and NULLs written by one binary COPY."""
    xs, ys = _vertices_and_midpoints(porto)
    with porto.connect() as conn:
        index = load_grid_index(conn)
    coords_west = float(xs.min()), float(ys[np.argmin(xs)])
    step = 1 / (111_320 * np.cos(np.radians(coords_west[1])))
    lon = np.array([*xs[:50], coords_west[0] - 5 * step, coords_west[0] - 500 * step])
    lat = np.array([*ys[:50], coords_west[1], coords_west[1]])
    codes = [f"户-{i:03d}" for i in range(len(lon))]
    with transaction(porto) as session:
        placed = insert_points(
            session,
            "household",
            lon=lon,
            lat=lat,
            index=index,
            values={
                "code": ("text", codes),
                "size": ("int4", np.full(len(lon), 2, dtype=np.int32)),
                "lives_alone": ("bool", np.zeros(len(lon), dtype=bool)),
                "estimated": ("bool", np.zeros(len(lon), dtype=bool)),
            },
        )
    try:
        with porto.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT h.code, g.code, h.snapped, h.assign_distance_m, h.size, "
                    "ST_X(h.geom), ST_Y(h.geom) FROM household h LEFT JOIN grid g "
                    "ON g.id = h.grid_id WHERE h.code LIKE '户-%' ORDER BY h.code"
                )
            ).all()
            assert assignment_mismatches(conn) == []
        assert [r[0] for r in rows] == codes
        assert [(r[5], r[6]) for r in rows] == list(zip(lon.tolist(), lat.tolist(), strict=True))
        expected = [None if a < 0 else index.code[a] for a in placed.area]
        assert [r[1] for r in rows] == expected
        assert (rows[-2][2], rows[-1][1], rows[-1][2]) == (True, None, False)
        assert rows[-1][3] > 400 and all(r[4] == 2 for r in rows)
    finally:
        with transaction(porto) as session:
            session.execute(text("DELETE FROM household WHERE code LIKE '户-%'"))


def test_cli_check_names_an_account_under_the_systems_own_name_until_it_is_disabled(
    porto: Engine,
) -> None:
    """An account named like the system (``GridWork``), made before the name was refused:
    its closes would read "closed by itself". The check names it and fails until an
    administrator disables it."""
    env = {"DATABASE_URL": porto.url.render_as_string(hide_password=False)}
    runner = CliRunner()
    with stored_before_the_rule(porto, "GridWork"):
        checked = runner.invoke(cli, ["check"], env=env)
        assert checked.exit_code == 1, checked.output
        assert "'GridWork' takes the system's own name" in checked.output
        with transaction(porto) as session:
            session.execute(text("UPDATE app_user SET active = false WHERE username = 'GridWork'"))
        again = runner.invoke(cli, ["check"], env=env)
        assert "GridWork" not in again.output
