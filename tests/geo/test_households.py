"""Household estimates from footprints, census scaling and point placement.

Hand-made buildings live in UTM 29N (Porto's zone), so ``box(0, 0, 10, 10)`` is 100 m².
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Polygon, box

from geo.district.households import (
    HouseholdRule,
    apportion,
    estimate_households,
    place_households,
    scale_to_population,
)
from geo.errors import CRSError, InvalidInput

UTM = "EPSG:32629"
SERVICE_FIELDS = {"building_id", "household", "size", "lives_alone", "estimated", "geometry"}


def _buildings() -> gpd.GeoDataFrame:
    """Five footprints side by side, the L-shaped one to test placement in a concave polygon.

    +----+   +--+      +----------+   +----+   +--+
    |    |   |  |      | L        |   |    |   |  |
    +----+   |  +--+   +----------+   +----+   +--+
    house    |     |   church         garage   unknown levels
             +-----+   (never a home)           apartments
             apartments
    """
    ell = Polygon([(20, 0), (40, 0), (40, 10), (30, 10), (30, 30), (20, 30)])
    return gpd.GeoDataFrame(
        {
            "building": ["house", "apartments", "church", "garage", "apartments"],
            "levels": [2.0, 5.0, 1.0, 1.0, None],
            "community": ["A", "A", "A", "B", "B"],
        },
        geometry=[
            box(0, 0, 10, 10),
            ell,
            box(50, 0, 80, 30),
            box(90, 0, 95, 5),
            box(100, 0, 130, 30),
        ],
        crs=UTM,
    )


def test_rule_counts_residential_floor_area_only() -> None:
    """house: 2 × 100 m² × 0.8 ÷ 90 = 1.78 → 2; L-shape: 5 × 400 × 0.8 ÷ 90 = 17.8 → 18;
    church and garage → 0; apartments with unknown levels: default 3 × 900 × 0.8 ÷ 90 = 24."""
    estimated = estimate_households(_buildings())
    assert estimated["households"].tolist() == [2, 18, 0, 0, 24]
    assert estimated["levels_default"].tolist() == [False, False, False, False, True]
    assert estimated["households_estimated"].all()


def test_rule_parameters_change_the_estimate() -> None:
    rule = HouseholdRule(default_levels=4, avg_dwelling_m2=60)
    assert estimate_households(_buildings(), rule)["households"].iloc[4] == 48  # 4·900·0.8/60


def test_rule_refuses_nonsense_parameters_all_at_once() -> None:
    with pytest.raises(InvalidInput, match=r"usable_share.*avg_dwelling_m2"):
        HouseholdRule(usable_share=0, avg_dwelling_m2=-1)


def test_geographic_crs_is_refused() -> None:
    with pytest.raises(CRSError, match="not a projected metric CRS"):
        estimate_households(_buildings().to_crs(4326))


def test_apportion_is_exact_and_proportional() -> None:
    assert apportion(np.array([1, 1, 1]), 10).tolist() == [4, 3, 3]  # tie → earlier
    assert apportion(np.array([0, 5, 15]), 7).tolist() == [0, 2, 5]
    assert apportion(np.array([0, 0]), 0).tolist() == [0, 0]
    with pytest.raises(InvalidInput, match="zero weights"):
        apportion(np.array([0, 0]), 3)


def test_scaling_makes_community_totals_exact() -> None:
    """A: 2 + 18 = 20 estimated → 230 people ÷ 2.3 = 100 households, shared 10 : 90.
    B has no population: its estimate stays."""
    scaled = scale_to_population(
        estimate_households(_buildings()), {"A": 230}, community_col="community"
    )
    assert scaled["households"].tolist() == [10, 90, 0, 0, 24]


def test_scaling_refuses_a_population_without_homes() -> None:
    buildings = estimate_households(_buildings()).assign(community="C")
    buildings.loc[buildings["building"] == "church", "community"] = "D"
    with pytest.raises(InvalidInput, match=r"no residential building .* D"):
        scale_to_population(buildings, {"D": 50}, community_col="community")


def test_placement_is_inside_deterministic_and_sized_to_population() -> None:
    buildings = scale_to_population(
        estimate_households(_buildings()), {"A": 230}, community_col="community"
    )

    def place(seed: int) -> gpd.GeoDataFrame:
        return place_households(
            buildings,
            buildings["households"],
            seed,
            community_col="community",
            populations={"A": 230},
        )

    first, again, other = place(7), place(7), place(8)

    assert_geodataframe_equal(first, again)
    assert not first.geometry.geom_equals(other.geometry).all()
    assert set(first.columns) == SERVICE_FIELDS | {"community"}

    footprints = buildings.geometry.loc[first["building_id"]].to_numpy()
    assert shapely.contains(footprints, first.geometry.to_numpy()).all()
    assert first.groupby("building_id").size().to_dict() == {0: 10, 1: 90, 4: 24}
    assert first.groupby("building_id")["household"].max().to_dict() == {0: 9, 1: 89, 4: 23}

    sizes = first.groupby("community")["size"]
    assert sizes.sum()["A"] == 230  # the census population, exactly
    assert sizes.sum()["B"] == round(24 * 2.3)
    assert first["size"].between(1, 6).all()
    assert (first["lives_alone"] == (first["size"] == 1)).all()
    assert first["estimated"].all()


def test_placement_needs_counts_aligned_with_buildings() -> None:
    buildings = _buildings()
    with pytest.raises(InvalidInput, match="indexed like buildings"):
        place_households(buildings, buildings["levels"].reset_index(drop=True).iloc[:2], 1)


@pytest.fixture(scope="module")
def porto(porto_gpkg_path: Path) -> tuple[gpd.GeoDataFrame, dict[int, int]]:
    buildings = pyogrio.read_dataframe(porto_gpkg_path, layer="buildings").to_crs(UTM)
    communities = pyogrio.read_dataframe(porto_gpkg_path, layer="communities")
    populations = dict(zip(communities["osm_id"], communities["population"], strict=True))
    return buildings.set_index("osm_id"), populations


def test_porto_estimates_scale_to_the_census(
    porto: tuple[gpd.GeoDataFrame, dict[int, int]],
) -> None:
    """3,505 OSM buildings in four parishes of 1,901–2,067 residents (2011 census).

    The footprint rule alone gives ~13,400 households, about four times what the census
    supports (empty upper floors, offices, tourist flats): scaling is what makes it usable.
    """
    buildings, populations = porto
    estimated = estimate_households(buildings)
    # our measured footprints agree with the ones prepare.py stored, to the centimetre²
    assert np.allclose(buildings.area, buildings["footprint_m2"], atol=0.1)
    raw = estimated.groupby("community_osm_id")["households"].sum()
    assert (raw > 2 * raw.index.map(populations) / 2.3).all()

    scaled = scale_to_population(estimated, populations, community_col="community_osm_id")
    totals = scaled.groupby("community_osm_id")["households"].sum()
    assert totals.to_dict() == {c: round(p / 2.3) for c, p in populations.items()}
    assert (scaled.loc[~scaled["residential"], "households"] == 0).all()

    points = place_households(
        scaled,
        scaled["households"],
        2011,
        community_col="community_osm_id",
        populations=populations,
    )
    assert len(points) == totals.sum()
    assert points.groupby("community_osm_id")["size"].sum().to_dict() == populations
    footprints = scaled.geometry.loc[points["building_id"]].to_numpy()
    assert shapely.contains(footprints, points.geometry.to_numpy()).all()
