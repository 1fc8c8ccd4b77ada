"""A coordinator's coverage does no city-wide work and answers as the city-wide walk does.

Porto cut into strips (tests/gridded.py, real PostGIS), the coordinator of community 131208:
the cache hands out only the households stored in their grids, not the city's, and the walk
from the facilities within reach gives the numbers the walk from every facility of the kind
gives.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from sqlalchemy import text

from data.access.queries import AreaScope, resolve_scope
from data.coverage.service import NetworkCache, coverage
from data.models import Role
from geo.coverage.walk import facilities_in_reach, facilities_of_kind, facility_coverage
from tests.gridded import Gridded

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def coordinator(strips: Gridded) -> AreaScope:
    with strips.engine.connect() as conn:
        user = conn.execute(text("SELECT id FROM app_user WHERE username = 'g-coordinator'"))
        return resolve_scope(conn, Role.coordinator, int(user.scalar_one()))


def test_the_households_of_an_area_are_those_stored_in_it(
    strips: Gridded, coordinator: AreaScope
) -> None:
    cache = NetworkCache()
    with strips.engine.connect() as conn:
        _, level, areas, _, homes, _ = cache.walk_inputs(conn, coordinator, None, None)
        everywhere = cache.walk_inputs(conn, None, None, None).areas
    assert level == "grids"
    for some in (areas, everywhere, areas.iloc[::3], areas.iloc[:0]):
        rows, codes = homes.in_areas("grids", some)
        ids = some["id"].to_numpy()
        assert rows.tolist() == np.flatnonzero(np.isin(homes.area_id, ids)).tolist()
        code_of = dict(zip(ids.tolist(), some["code"], strict=True))
        assert codes is not None
        assert codes.tolist() == [code_of[i] for i in homes.area_id[rows].tolist()]
    assert len(homes.in_areas("grids", areas)[0]) == len(homes.ids)  # all theirs, in id order
    with strips.engine.connect() as conn:
        theirs = conn.execute(
            text("SELECT id FROM household WHERE grid_id = ANY(:g) ORDER BY id"),
            {"g": areas["id"].tolist()},
        ).scalars()
        city = conn.execute(text("SELECT count(*) FROM household")).scalar_one()
    assert homes.ids.tolist() == list(theirs)
    assert 0 < len(homes.ids) < city


@pytest.mark.parametrize("kind", ["pharmacy", "school"])
def test_a_coordinators_numbers_are_those_of_the_walk_from_every_facility(
    strips: Gridded, coordinator: AreaScope, kind: str
) -> None:
    cache = NetworkCache()
    with strips.engine.connect() as conn:
        answer = coverage(
            conn, cache, kind=kind, minutes=10, scope=coordinator, drawing=False
        ).as_json()
        epsg, _, areas, graph, homes, stored = cache.walk_inputs(conn, coordinator, kind, None)
    metric = f"EPSG:{epsg}"
    mask = np.isin(homes.area_id, areas["id"].to_numpy())  # every household tested
    code_of = dict(zip(areas["id"].tolist(), areas["code"], strict=True))
    facilities = facilities_of_kind(stored, kind).to_crs(metric)
    households = gpd.GeoDataFrame(geometry=homes.geoms[mask], crs=metric)
    near = facilities_in_reach(facilities, areas.to_crs(metric), households, max_m=750.0)
    assert 0 < len(near) < len(facilities)  # the coordinator's walk leaves some out
    every = facility_coverage(
        graph,
        facilities,
        areas.to_crs(metric),
        households,
        minutes=10,
        household_grid=[code_of[i] for i in homes.area_id[mask].tolist()],
        household_snap=homes.snap_of(mask),
        every_facility=True,
    ).grids
    assert [a["code"] for a in answer["areas"]] == every["code"].tolist()
    for column in ("households", "covered_households", "uncovered"):
        assert [a[column] for a in answer["areas"]] == every[column].tolist()
    shares = [
        np.nan if a["household_share"] is None else a["household_share"] for a in answer["areas"]
    ]
    np.testing.assert_array_equal(shares, every["household_share"].to_numpy())
    land = [a["area_share"] for a in answer["areas"]]
    np.testing.assert_allclose(land, every["area_share"].to_numpy(), atol=1e-9)
    assert answer["households"] > 0
