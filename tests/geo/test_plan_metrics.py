"""Plan metrics (band, contiguity, compactness, roads, shared buildings) and move_unit.

Plans are drawn on :func:`tests.geo.test_units.lattice`; unit numbers are block numbers when
``detail="blocks"``:

    +---+---+---+
    | 0 | 1 | 2 |
    +---+---+---+
    | 3 | 4 | 5 |
    +---+---+---+
    | 6 | 7 | 8 |
    +---+---+---+
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from geo.errors import InvalidInput
from geo.planning.metrics import move_unit, plan_metrics, unavoidable_offroad_m
from tests.geo.test_units import lattice

COLUMNS = pd.Series(["W", "M", "E"] * 3)  # three columns of three blocks


def _blocks(households: list[int]) -> object:
    return lattice(households, detail="blocks")


def test_column_plan_measures() -> None:
    """Three 100 m × 300 m columns of 180 households; boundaries on the two N-S roads."""
    units = lattice([60] * 9, detail="blocks")
    m = plan_metrics(units, COLUMNS)
    grids = m.grids
    assert list(grids.index) == ["E", "M", "W"]
    assert grids["households"].tolist() == [180, 180, 180]
    assert grids["in_band"].all() and grids["contiguous"].all()
    # A 1 × 3 rectangle: Polsby-Popper 4π·3/8² = 3π/16; Reock 3 / (π·(√10/2)²) = 6/(5π).
    assert grids["polsby_popper"].tolist() == pytest.approx([3 * math.pi / 16] * 3)
    assert grids["reock"].tolist() == pytest.approx([6 / (5 * math.pi)] * 3)
    assert m.internal_boundary_m == pytest.approx(600)  # two roads of 300 m
    assert m.road_share == 1.0
    assert grids.loc["M", "boundary_m"] == pytest.approx(600)
    assert m.n_grids == 3 and m.in_band_share == 1.0 and m.deviation_total == 0
    assert (m.households_min, m.households_median, m.households_max) == (180, 180.0, 180)


def test_square_grid_has_known_compactness() -> None:
    units = lattice([60], n=1, detail="blocks")
    grid = plan_metrics(units, pd.Series(["A"])).grids.iloc[0]
    assert grid["polsby_popper"] == pytest.approx(math.pi / 4)
    assert grid["reock"] == pytest.approx(2 / math.pi)


def test_deviation_and_band() -> None:
    units = lattice([100, 100, 100, 100, 100, 20, 0, 0, 0], detail="blocks")
    plan = pd.Series(["A", "A", "B", "C", "C", "B", "C", "C", "C"])
    grids = plan_metrics(units, plan).grids
    assert grids.loc["A", "deviation"] == 20  # 200: 20 over
    assert grids.loc["B", "deviation"] == -30  # 120: 30 under
    assert grids.loc["C", "deviation"] == 20


def test_a_grid_in_two_pieces_is_not_contiguous() -> None:
    units = lattice([60] * 9, detail="blocks")
    plan = pd.Series(["A", "B", "A", "B", "B", "B", "C", "C", "C"])
    grids = plan_metrics(units, plan).grids
    assert not grids.loc["A", "contiguous"]
    assert grids.loc["A", "parts"] == 2
    assert grids.loc["B", "contiguous"]


def test_boundary_through_a_block_is_off_road_and_shared_building_listed() -> None:
    """One block, one building of 70 households in 3 entrances, split 2 + 1."""
    units = lattice([70], n=1)
    entrance = units.frame["entrance"].to_numpy()
    plan = pd.Series(["A" if e < 2 else "B" for e in entrance])
    m = plan_metrics(units, plan, min_households=10, max_households=60)
    assert m.road_share == 0.0
    [shared] = m.shared_buildings.itertuples()
    assert shared.building_id == "B0" and shared.grids == "A,B"
    assert len(m.cut_blocks) == 1


def test_unavoidable_offroad_estimate_counts_cuts_across_big_blocks() -> None:
    """A 100 m block with 400 households needs ceil(400 / 180) - 1 = 2 cuts of ≥ 100 m.

    A plan cannot be held to more than it shows is needed: the one below keeps the block whole
    (out of band), so none of its boundary leaves the roads and the plan's estimate is 0.
    """
    units = lattice([400, 0, 0, 0], n=2, detail="blocks")
    assert unavoidable_offroad_m(units) == pytest.approx(200)
    m = plan_metrics(units, pd.Series(["A", "A", "B", "B"]))
    assert m.unavoidable_offroad_m == 0.0 and m.unavoidable_offroad_share == 0.0


def test_assignment_must_cover_every_unit() -> None:
    units = lattice([60] * 9, detail="blocks")
    with pytest.raises(InvalidInput, match="each of the 9 units"):
        plan_metrics(units, COLUMNS.iloc[:8])


# --- move_unit -------------------------------------------------------------------------------


def test_move_that_keeps_both_grids_valid_is_applied() -> None:
    """W holds 0 3 6 7 (60 + 60 + 30 + 60 = 210, over); moving 7 to M leaves 150 and 120.

    Then M (1 4 7) holds 180 and W 150: both in the band and contiguous.
    """
    units = lattice([60, 60, 50, 60, 60, 50, 30, 60, 50], detail="blocks")
    plan = pd.Series(["W", "M", "E", "W", "M", "E", "W", "W", "E"])
    result = move_unit(units, plan, 7, "M", min_households=150, max_households=180)
    assert result.moved, result.reason
    assert result.problems == ()
    assert result.assignment.iloc[7] == "M"
    assert plan.iloc[7] == "W"  # the input is left alone


def test_move_breaking_contiguity_is_refused_with_the_reason() -> None:
    units = lattice([60] * 9, detail="blocks")
    # Moving the middle of W (3) to E: E does not touch it, W falls apart.
    result = move_unit(units, COLUMNS, 3, "E", min_households=100, max_households=300)
    assert not result.moved
    assert result.reason is not None
    assert "grid E would not be contiguous" in result.reason
    assert "grid W would break into parts" in result.reason
    assert result.assignment.equals(COLUMNS)


def test_move_breaking_the_band_is_refused_unless_forced() -> None:
    units = lattice([60] * 9, detail="blocks")
    refused = move_unit(units, COLUMNS, 0, "M")
    assert not refused.moved
    assert refused.problems == (
        "grid M would hold 240 households, over 180",
        "grid W would hold 120 households, under 150",
    )
    forced = move_unit(units, COLUMNS, 0, "M", force=True)
    assert forced.moved
    assert forced.problems == refused.problems  # still reported
    assert forced.assignment.iloc[0] == "M"


def test_locks_refuse_a_move_even_when_forced() -> None:
    units = lattice([60] * 9, detail="blocks")
    result = move_unit(units, COLUMNS, 0, "M", locked_units=[0], force=True)
    assert not result.moved
    assert "locked" in (result.reason or "")
    result = move_unit(units, COLUMNS, 1, "W", locked_grids=["M"], force=True)
    assert not result.moved
    assert "grid(s) M are locked" in (result.reason or "")


def test_move_input_is_checked() -> None:
    units = lattice([60] * 9, detail="blocks")
    with pytest.raises(InvalidInput, match="no grid 'X'"):
        move_unit(units, COLUMNS, 0, "X")
    with pytest.raises(InvalidInput, match="no unit 42"):
        move_unit(units, COLUMNS, 42, "M")
    already = move_unit(units, COLUMNS, 1, "M")
    assert not already.moved and already.reason == "already in grid M"


def test_a_whole_block_of_units_moves_at_once() -> None:
    """A block split into lots moves as a list of units."""
    units = lattice([90, 60, 0, 60], n=2, buildings_per_block=2)
    block = units.frame["block"].to_numpy()
    plan = pd.Series(["A" if b in (0, 2) else "B" for b in block])
    lots_of_block_1 = [int(u) for u in units.frame.index[block == 1]]
    result = move_unit(units, plan, lots_of_block_1, "A", min_households=50, max_households=200)
    assert result.moved, result.reason
    assert set(result.assignment.iloc[lots_of_block_1]) == {"A"}
