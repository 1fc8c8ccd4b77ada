"""The proven least off-road boundary (:func:`geo.planning.metrics.offroad_lower_bound_m`).

Hand-drawn blocks of lots (``units_from_frame`` with a block column: edges inside a block
are lot lines, off the roads) where the least cut is known, and a brute force over every
partition of a small block.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.planning.metrics import (
    _least_boundary_by_households,
    offroad_lower_bound_m,
    plan_metrics,
    unavoidable_offroad_m,
)
from geo.planning.units import ROAD, Units, units_from_frame

UTM = "EPSG:32645"


def _units(
    boxes: Sequence[tuple[float, float, float, float]], households: list[int], blocks: list[str]
) -> Units:
    frame = gpd.GeoDataFrame(
        {"households": households, "block": blocks},
        geometry=[box(*b) for b in boxes],
        crs=UTM,
    )
    return units_from_frame(frame, block_col="block")


def _triangle() -> Units:
    """One block of three lots of 150 households, each meeting the other two along 10 m:

    20 +----+----+
       | Y  | Z  |
    10 +----+----+
       |    X    |
     0 +---------+
       0   10   20
    """
    return _units([(0, 0, 20, 10), (0, 10, 10, 20), (10, 10, 20, 20)], [150, 150, 150], ["K"] * 3)


def test_three_lots_meeting_pairwise_need_30_m_and_a_plan_makes_30() -> None:
    """450 households need three grids, one per lot; the three 10 m lot lines are all cut.
    The old estimate counts two cuts around one lot (2 × 20 m): more than this plan needs."""
    units = _triangle()
    assert offroad_lower_bound_m(units) == pytest.approx(30.0)
    plan = pd.Series(["A", "B", "C"])
    m = plan_metrics(units, plan)
    assert m.in_band_share == 1.0
    assert m.internal_boundary_m - m.road_boundary_m == pytest.approx(30.0)
    assert unavoidable_offroad_m(units) == pytest.approx(40.0)  # not a bound: 40 > 30


def test_a_block_that_fits_one_grid_needs_no_cut_and_roads_cost_nothing() -> None:
    """Two blocks of two lots, 90 + 90 each: each block can be a grid, so 0."""
    units = _units(
        [(0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10), (30, 0, 40, 10)],
        [90, 90, 90, 90],
        ["P", "P", "Q", "Q"],
    )
    assert (units.graph.kind == ROAD).sum() == 1
    assert offroad_lower_bound_m(units) == 0.0


def test_a_row_cut_where_its_lot_lines_are_shortest() -> None:
    """A row of four lots of 90 households with lot lines of 5, 20 and 5 m (the middle lots
    are taller): two grids of 180 cut the 20 m line, but {A, D} + {B, C} (A and D joined
    by roads outside) cut only the two 5 m lines."""
    units = _units(
        [(0, 0, 10, 5), (10, 0, 20, 20), (20, 0, 30, 20), (30, 0, 40, 5)],
        [90, 90, 90, 90],
        ["R"] * 4,
    )
    assert offroad_lower_bound_m(units) == pytest.approx(10.0)


def _brute_force(units: Units, cap: int) -> float:
    """The least cut over every partition of the one block's units into parts of at most
    ``cap`` households."""
    g = units.graph
    hh = units.frame["households"].tolist()
    n = len(hh)
    best = math.inf
    # restricted growth strings enumerate each set partition once
    for labels in itertools.product(range(n), repeat=n):
        if any(labels[i] > max(labels[:i], default=-1) + 1 for i in range(n)):
            continue
        loads: dict[int, int] = {}
        for u, lab in enumerate(labels):
            loads[lab] = loads.get(lab, 0) + hh[u]
        if max(loads.values()) > cap:
            continue
        cut = sum(
            ln
            for a, b, ln, k in zip(g.u, g.v, g.length_m, g.kind, strict=True)
            if k != ROAD and labels[a] != labels[b]
        )
        best = min(best, cut)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_bound_is_the_least_cut_of_every_partition(seed: int) -> None:
    """A 3 × 2 block of lots of random widths and households: the bound is exactly the
    least cut any partition into parts of at most 180 makes, and the quick fallback bound
    is never above it."""
    rng = random.Random(seed)
    xs = np.cumsum([0] + [rng.choice([6, 10, 15]) for _ in range(3)]).tolist()
    ys = [0, rng.choice([8, 12]), 20]
    boxes = [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(2) for c in range(3)]
    households = [rng.randint(20, 110) for _ in boxes]
    units = _units(boxes, households, ["K"] * 6)
    expected = _brute_force(units, 180)
    assert offroad_lower_bound_m(units) == pytest.approx(expected)
    members = list(range(6))
    nbrs: dict[int, list[tuple[int, float]]] = {u: [] for u in members}
    g = units.graph
    for a, b, ln in zip(g.u.tolist(), g.v.tolist(), g.length_m.tolist(), strict=True):
        nbrs[a].append((b, ln))
        nbrs[b].append((a, ln))
    weights = dict(enumerate(households))
    quick = _least_boundary_by_households(members, nbrs, weights, 180, 10_000)
    assert quick is not None and quick <= expected + 1e-9


def test_out_of_steps_falls_back_to_a_bound_that_still_holds() -> None:
    """With too few steps for the exact search, the triangle gets the knapsack bound: each
    lot has 20 m around it, three lots, each cut bordering two: 30 m, still exact here."""
    units = _triangle()
    assert offroad_lower_bound_m(units, steps=10) == pytest.approx(30.0)
    assert offroad_lower_bound_m(units, steps=0) == 0.0
