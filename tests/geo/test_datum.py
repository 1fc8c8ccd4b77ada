"""WGS-84 ↔ GCJ-02 ↔ BD-09: reference values, round trips measured on the ellipsoid, edges.

The reference values were computed with ``prcoords`` 1.0.2 (CC0, the Python port of
PRCoords), which implements the same public formulas: its forward results are matched to
1e-12 degrees, its iterative inverses (``gcj_wgs_bored`` / ``bd_wgs_bored``, which stop at
1e-5 degrees of residual) to 1e-6 degrees, about 10 cm.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.care.datum import CHINA_BBOX, Datum, from_wgs84, in_china, to_wgs84
from geo.errors import InvalidInput

GEOD = Geod(ellps="WGS84")
SHIFTED: tuple[Datum, ...] = ("gcj02", "bd09")

# (wgs lon, wgs lat) → prcoords.wgs_gcj / prcoords.wgs_bd, as (lon, lat).
FORWARD = [
    pytest.param(
        (116.397428, 39.90923),
        (116.40367162595768, 39.91063350638631),
        (116.41004410170474, 39.916972856075134),
        id="Beijing",
    ),
    pytest.param(
        (121.4737, 31.2304),
        (121.47822305927693, 31.22845773757727),
        (121.484781468503, 31.234310593689997),
        id="Shanghai",
    ),
    pytest.param(
        (84.87, 45.58),
        (84.87242338022192, 45.58082075373569),
        (84.87892581804383, 45.586780548387814),
        id="Karamay",
    ),
]

# (gcj-or-bd lon, lat) → prcoords.gcj_wgs_bored / prcoords.bd_wgs_bored, as (lon, lat).
INVERSE = [
    pytest.param(
        (116.397428, 39.90923),
        (116.39118683763206, 39.90782876528027),
        (116.38480168214922, 39.901522546041335),
        id="Beijing",
    ),
    pytest.param(
        (84.87, 45.58),
        (84.86757299226414, 45.5791761126541),
        (84.86112476573334, 45.573091447174356),
        id="Karamay",
    ),
]


def _metres(lon1: object, lat1: object, lon2: object, lat2: object) -> np.ndarray:
    _, _, distance = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(distance)


@pytest.mark.parametrize(("wgs", "gcj", "bd"), FORWARD)
def test_forward_matches_prcoords(
    wgs: tuple[float, float], gcj: tuple[float, float], bd: tuple[float, float]
) -> None:
    assert from_wgs84(*wgs, "gcj02") == pytest.approx(gcj, abs=1e-12)
    assert from_wgs84(*wgs, "bd09") == pytest.approx(bd, abs=1e-12)


@pytest.mark.parametrize(("given_", "from_gcj", "from_bd"), INVERSE)
def test_inverse_matches_prcoords(
    given_: tuple[float, float], from_gcj: tuple[float, float], from_bd: tuple[float, float]
) -> None:
    assert to_wgs84(*given_, "gcj02") == pytest.approx(from_gcj, abs=1e-6)
    assert to_wgs84(*given_, "bd09") == pytest.approx(from_bd, abs=1e-6)


def test_karamay_shift_is_hundreds_of_metres() -> None:
    """The issue's case: a GCJ-02 fix read as WGS-84 lands in another grid."""
    lon, lat = 84.87, 45.58
    gcj = from_wgs84(lon, lat, "gcj02")
    bd = from_wgs84(lon, lat, "bd09")
    assert 100 < float(_metres(lon, lat, *gcj)) < 1000  # ≈ 210 m
    assert 500 < float(_metres(lon, lat, *bd)) < 2000  # ≈ 1,030 m


china_lon = st.floats(73.0, 135.0)
china_lat = st.floats(3.9, 53.6)


@settings(max_examples=200, deadline=None)
@given(lon=china_lon, lat=china_lat, datum=st.sampled_from(SHIFTED))
def test_round_trip_from_wgs84_is_under_a_millimetre(lon: float, lat: float, datum: Datum) -> None:
    shifted = from_wgs84(lon, lat, datum)
    back = to_wgs84(*shifted, datum)
    assert float(_metres(lon, lat, *back)) < 0.001


@settings(max_examples=200, deadline=None)
@given(lon=china_lon, lat=china_lat, datum=st.sampled_from(SHIFTED))
def test_round_trip_to_wgs84_is_under_a_millimetre(lon: float, lat: float, datum: Datum) -> None:
    """The direction devices need: their reading, to WGS-84, reproduces their reading."""
    wgs = to_wgs84(lon, lat, datum)
    again = from_wgs84(*wgs, datum)
    assert float(_metres(lon, lat, *again)) < 0.001


def test_round_trip_on_a_dense_array_of_china() -> None:
    """Vectorized: 200,000 points over the whole country, worst case measured, not sampled."""
    rng = np.random.default_rng(20240501)
    lon = rng.uniform(73.0, 135.0, 200_000)
    lat = rng.uniform(3.9, 53.6, 200_000)
    for datum in SHIFTED:
        back = to_wgs84(*from_wgs84(lon, lat, datum), datum)
        assert _metres(lon, lat, *back).max() < 0.001


def test_round_trip_where_the_offset_is_steepest() -> None:
    """The ``sqrt(|lon - 105|)`` term has an unbounded slope at 105°E; iteration still converges."""
    lon = np.array([105.0, 105.0 + 1e-12, 105.0 - 1e-9, 105.0 + 1e-6, 104.99999])
    lat = np.full(lon.shape, 35.0)
    for datum in SHIFTED:
        back = to_wgs84(*from_wgs84(lon, lat, datum), datum)
        assert _metres(lon, lat, *back).max() < 0.001
        again = from_wgs84(*to_wgs84(lon, lat, datum), datum)
        assert _metres(lon, lat, *again).max() < 0.001


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        pytest.param(-0.1276, 51.5072, id="London"),
        pytest.param(-74.006, 40.7128, id="New York"),
        pytest.param(151.2093, -33.8688, id="Sydney"),
        pytest.param(71.9, 40.0, id="just west of the box"),
        pytest.param(137.9, 35.0, id="just east of the box"),
        pytest.param(100.0, 55.9, id="just north of the box"),
        pytest.param(100.0, 0.8, id="just south of the box"),
        pytest.param(180.0, -90.0, id="corner of the world"),
    ],
)
@pytest.mark.parametrize("datum", ["wgs84", "gcj02", "bd09"])
def test_outside_china_is_unchanged(lon: float, lat: float, datum: Datum) -> None:
    assert from_wgs84(lon, lat, datum) == (lon, lat)
    assert to_wgs84(lon, lat, datum) == (lon, lat)


def test_in_china_box_edges_are_inclusive() -> None:
    west, south, east, north = CHINA_BBOX
    inside = in_china([west, east, 100.0, 100.0, west - 1e-9], [30.0, 30.0, south, north, 30.0])
    assert inside.tolist() == [True, True, True, True, False]


def test_arrays_keep_their_shape_and_match_scalars() -> None:
    lon = np.array([[116.397428, -0.1276], [84.87, 121.4737]])
    lat = np.array([[39.90923, 51.5072], [45.58, 31.2304]])
    for datum in ("wgs84", "gcj02", "bd09"):
        for convert in (to_wgs84, from_wgs84):
            out_lon, out_lat = convert(lon, lat, datum)
            assert out_lon.shape == lat.shape
            assert out_lat.dtype == np.float64
            for i, j in np.ndindex(lon.shape):
                assert convert(float(lon[i, j]), float(lat[i, j]), datum) == (
                    out_lon[i, j],
                    out_lat[i, j],
                )


def test_scalars_give_floats_and_inputs_are_not_modified() -> None:
    lon = np.array([116.397428])
    lat = np.array([39.90923])
    out = to_wgs84(116.397428, 39.90923, "gcj02")
    assert all(type(v) is float for v in out)
    to_wgs84(lon, lat, "bd09")
    from_wgs84(lon, lat, "bd09")
    assert lon[0] == 116.397428
    assert lat[0] == 39.90923


def test_wgs84_is_the_identity_anywhere() -> None:
    assert to_wgs84(116.397428, 39.90923, "wgs84") == (116.397428, 39.90923)


@pytest.mark.parametrize(
    ("lon", "lat", "field", "index"),
    [
        pytest.param([116.0, 117.0, 118.0], [39.0, 39.0, np.nan], "lat", 2, id="NaN lat"),
        pytest.param([116.0, 181.0], [39.0, 39.0], "lon", 1, id="lon > 180"),
        pytest.param([116.0, -np.inf], [39.0, 39.0], "lon", 1, id="infinite lon"),
        pytest.param([116.0, 116.0], [-90.5, 39.0], "lat", 0, id="lat < -90"),
    ],
)
@pytest.mark.parametrize("convert", [to_wgs84, from_wgs84])
def test_bad_values_name_field_and_index(
    lon: list[float], lat: list[float], field: str, index: int, convert: Callable[..., object]
) -> None:
    with pytest.raises(InvalidInput) as info:
        convert(lon, lat, "gcj02")
    assert info.value.field == field
    assert info.value.index == index


def test_bad_scalar_has_no_index() -> None:
    with pytest.raises(InvalidInput) as info:
        to_wgs84(float("nan"), 39.0, "bd09")
    assert info.value.field == "lon"
    assert info.value.index is None


def test_unknown_datum_and_mismatched_shapes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown datum") as info:
        to_wgs84(116.0, 39.0, "cgcs2000")  # type: ignore[call-overload]
    assert info.value.field == "datum"
    with pytest.raises(InvalidInput, match="shape"):
        from_wgs84([116.0, 117.0], [39.0], "gcj02")
    with pytest.raises(InvalidInput, match="numbers"):
        from_wgs84(["east"], [39.0], "gcj02")
