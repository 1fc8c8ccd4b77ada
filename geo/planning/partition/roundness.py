"""A last pass over a finished plan for **Reock**: single units moved between neighbouring
grids where that makes the two rounder in both senses a planner reads.

The search (:mod:`geo.planning.partition.improve`) lowers ``Σ (1 − Polsby-Popper)`` plus the
cut cost, which it can update from the unit graph alone; Reock (area over the minimum
bounding circle's) needs the units' outlines, so it is checked here, once the plan is found.
A move is kept when ``Σ (1 − Polsby-Popper) + Σ (1 − Reock) +`` cut cost falls for the two
grids, both stay in the band, the grid left stays connected, and the unit is not locked:
so a rounder grid is never bought with a less compact one, a cut off the roads, or a
household outside the band. The minimum bounding circle of a grid is that of its units'
convex hull vertices.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.planning.partition.improve import PlanState, Shape, ties
from geo.planning.partition.problem import Budget, Problem, connected, contract
from geo.planning.partition.search import Partitioner

_FOUR_PI = 4.0 * math.pi
_REOCK_WEIGHT = 2.0
"""``1 − Reock`` counts twice against ``1 − Polsby-Popper`` when plans or pair splits are
ranked with it: once, and the cut cost wins back what Reock gains (S04-C11 lost 0.012 of
Reock to 1.8 points of roads); twice keeps Reock and compactness where they were there and
gains elsewhere (Porto Sé 0.427 → 0.530 with the extra starts)."""
_GAIN = 1e-9  # a move must lower the cost by more than this (no cycling on ties)


def polish_reock(
    p: Problem,
    grids: list[list[int]],
    hulls: list[NDArray[np.float64]],
    *,
    lo: int,
    hi: int,
    rounds: int = 3,
) -> list[list[int]]:
    """``grids`` (lists of units, each connected and in ``[lo, hi]``) after the Reock pass;
    ``hulls[u]`` are the convex hull vertices of unit ``u`` (metres). Deterministic: units
    in order, neighbouring grids by number."""
    members = [set(g) for g in grids]
    grid_of = [-1] * p.n
    for k, grid in enumerate(grids):
        for u in grid:
            grid_of[u] = k
    w = [sum(p.w[u] for u in m) for m in members]
    area = [sum(p.area[u] for u in m) for m in members]
    per = [p.outline(m) for m in members]
    radius = [_radius(hulls, m) for m in members]
    for _ in range(rounds):
        moved = False
        for u in range(p.n):
            g = grid_of[u]
            if g < 0 or p.label[u] >= 0 or len(members[g]) == 1 or not lo <= w[g] - p.w[u]:
                continue
            to_g, cost_g, other = ties(p, grid_of, u)
            candidates = sorted(h for h in other if w[h] + p.w[u] <= hi)
            if not candidates:
                continue
            a_g, per_g = area[g] - p.area[u], per[g] - p.perim[u] + 2 * to_g
            r_g = _radius(hulls, members[g] - {u})
            before_g = _loss(area[g], per[g], radius[g])
            after_g = _loss(a_g, per_g, r_g)
            best: tuple[float, int, float] | None = None
            for h in candidates:
                to_h, cost_h = other[h]
                r_h = _radius(hulls, members[h] | {u})
                delta = (
                    after_g
                    + _loss(area[h] + p.area[u], per[h] + p.perim[u] - 2 * to_h, r_h)
                    - before_g
                    - _loss(area[h], per[h], radius[h])
                    + cost_g
                    - cost_h
                )
                if delta < -_GAIN and (best is None or delta < best[0]):
                    best = (delta, h, r_h)
            if best is None or not connected(members[g] - {u}, p.nbrs):
                continue
            _, h, r_h = best
            to_h = other[h][0]
            members[g].discard(u)
            members[h].add(u)
            grid_of[u] = h
            w[g] -= p.w[u]
            w[h] += p.w[u]
            area[g], area[h] = a_g, area[h] + p.area[u]
            per[g], per[h] = per_g, per[h] + p.perim[u] - 2 * to_h
            radius[g] = r_g
            radius[h] = r_h
            moved = True
        if not moved:
            break
    return [sorted(m) for m in members]


def reshape_pairs(
    p: Problem,
    grids: list[list[int]],
    hulls: list[NDArray[np.float64]],
    *,
    lo: int,
    hi: int,
    seed: int,
    budget: Budget,
) -> list[list[int]]:
    """``grids`` after pairs of neighbouring grids are re-split with ``1 − Reock`` added to
    the search's cost (:meth:`~geo.planning.partition.improve.PlanState.reshape`): where
    single units cannot move because the grids are full, a new cut between two grids can.

    The pairs are re-split on pieces, not units: the units of one grid, one block and one
    lock that touch are merged, so a new cut runs along a road or along a cut already made.
    Plans of more than ``Budget.shape_max_grids`` grids are left as they are.
    """
    if len(grids) > budget.shape_max_grids:
        return grids
    groups: list[list[int]] = []
    for grid in grids:
        by_key: dict[tuple[int, int], set[int]] = {}
        for u in grid:
            by_key.setdefault((p.block[u], p.label[u]), set()).add(u)
        for key in sorted(by_key):
            groups.extend(p.components(by_key[key]))
    coarse = contract(p, groups)
    node_hulls = [
        shapely.get_coordinates(
            shapely.convex_hull(shapely.multipoints(np.concatenate([hulls[u] for u in g])))
        )
        for g in groups
    ]
    node_of = [0] * p.n
    for k, g in enumerate(groups):
        for u in g:
            node_of[u] = k
    coarse_grids = [sorted({node_of[u] for u in grid}) for grid in grids]

    state = PlanState(
        Partitioner(coarse, lo, hi, seed, budget), coarse_grids, reock_loss(coarse, node_hulls)
    )
    state.reshape()
    return [sorted(u for k in grid for u in groups[k]) for grid in state.grids()]


def reock_loss(p: Problem, hulls: list[NDArray[np.float64]]) -> Shape:
    """``1 − Reock`` of a grid from its units, weighted as the search weighs it."""

    def shape(units: Collection[int]) -> float:
        radius = _radius(hulls, units)
        area = sum(p.area[u] for u in units)
        return _REOCK_WEIGHT * (1.0 - (area / (math.pi * radius * radius) if radius > 0 else 0.0))

    return shape


def unit_hulls(geoms: NDArray[np.object_]) -> list[NDArray[np.float64]]:
    """Each unit's convex hull vertices, for :func:`polish_reock`."""
    return [shapely.get_coordinates(h) for h in shapely.convex_hull(geoms)]


def _loss(area: float, per: float, radius: float) -> float:
    """``(1 − Polsby-Popper) + (1 − Reock)`` of a grid."""
    pp = _FOUR_PI * area / (per * per) if per > 0 else 0.0
    reock = area / (math.pi * radius * radius) if radius > 0 else 0.0
    return 2.0 - pp - reock


def _radius(hulls: list[NDArray[np.float64]], units: Collection[int]) -> float:
    points = np.concatenate([hulls[u] for u in sorted(units)])
    return float(shapely.minimum_bounding_radius(shapely.multipoints(points)))
