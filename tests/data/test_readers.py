"""read_layer: every format in, WGS-84 and normalised columns out, every bad row named."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon

from data.importing.readers import read_layer
from geo.errors import CRSError, InvalidInput

# Two neighbouring communities in Porto's historic centre, about 300 m x 220 m each.
WEST = Polygon([(-8.616, 41.140), (-8.612, 41.140), (-8.612, 41.142), (-8.616, 41.142)])
EAST = Polygon([(-8.612, 41.140), (-8.608, 41.140), (-8.608, 41.142), (-8.612, 41.142)])
BOWTIE = Polygon([(-8.61, 41.14), (-8.60, 41.15), (-8.60, 41.14), (-8.61, 41.15), (-8.61, 41.14)])
# the ring dips into a triangle touching its own bottom edge: repairable into a hole
SELF_TOUCHING = Polygon(
    [
        (-8.610, 41.140),
        (-8.605, 41.140),
        (-8.606, 41.142),
        (-8.604, 41.142),
        (-8.605, 41.140),
        (-8.600, 41.140),
        (-8.600, 41.150),
        (-8.610, 41.150),
    ]
)


def communities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["C01", "C02"], "name": ["Oeste", "Leste"], "population": [2067, 1906]},
        geometry=[WEST, EAST],
        crs="EPSG:4326",
    )


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


FORMATS = [
    pytest.param("GeoJSON", "c.geojson", id="geojson"),
    pytest.param("GPKG", "c.gpkg", id="gpkg"),
    pytest.param("ESRI Shapefile", "c.shp", id="shapefile"),
    pytest.param("FlatGeobuf", "c.fgb", id="flatgeobuf"),
]


@pytest.mark.parametrize(("driver", "name"), FORMATS)
def test_each_gis_format_round_trips(tmp_path: Path, driver: str, name: str) -> None:
    path = tmp_path / name
    # FlatGeobuf's spatial index would reorder the features, and rows are numbered in file order
    options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
    communities().to_file(path, driver=driver, engine="pyogrio", layer_options=options)
    result = read_layer(path, kind="communities")
    frame = result.frame
    assert result.rejects == []
    assert frame.crs == "EPSG:4326"
    assert list(frame.columns) == ["source_id", "_row", "code", "name", "population", "geometry"]
    assert list(frame["source_id"]) == ["C01", "C02"]  # the obvious id column: code
    assert list(frame["_row"]) == [1, 2]
    assert list(frame["population"]) == [2067, 1906]
    assert frame.geometry.iloc[0].equals(WEST)  # a shapefile turns rings the other way round


def test_csv_with_lon_lat_defaults_to_wgs84(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "f.csv",
        "id,name,amenity,capacity,longitude,latitude\n"
        "f1,Escola,school,300,-8.6146,41.1456\n"
        "f2,Farmácia,pharmacy,,-8.6110,41.1420\n",
    )
    result = read_layer(path, kind="facilities")
    assert result.rejects == []
    frame = result.frame
    assert list(frame.columns) == ["source_id", "_row", "kind", "name", "capacity", "geometry"]
    assert list(frame["kind"]) == ["school", "pharmacy"]
    assert list(frame["capacity"]) == [300, None]
    assert list(frame["_row"]) == [2, 3]  # spreadsheet rows: the header is row 1
    assert frame.geometry.iloc[0].equals(Point(-8.6146, 41.1456))


def test_csv_saved_by_chinese_excel_is_read(tmp_path: Path) -> None:
    path = tmp_path / "社区.csv"
    path.write_bytes(
        '编码,名称,人口,经度,纬度\nC01,东街社区,"2,067",116.40,39.90\n'.encode("gb18030")
    )
    result = read_layer(path, kind="facilities")
    assert result.frame.iloc[0][["source_id", "name"]].tolist() == ["C01", "东街社区"]
    assert any("GB18030" in note for note in result.notes)
    assert any("人口" in note for note in result.notes)  # not a facility column: ignored, said so


def test_csv_point_at_lon_200_is_refused_naming_row_and_value(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "f.csv",
        "code,lng,lat\nA,-8.61,41.14\nB,200,41.14\nC,abc,41.14\nD,,41.14\n",
    )
    result = read_layer(path, kind="facilities")
    assert list(result.frame["source_id"]) == ["A"]
    assert [str(r) for r in result.rejects] == [
        "row 3 (id B): longitude 200 is out of range [-180, 180]",
        "row 4 (id C): lng 'abc' is not a number",
        "row 5 (id D): lng is empty",
    ]


def test_csv_with_swapped_lat_lon_is_refused(tmp_path: Path) -> None:
    # Beijing, written latitude first
    path = write_csv(tmp_path / "f.csv", "code,lon,lat\nA,39.90,116.40\nB,39.95,116.30\n")
    result = read_layer(path, kind="households")
    assert result.frame.empty
    assert [r.row for r in result.rejects] == [2, 3]
    assert all("looks like lat/lon are swapped" in r.reason for r in result.rejects)


def test_csv_x_y_needs_a_crs(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "code,x,y\nA,-8.61,41.14\n")
    with pytest.raises(CRSError) as err:
        read_layer(path, kind="facilities")
    assert err.value.field == "crs"
    assert len(read_layer(path, kind="facilities", crs=4326).frame) == 1


def test_a_file_without_crs_is_refused_unless_crs_is_given(tmp_path: Path) -> None:
    path = tmp_path / "nocrs.shp"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        communities().set_crs(None, allow_override=True).to_file(path, engine="pyogrio")
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(CRSError, match="no coordinate reference system") as err:
        read_layer(path, kind="communities")
    assert err.value.field == "crs"
    result = read_layer(path, kind="communities", crs="EPSG:4326")
    assert len(result.frame) == 2
    assert not any("declares" in note for note in result.notes)


def test_a_reprojected_file_lands_at_the_right_lon_lat(tmp_path: Path) -> None:
    # Torre dos Clérigos, stored in Portugal's national grid (PT-TM06/ETRS89, EPSG:3763)
    lon, lat = -8.614622, 41.145612
    x, y = pyproj.Transformer.from_crs(4326, 3763, always_xy=True).transform(lon, lat)
    path = tmp_path / "tm06.gpkg"
    gpd.GeoDataFrame({"code": ["T"]}, geometry=[Point(x, y)], crs="EPSG:3763").to_file(path)
    frame = read_layer(path, kind="facilities").frame
    assert frame.crs == "EPSG:4326"
    point = frame.geometry.iloc[0]
    assert point.x == pytest.approx(lon, abs=1e-7)
    assert point.y == pytest.approx(lat, abs=1e-7)


def test_crs_given_overrides_the_declared_one_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "wrong.gpkg"
    communities().set_crs(3857, allow_override=True).to_file(path)
    result = read_layer(path, kind="communities", crs=4326)
    assert result.frame.geometry.iloc[0].equals_exact(WEST, tolerance=1e-9)
    assert any("declares EPSG:3857" in note for note in result.notes)


def test_an_unknown_epsg_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "c.gpkg"
    communities().to_file(path)
    with pytest.raises(CRSError, match="999999") as err:
        read_layer(path, kind="communities", crs=999999)
    assert err.value.field == "crs"


def test_a_text_file_is_not_geodata(tmp_path: Path) -> None:
    path = tmp_path / "minutes.txt"
    path.write_text("Minutes of the residents' meeting, 3 May.\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not a geodata file") as err:
        read_layer(path, kind="communities")
    assert err.value.field == "file"


def test_a_csv_without_coordinates_is_not_geodata(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", "code,name\nA,Oeste\n")
    with pytest.raises(InvalidInput, match="no longitude/latitude columns") as err:
        read_layer(path, kind="communities")
    assert err.value.field == "file"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file") as err:
        read_layer(tmp_path / "nope.gpkg", kind="communities")
    assert err.value.field == "file"


def two_layer_gpkg(tmp_path: Path) -> Path:
    path = tmp_path / "two.gpkg"
    communities().to_file(path, layer="communities")
    roads = gpd.GeoDataFrame(
        {"name": ["Rua"]}, geometry=[LineString([(-8.61, 41.14), (-8.60, 41.14)])], crs=4326
    )
    roads.to_file(path, layer="streets")
    return path


def test_a_missing_layer_lists_the_layers(tmp_path: Path) -> None:
    path = two_layer_gpkg(tmp_path)
    with pytest.raises(InvalidInput) as err:
        read_layer(path, kind="communities", layer="grids")
    assert err.value.field == "layer"
    assert "communities (Polygon)" in err.value.reason
    assert "streets (LineString)" in err.value.reason


def test_without_layer_the_layer_named_like_the_kind_is_used_if_its_type_fits(
    tmp_path: Path,
) -> None:
    path = two_layer_gpkg(tmp_path)
    assert read_layer(path, kind="communities").layer == "communities"
    # "streets" here holds road lines, not street polygons: no guessing
    with pytest.raises(InvalidInput, match="say which one") as err:
        read_layer(path, kind="streets")
    assert err.value.field == "layer"
    assert len(read_layer(path, kind="roads", layer="streets").frame) == 1


def test_a_missing_id_field_lists_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "c.geojson"
    communities().to_file(path)
    with pytest.raises(InvalidInput) as err:
        read_layer(path, kind="communities", id_field="ine_code")
    assert err.value.field == "id_field"
    assert "code, name, population" in err.value.reason
    assert list(read_layer(path, kind="communities", id_field="NAME").frame["source_id"]) == [
        "Oeste",
        "Leste",
    ]


def test_without_an_id_column_the_row_number_is_the_id(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "name,lon,lat\nA,-8.61,41.14\nB,-8.60,41.14\n")
    assert list(read_layer(path, kind="facilities").frame["source_id"]) == ["2", "3"]


def test_empty_and_repeated_ids_are_refused(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "f.csv", "code,lon,lat\nA,-8.61,41.14\n,-8.60,41.14\nA,-8.60,41.15\n"
    )
    result = read_layer(path, kind="facilities")
    assert list(result.frame["_row"]) == [2]
    assert [str(r) for r in result.rejects] == [
        "row 3: the id is empty",
        "row 4 (id A): id 'A' already used at row 2",
    ]


def test_personal_data_columns_are_dropped_with_a_note(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "h.csv",
        "code,size,lives_alone,age_band,building_id,民族,religion,id_number,身份证号,"
        "political_status,grid_no,lon,lat\n"
        "H1,1,是,80+,B7,汉,none,110101190001011234,110101190001011234,x,G1,-8.61,41.14\n",
    )
    result = read_layer(path, kind="households")
    frame = result.frame
    assert list(frame.columns) == [
        "source_id",
        "_row",
        "code",
        "size",
        "lives_alone",
        "age_band",
        "building_source_id",
        "geometry",
    ]
    assert frame.iloc[0][["size", "lives_alone", "age_band"]].tolist() == [1, True, "80+"]
    dropped = next(n for n in result.notes if n.startswith("dropped"))
    for column in ("民族", "religion", "id_number", "身份证号", "political_status"):
        assert column in dropped
    assert "grid_no" not in dropped  # ignored as unused, but not mistaken for an id number
    assert "110101190001011234" not in " ".join(result.notes)
    with pytest.raises(InvalidInput, match="personal data") as err:
        read_layer(path, kind="households", id_field="身份证号")
    assert err.value.field == "id_field"


def test_values_that_cannot_be_read_are_refused_naming_column_and_value(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "h.csv",
        "code,size,lives_alone,age_band,lon,lat\n"
        "H1,2,no,60-79,-8.61,41.14\n"
        "H2,two,maybe,elderly,-8.61,41.14\n",
    )
    result = read_layer(path, kind="households")
    assert list(result.frame["code"]) == ["H1"]
    assert [r.reason for r in result.rejects] == [
        "size: 'two' is not a whole number",
        "lives_alone: 'maybe' is not yes/no (use yes, no, true, false, 1 or 0)",
        "age_band: 'elderly' is not one of 0-17, 18-59, 60-79, 80+",
    ]
    assert {r.row for r in result.rejects} == {3}


def test_community_kind_defaults_to_community_and_is_checked(tmp_path: Path) -> None:
    gdf = communities()
    gdf["kind"] = ["", "Extended"]
    gdf["street_code"] = ["S1", "S1"]
    path = tmp_path / "c.geojson"
    gdf.to_file(path)
    frame = read_layer(path, kind="communities").frame
    assert list(frame["kind"]) == ["community", "extended"]
    assert list(frame["street_code"]) == ["S1", "S1"]
    gdf["kind"] = ["village", "community"]
    gdf.to_file(path)
    result = read_layer(path, kind="communities")
    assert [str(r) for r in result.rejects] == [
        "row 1 (id C01): kind: 'village' is not one of community, extended"
    ]


def test_incident_times_are_read_as_datetimes(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "i.csv",
        "id,category,status,reported_at,lon,lat\n"
        "1,noise,open,2024/5/1 14:30,-8.61,41.14\n"
        "2,leak,in progress,2024-05-02T08:00:00+01:00,-8.61,41.14\n"
        "3,leak,open,yesterday,-8.61,41.14\n",
    )
    result = read_layer(path, kind="incidents")
    frame = result.frame
    assert list(frame["status"]) == ["open", "in_progress"]
    first, second = frame["reported_at"]
    assert (first.year, first.month, first.day, first.hour, first.tzinfo) == (2024, 5, 1, 14, None)
    assert second.utcoffset().total_seconds() == 3600
    assert result.rejects[0].row == 4
    assert "'yesterday' is not a date and time" in result.rejects[0].reason


def test_workers_may_come_without_coordinates(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "w.csv", "工号,姓名,手机,community_code\nW1,李娜,13800000000,C01\n")
    frame = read_layer(path, kind="workers").frame
    assert frame.iloc[0][["code", "display_name", "phone", "community_code"]].tolist() == [
        "W1",
        "李娜",
        "13800000000",
        "C01",
    ]
    assert frame.geometry.isna().all()


def test_roads_explode_multilines_and_turn_oneway_minus_one_round(tmp_path: Path) -> None:
    roads = gpd.GeoDataFrame(
        {"osm_id": [1, 2], "highway": ["residential", "primary"], "oneway": ["-1", "yes"]},
        geometry=[
            LineString([(-8.61, 41.14), (-8.60, 41.14)]),
            MultiLineString([[(-8.61, 41.15), (-8.60, 41.15)], [(-8.59, 41.15), (-8.58, 41.15)]]),
        ],
        crs=4326,
    )
    path = tmp_path / "r.gpkg"
    roads.to_file(path)
    frame = read_layer(path, kind="roads").frame
    assert list(frame["source_id"]) == ["1", "2#1", "2#2"]
    assert list(frame["road_class"]) == ["residential", "primary", "primary"]
    assert list(frame["oneway"]) == [True, True, True]
    assert frame.geometry.iloc[0].coords[0] == (-8.60, 41.14)  # reversed


def test_buildings_get_levels_and_a_metric_footprint(tmp_path: Path) -> None:
    # a 20 m x 10 m block drawn in PT-TM06 metres
    block = Polygon([(-40000, 165000), (-39980, 165000), (-39980, 165010), (-40000, 165010)])
    gdf = gpd.GeoDataFrame(
        {"osm_id": [7, 8], "building": ["house", "yes"], "levels": [2.0, None]},
        geometry=[block, shapely.affinity.translate(block, 50)],
        crs=3763,
    )
    path = tmp_path / "b.fgb"
    gdf.to_file(path, driver="FlatGeobuf", layer_options={"SPATIAL_INDEX": "NO"})
    frame = read_layer(path, kind="buildings").frame
    assert list(frame["building_type"]) == ["house", "yes"]
    assert frame["levels"].iloc[0] == 2.0
    assert np.isnan(frame["levels"].iloc[1])
    assert frame["footprint_m2"].tolist() == pytest.approx([200.0, 200.0], abs=0.5)


def test_a_bowtie_is_refused_and_a_self_touching_ring_repaired(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"code": ["bow", "touch"]}, geometry=[BOWTIE, SELF_TOUCHING], crs="EPSG:4326"
    )
    path = tmp_path / "g.geojson"
    gdf.to_file(path)
    result = read_layer(path, kind="grids")
    assert list(result.frame["code"]) == ["touch"]
    assert result.frame.geometry.iloc[0].is_valid
    assert [(r.row, r.source_id) for r in result.rejects] == [(1, "bow")]
    assert "Self-intersection" in result.rejects[0].reason


def test_progress_is_reported_up_to_the_total(tmp_path: Path) -> None:
    path = tmp_path / "c.gpkg"
    communities().to_file(path)
    calls: list[tuple[int, int | None]] = []
    read_layer(path, kind="communities", progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2, 2)


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read_layer(tmp_path / "x.gpkg", kind="parks")  # type: ignore[arg-type]
    assert err.value.field == "kind"


# --- the real Porto sample ---------------------------------------------------------------------

PBF_BOUNDS = (-8.64, 41.11, -8.57, 41.17)  # the extract's header bbox, widened for complete ways


def test_porto_gpkg_reads_without_a_reject(porto_gpkg: Path) -> None:
    counts = {}
    for kind, layer in [
        ("communities", "communities"),
        ("roads", "streets"),  # OSM "streets" are road lines in our vocabulary
        ("buildings", "buildings"),
        ("facilities", "facilities"),
    ]:
        result = read_layer(porto_gpkg, kind=kind, layer=layer)  # type: ignore[arg-type]
        assert result.rejects == [], kind
        assert result.frame.is_valid.all()
        counts[kind] = len(result.frame)
    assert counts == {"communities": 4, "roads": 1241, "buildings": 3505, "facilities": 72}


def test_porto_communities_carry_population_and_codes(porto_gpkg: Path) -> None:
    frame = read_layer(porto_gpkg, kind="communities", layer="communities").frame
    assert sorted(frame["population"]) == [1901, 1906, 1906, 2067]
    assert sorted(frame["code"]) == ["131208", "131213", "131214", "131215"]
    assert frame["source_id"].str.isdigit().all()  # the OSM relation ids (osm_id column)


@pytest.mark.parametrize(
    ("kind", "in_gpkg"), [("roads", 1241), ("buildings", 3505), ("facilities", 72)]
)
def test_porto_pbf_reads_quickly_and_cleanly(porto_pbf: Path, kind: str, in_gpkg: int) -> None:
    started = time.perf_counter()
    result = read_layer(porto_pbf, kind=kind)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    frame = result.frame
    assert elapsed < 20
    assert len(frame) > in_gpkg  # the extract covers more than the four parishes
    assert result.rejects == []
    assert frame.is_valid.all()
    assert frame["source_id"].is_unique
    west, south, east, north = frame.total_bounds
    assert west >= PBF_BOUNDS[0]
    assert south >= PBF_BOUNDS[1]
    assert east <= PBF_BOUNDS[2]
    assert north <= PBF_BOUNDS[3]


def test_porto_pbf_columns(porto_pbf: Path) -> None:
    roads = read_layer(porto_pbf, kind="roads").frame
    assert {"footway", "residential"} <= set(roads["road_class"])
    assert roads["source_id"].str.match(r"^w\d+$").all()
    buildings = read_layer(porto_pbf, kind="buildings").frame
    assert buildings["levels"].notna().any()
    assert (buildings["footprint_m2"] > 0).all()
    assert set(buildings.geom_type) == {"Polygon"}
    facilities = read_layer(porto_pbf, kind="facilities").frame
    assert {"school", "pharmacy"} <= set(facilities["kind"])
    assert set(facilities.geom_type) == {"Point"}
    assert facilities["source_id"].str[0].isin(["n", "w", "r"]).all()


def test_pbf_refuses_what_it_cannot_give(porto_pbf: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read_layer(porto_pbf, kind="communities")
    assert err.value.field == "kind"
    with pytest.raises(InvalidInput) as err:
        read_layer(porto_pbf, kind="roads", layer="lines")
    assert err.value.field == "layer"
