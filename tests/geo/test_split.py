"""The splitter: band, contiguity, roads, locks, infeasible cases, determinism, real data.

Fixtures are :func:`tests.geo.test_units.lattice` block lattices (roads between blocks).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from geo.errors import InvalidInput
from geo.planning.split import SplitResult, split_community
from geo.planning.units import Units, build_units
from tests.geo.test_units import lattice


def _grids(result: SplitResult) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    units = result.assignment.index.tolist()
    for unit, code in zip(units, result.assignment.tolist(), strict=True):
        out.setdefault(code, []).append(unit)
    return out


def test_lattice_of_60s_makes_three_road_bounded_grids_of_180() -> None:
    """540 households in 9 blocks of 60: only 3 grids of exactly 3 blocks fit 150-180.

    +----+----+----+
    | 60 | 60 | 60 |
    +----+----+----+
    | 60 | 60 | 60 |
    +----+----+----+
    | 60 | 60 | 60 |
    +----+----+----+
    """
    result = split_community(lattice([60] * 9), seed=3)
    m = result.metrics
    assert m.n_grids == 3
    assert m.grids["households"].tolist() == [180, 180, 180]
    assert m.grids["contiguous"].all()
    assert m.road_share == 1.0
    assert m.shared_buildings.empty and m.cut_blocks.empty
    assert result.issues == () and not result.flagged
    assert sorted(_grids(result)) == ["G01", "G02", "G03"]


def test_band_and_contiguity_hold_on_a_bigger_lattice() -> None:
    """A 6 × 6 lattice of uneven blocks (20-79 households): every grid in the band."""
    rng = np.random.default_rng(7)
    households = rng.integers(20, 80, size=36)
    units = lattice(households.tolist(), n=6)
    result = split_community(units, seed=1)
    grids = result.metrics.grids
    assert grids["in_band"].all()
    assert grids["contiguous"].all()
    assert grids["households"].sum() == households.sum()
    assert result.issues == ()


def test_community_below_the_minimum_is_one_flagged_grid() -> None:
    result = split_community(lattice([10, 20, 30, 40], n=2), seed=1)
    assert result.metrics.n_grids == 1
    [issue] = result.issues
    assert issue.kind == "below_min"
    assert "100 households" in issue.detail
    assert result.flagged == {"G01"}
    assert not result.grids["in_band"].iloc[0]


def test_total_no_grid_count_can_divide_is_flagged_not_hidden() -> None:
    """200 households: one grid holds at most 180, two need at least 300."""
    result = split_community(lattice([50, 50, 50, 50], n=2), seed=1)
    [issue] = result.issues
    assert issue.kind == "not_divisible"
    assert result.metrics.n_grids == 1
    assert result.flagged == {"G01"}


def test_unit_over_the_maximum_is_its_own_flagged_grid() -> None:
    """With whole blocks only, the 250-household block cannot be split."""
    units = lattice([250, 60, 60, 60, 0, 60, 60, 60, 0], detail="blocks")
    result = split_community(units, seed=1)
    kinds = [i.kind for i in result.issues]
    assert "unit_over_max" in kinds
    big = result.assignment.iloc[0]
    assert _grids(result)[big] == [0]
    assert big in result.flagged
    others = result.grids.drop(index=big)
    assert others["in_band"].all() and others["contiguous"].all()


def test_large_block_is_cut_and_shared_buildings_are_reported() -> None:
    """One block of 330 households in three buildings (110 each, 4 entrances of 27-28):
    two grids of 165 need a cut inside the block and through the middle building."""
    units = lattice([330], n=1, buildings_per_block=3)
    result = split_community(units, seed=1)
    m = result.metrics
    assert m.grids["households"].tolist() == [165, 165]
    assert m.grids["contiguous"].all()
    assert len(m.cut_blocks) == 1
    assert len(m.shared_buildings) == 1
    assert m.road_share == 0.0  # the only boundary between the grids is inside the block


def test_locked_grid_is_kept_exactly() -> None:
    """The west column is a locked grid "OLD" (it holds 100, out of band: kept, flagged)."""
    units = lattice([40, 60, 60, 30, 60, 60, 30, 60, 60], detail="blocks")
    locked = {0: "OLD", 3: "OLD", 6: "OLD"}
    result = split_community(units, seed=2, locked=locked, locked_grids=["OLD"])
    assert _grids(result)["OLD"] == [0, 3, 6]
    assert "OLD" in result.flagged
    assert [i.kind for i in result.issues] == ["locked_out_of_band"]
    rest = result.grids.drop(index="OLD")
    assert rest["in_band"].all() and rest["contiguous"].all()
    assert bool(result.grids.loc["OLD", "locked"])


def test_locked_units_end_up_in_the_grid_named_for_them() -> None:
    """Opposite corners locked to "N" and "S": they must be in different grids, so named."""
    units = lattice([60] * 9, detail="blocks")
    result = split_community(units, seed=5, locked={0: "N", 8: "S", 1: "N"})
    grids = _grids(result)
    assert 0 in grids["N"] and 1 in grids["N"] and 8 in grids["S"]
    assert result.metrics.grids["in_band"].all()
    assert sorted(grids) == ["G01", "N", "S"]


def test_locks_are_checked() -> None:
    units = lattice([60] * 9)
    with pytest.raises(InvalidInput, match="no unit 99"):
        split_community(units, locked={99: "A"})
    with pytest.raises(InvalidInput, match="have no locked units"):
        split_community(units, locked={0: "A"}, locked_grids=["B"])
    with pytest.raises(InvalidInput, match="0 < min"):
        split_community(units, min_households=200, max_households=100)


def test_same_seed_same_plan() -> None:
    rng = np.random.default_rng(11)
    units = lattice(rng.integers(30, 70, size=25).tolist(), n=5)
    first = split_community(units, seed=4)
    again = split_community(units, seed=4)
    assert first.assignment.equals(again.assignment)


def test_real_oversized_community_is_fully_in_band(synthetic_district_path: Path) -> None:
    """S04-C11: 4,313 households, blocks up to 353 and buildings up to 122 households."""
    units = _synthetic_units(synthetic_district_path, "S04-C11")
    result = split_community(units, seed=1)
    m = result.metrics
    assert m.in_band_share == 1.0
    assert m.contiguous_share == 1.0
    assert m.grids["households"].sum() == 4313
    assert result.issues == ()
    assert 24 <= m.n_grids <= 28
    assert m.road_share > 0.6


def test_ordinary_community_keeps_every_boundary_on_a_road(synthetic_district_path: Path) -> None:
    """S03-C07 (1,777 households, no block over 180): whole blocks make the band, so no
    boundary between grids leaves the roads and no block or building is divided."""
    units = _synthetic_units(synthetic_district_path, "S03-C07")
    result = split_community(units, seed=1)
    m = result.metrics
    assert m.in_band_share == 1.0 and m.contiguous_share == 1.0
    assert m.road_share == 1.0
    assert m.cut_blocks.empty and m.shared_buildings.empty


def _synthetic_units(path: Path, code: str) -> Units:
    communities = gpd.read_file(path, layer="communities").to_crs(32645)
    community = communities[communities["code"] == code]
    x0, y0, x1, y1 = community.to_crs(4326).total_bounds
    bbox = (x0 - 0.002, y0 - 0.002, x1 + 0.002, y1 + 0.002)
    roads = gpd.read_file(path, layer="roads", bbox=bbox).to_crs(32645)
    buildings = gpd.read_file(path, layer="buildings", bbox=bbox)
    buildings = buildings[buildings["grid_code"].str.startswith(code)].to_crs(32645)
    return build_units(community, roads, buildings)
