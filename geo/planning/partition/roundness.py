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

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.planning.partition.problem import Problem

_FOUR_PI = 4.0 * math.pi
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
    per = [_perimeter(p, m) for m in members]
    radius = [_radius(hulls, m) for m in members]
    for _ in range(rounds):
        moved = False
        for u in range(p.n):
            g = grid_of[u]
            if g < 0 or p.label[u] >= 0 or len(members[g]) == 1 or not lo <= w[g] - p.w[u]:
                continue
            to_g, cost_g = 0.0, 0.0
            other: dict[int, list[float]] = {}
            for v, e in p.nbrs[u]:
                h = grid_of[v]
                if h == g:
                    to_g += p.elen[e]
                    cost_g += p.ecost[e]
                elif h >= 0:
                    acc = other.setdefault(h, [0.0, 0.0])
                    acc[0] += p.elen[e]
                    acc[1] += p.ecost[e]
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
            if best is None or not _connected(members[g] - {u}, p):
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


def unit_hulls(geoms: NDArray[np.object_]) -> list[NDArray[np.float64]]:
    """Each unit's convex hull vertices, for :func:`polish_reock`."""
    return [shapely.get_coordinates(h) for h in shapely.convex_hull(geoms)]


def _loss(area: float, per: float, radius: float) -> float:
    """``(1 − Polsby-Popper) + (1 − Reock)`` of a grid."""
    pp = _FOUR_PI * area / (per * per) if per > 0 else 0.0
    reock = area / (math.pi * radius * radius) if radius > 0 else 0.0
    return 2.0 - pp - reock


def _radius(hulls: list[NDArray[np.float64]], units: set[int]) -> float:
    points = np.concatenate([hulls[u] for u in sorted(units)])
    return float(shapely.minimum_bounding_radius(shapely.multipoints(points)))


def _perimeter(p: Problem, units: set[int]) -> float:
    per = sum(p.perim[u] for u in units)
    for u in units:
        for v, e in p.nbrs[u]:
            if v in units:
                per -= p.elen[e]
    return per


def _connected(units: set[int], p: Problem) -> bool:
    if not units:
        return False
    start = min(units)
    seen = {start}
    stack = [start]
    while stack:
        a = stack.pop()
        for b, _ in p.nbrs[a]:
            if b in units and b not in seen:
                seen.add(b)
                stack.append(b)
    return len(seen) == len(units)
