"""Importing into a real PostGIS: counts, idempotence, all-or-nothing, and every reject named."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from data.importing.importer import upsert
from data.importing.loading import import_file
from geo.errors import CRSError, ImportRejected


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_porto_layers_import_with_their_counts(clean_engine: Engine, porto_gpkg: Path) -> None:
    communities = import_file(
        clean_engine, "communities", porto_gpkg, layer="communities", id_field="ref_code"
    )
    roads = import_file(clean_engine, "roads", porto_gpkg, layer="streets")
    buildings = import_file(clean_engine, "buildings", porto_gpkg, layer="buildings")
    facilities = import_file(clean_engine, "facilities", porto_gpkg, layer="facilities")
    assert (communities.inserted, roads.inserted, buildings.inserted, facilities.inserted) == (
        4,
        1241,
        3505,
        72,
    )
    with clean_engine.connect() as conn:
        srids = (
            conn.execute(
                text(
                    "SELECT DISTINCT ST_SRID(geom) FROM road_segment "
                    "UNION SELECT ST_SRID(geom) FROM building"
                )
            )
            .scalars()
            .all()
        )
        orphans = conn.execute(
            text("SELECT count(*) FROM building WHERE community_id IS NULL")
        ).scalar_one()
    assert srids == [4326]
    assert orphans == 0, "every Porto building lies in one of the four parishes"


def test_reimport_is_idempotent(clean_engine: Engine, porto_gpkg: Path) -> None:
    first = import_file(clean_engine, "facilities", porto_gpkg, layer="facilities")
    with clean_engine.connect() as conn:
        before = conn.execute(
            text("SELECT source_id, kind, name, ST_AsText(geom) FROM facility ORDER BY source_id")
        ).all()
    second = import_file(clean_engine, "facilities", porto_gpkg, layer="facilities")
    with clean_engine.connect() as conn:
        after = conn.execute(
            text("SELECT source_id, kind, name, ST_AsText(geom) FROM facility ORDER BY source_id")
        ).all()
    assert (first.inserted, first.updated, first.unchanged) == (72, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 72)
    assert before == after


def _write_geojson(path: Path, features: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _point(fid: str, lon: float, lat: float, kind: str = "clinic") -> dict[str, object]:
    return {
        "type": "Feature",
        "properties": {"id": fid, "kind": kind},
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


def test_one_bad_row_writes_nothing_and_names_every_reject(
    clean_engine: Engine, tmp_path: Path
) -> None:
    path = _write_geojson(
        tmp_path / "f.geojson",
        [
            _point("a", -8.61, 41.14),
            _point("b", 200.0, 41.14),
            _point("c", -8.62, 41.15),
            _point("d", -8.62, 95.0),
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(clean_engine, "facilities", path)
    rows = [(r.row, r.source_id) for r in caught.value.rejects]
    assert rows == [(2, "b"), (4, "d")]
    assert "200" in caught.value.rejects[0].reason
    assert _count(clean_engine, "facility") == 0


def test_allow_rejects_keeps_the_good_rows(clean_engine: Engine, tmp_path: Path) -> None:
    path = _write_geojson(
        tmp_path / "f.geojson",
        [_point("a", -8.61, 41.14), _point("b", 200.0, 41.14), _point("c", -8.62, 41.15)],
    )
    report = import_file(clean_engine, "facilities", path, allow_rejects=True)
    assert report.inserted == 2
    assert [r.source_id for r in report.rejects] == ["b"]
    assert _count(clean_engine, "facility") == 2


def test_unknown_parent_is_a_reject(clean_engine: Engine, tmp_path: Path) -> None:
    square = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]]],
    }
    path = _write_geojson(
        tmp_path / "grids.geojson",
        [
            {
                "type": "Feature",
                "geometry": square,
                "properties": {"code": "G1", "community_code": "NOPE"},
            }
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(clean_engine, "grids", path)
    assert "community_code 'NOPE' does not exist" in caught.value.rejects[0].reason
    assert _count(clean_engine, "grid") == 0


def test_file_without_crs_is_refused_unless_crs_given(clean_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,x,y,kind\n1,530000,4554000,school\n")
    with pytest.raises(
        CRSError, match=r"columns .x./.y., which may be projected metres; pass crs="
    ) as err:
        import_file(clean_engine, "facilities", path)
    assert err.value.field == "crs"
    assert _count(clean_engine, "facility") == 0
    import_file(clean_engine, "facilities", path, crs=32629)
    with clean_engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM facility")).one()
    assert -8.7 < lon < -8.5 and 41.0 < lat < 41.2


def test_pbf_roads_import(clean_engine: Engine, porto_pbf: Path) -> None:
    report = import_file(clean_engine, "roads", porto_pbf)
    assert report.inserted > 1241 and not report.rejects
    with clean_engine.connect() as conn:
        invalid = conn.execute(
            text("SELECT count(*) FROM road_segment WHERE NOT ST_IsValid(geom)")
        ).scalar_one()
    assert invalid == 0


def test_a_key_staged_three_times_keeps_its_first_row_and_rejects_the_others(
    clean_engine: Engine,
) -> None:
    """The importer's own check, for frames that reach it without the file readers' (which
    keep a key's first row too): with ``allow_rejects`` it rejected only one row of each
    repeated key, so a key given three times still met its twin in the one INSERT … ON
    CONFLICT ("cannot affect row a second time") and nothing was imported."""
    frame = gpd.GeoDataFrame(
        {
            "_row": [1, 2, 3, 4, 5],
            "source_id": ["a", "b", "a", "c", "a"],
            "kind": ["clinic"] * 5,
        },
        geometry=[Point(-8.61 - i / 100, 41.14) for i in range(5)],
        crs=4326,
    )
    with Session(clean_engine) as session, pytest.raises(ImportRejected) as caught:
        upsert(session, "facilities", frame, source="f.csv")
    assert [str(r) for r in caught.value.rejects] == [
        "row 3 (id a): source_id 'a' already used at row 1",
        "row 5 (id a): source_id 'a' already used at row 1",
    ]

    with Session(clean_engine) as session, session.begin():
        report = upsert(session, "facilities", frame, source="f.csv", allow_rejects=True)
    assert [r.row for r in report.rejects] == [3, 5]
    assert (report.inserted, report.updated) == (3, 0)
    with clean_engine.connect() as conn:
        stored = conn.execute(text("SELECT source_id, ST_X(geom) FROM facility ORDER BY 1")).all()
    assert [(k, round(x, 2)) for k, x in stored] == [("a", -8.61), ("b", -8.62), ("c", -8.64)]


def test_a_key_no_page_or_api_path_can_open_is_a_reject(
    clean_engine: Engine, tmp_path: Path
) -> None:
    """A facility keyed ``12/3`` or ``new`` was stored and listed, and its page (and the
    API's ``/facilities/{source_id}``) could never open it: the path splits at the slash, and
    ``new`` is the register's page for adding one. Each is a reject naming its row and why;
    ``NEW`` and a key with a dash are fine."""
    path = _write_geojson(
        tmp_path / "f.geojson",
        [
            _point("12/3", -8.61, 41.14),
            _point("new", -8.61, 41.141),
            _point("NEW", -8.62, 41.15),
            _point("door\t1", -8.62, 41.151),
            _point("12-3", -8.62, 41.152),
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(clean_engine, "facilities", path)
    said = [(r.row, r.source_id, r.reason) for r in caught.value.rejects]
    assert [(row, key) for row, key, _ in said] == [(1, "12/3"), (2, "new"), (4, "door\t1")]
    assert "'/'" in said[0][2] and "'new'" in said[1][2] and "control" in said[2][2]
    assert _count(clean_engine, "facility") == 0
    report = import_file(clean_engine, "facilities", path, allow_rejects=True)
    assert report.inserted == 2 and len(report.rejects) == 3
