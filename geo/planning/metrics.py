"""How good a grid plan is, per grid and for the whole plan, and whether a planner's edit holds.

A plan is an assignment of every unit (:mod:`geo.planning.units`) to a grid code.
The numbers are the
ones a planning office argues about:

- **households** per grid and the **deviation** from the band: 0 inside ``[min, max]``,
  negative below it, positive above it (in households);
- **contiguity**: a grid is contiguous when its units are connected in the unit graph (shared
  edges, not corners); ``parts`` counts the pieces otherwise;
- **Polsby-Popper** ``4πA / P²`` (1 for a disc, about 0.785 for a square) and **Reock**
  ``A / (π r²)`` with ``r`` the radius of the minimum bounding circle
  (:func:`shapely.minimum_bounding_radius`): two views of compactness;
- **road share**: the share of the boundary *between* grids (the community's outer edge does
  not count) that runs along roads, where residents can see it;
- **shared buildings** (a building whose entrances lie in two or more grids) and **cut
  blocks** (a road-bounded block divided between grids): every one is listed;
- the off-road boundary no plan can avoid: an estimate (:func:`unavoidable_offroad_m`, in
  every plan's metrics) and a proven lower bound (:func:`offroad_lower_bound_m`, slower).

:func:`move_unit` is the one edit a planner makes by hand: move units to a neighbouring grid.
It is refused, with every reason, when a grid would break apart or leave the band, unless
forced; a forced move still lists what it breaks.

Lengths and areas are in the units' projected metric CRS.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput
from geo.planning.partition.problem import connected
from geo.planning.units import ROAD, SNAP_M, Units

DEFAULT_MIN_HOUSEHOLDS = 150
DEFAULT_MAX_HOUSEHOLDS = 180


@dataclass(frozen=True)
class PlanMetrics:
    """Summary of a plan; ``grids`` holds one row per grid (see :func:`plan_metrics`)."""

    grids: gpd.GeoDataFrame
    n_grids: int
    in_band: int
    in_band_share: float
    households_min: int
    households_median: float
    households_max: int
    deviation_total: int
    contiguous_share: float
    polsby_popper_mean: float
    reock_mean: float
    internal_boundary_m: float
    road_boundary_m: float
    road_share: float
    shared_buildings: pd.DataFrame
    cut_blocks: pd.DataFrame
    unavoidable_offroad_m: float
    """Estimated off-road boundary no plan can avoid (:func:`unavoidable_offroad_m`), at
    most this plan's own off-road boundary."""

    @property
    def unavoidable_offroad_share(self) -> float:
        """Estimated least off-road share any plan needs (blocks over the band's maximum)."""
        if self.internal_boundary_m <= 0:
            return 0.0
        return min(1.0, self.unavoidable_offroad_m / self.internal_boundary_m)

    def summary(self) -> dict[str, float | int]:
        """The scalar numbers, for a table row or a JSON body."""
        out = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("grids", "shared_buildings", "cut_blocks")
        }
        out["shared_buildings"] = len(self.shared_buildings)
        out["cut_blocks"] = len(self.cut_blocks)
        out["unavoidable_offroad_share"] = self.unavoidable_offroad_share
        return out


def plan_metrics(
    units: Units,
    assignment: pd.Series | Mapping[int, str],
    *,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_households: int = DEFAULT_MAX_HOUSEHOLDS,
) -> PlanMetrics:
    """Measure a plan: every unit must be assigned to exactly one grid code.

    Per grid (``PlanMetrics.grids``, indexed by code, sorted): ``households, units, deviation,
    in_band, contiguous, parts, area_m2, perimeter_m, polsby_popper, reock, boundary_m,
    road_m, road_share, geometry``.
    """
    check_band(min_households, max_households)
    codes = _codes(units, assignment)
    frame = units.frame
    g = units.graph
    names, grid_of = np.unique(codes.astype(str), return_inverse=True)
    k = len(names)
    hh = np.bincount(grid_of, weights=frame["households"].to_numpy(), minlength=k).astype(int)
    count = np.bincount(grid_of, minlength=k)
    geoms = dissolve(units, grid_of, k)
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    radius = shapely.minimum_bounding_radius(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perim > 0, 4 * math.pi * area / perim**2, 0.0)
        reock = np.where(radius > 0, area / (math.pi * radius**2), 0.0)

    gu, gv = grid_of[g.u], grid_of[g.v]
    between = gu != gv
    boundary = np.bincount(gu[between], weights=g.length_m[between], minlength=k) + np.bincount(
        gv[between], weights=g.length_m[between], minlength=k
    )
    on_road = np.bincount(gu[between], weights=g.road_m[between], minlength=k) + np.bincount(
        gv[between], weights=g.road_m[between], minlength=k
    )
    parts = _parts(g.n, g.u[~between], g.v[~between], grid_of, k)
    deviation = np.where(
        hh < min_households, hh - min_households, np.maximum(hh - max_households, 0)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        road_share_g = np.where(boundary > 0, on_road / boundary, 1.0)
    grids = gpd.GeoDataFrame(
        {
            "households": hh,
            "units": count,
            "deviation": deviation.astype(int),
            "in_band": deviation == 0,
            "contiguous": parts == 1,
            "parts": parts,
            "area_m2": area,
            "perimeter_m": perim,
            "polsby_popper": pp,
            "reock": reock,
            "boundary_m": boundary,
            "road_m": on_road,
            "road_share": road_share_g,
        },
        geometry=geoms,
        crs=frame.crs,
        index=pd.Index(names, name="code"),
    )
    internal = float(g.length_m[between].sum())
    road = float(g.road_m[between].sum())
    return PlanMetrics(
        grids=grids,
        n_grids=k,
        in_band=int((deviation == 0).sum()),
        in_band_share=float((deviation == 0).mean()) if k else 0.0,
        households_min=int(hh.min()) if k else 0,
        households_median=float(np.median(hh)) if k else 0.0,
        households_max=int(hh.max()) if k else 0,
        deviation_total=int(np.abs(deviation).sum()),
        contiguous_share=float((parts == 1).mean()) if k else 0.0,
        polsby_popper_mean=float(pp.mean()) if k else 0.0,
        reock_mean=float(reock.mean()) if k else 0.0,
        internal_boundary_m=internal,
        road_boundary_m=road,
        road_share=road / internal if internal > 0 else 1.0,
        shared_buildings=_shared_buildings(units, codes),
        cut_blocks=_cut_blocks(units, codes),
        # This plan proves that its own off-road length suffices: the estimate never exceeds it.
        unavoidable_offroad_m=min(
            unavoidable_offroad_m(units, max_households=max_households), internal - road
        ),
    )


_ROUND_EPS = 1e-9  # a square's score computed in floating point may exceed π/4 or 2/π a little


def rectangle_ratio(*, polsby_popper: float | None = None, reock: float | None = None) -> float:
    """The compactness score as a shape a planner can picture: how many times as long as it
    is wide a rectangle scoring the same is (1 for a square; 0 when rounder than a square).

    A ``r × 1`` rectangle has Polsby-Popper ``πr / (r + 1)²`` and Reock ``4r / (π(r² + 1))``;
    each is solved for ``r ≥ 1``. Give one of the two scores.
    """
    if (polsby_popper is None) == (reock is None):
        raise InvalidInput("give one of polsby_popper and reock", field="score")
    if polsby_popper is not None:
        pp = polsby_popper
        if pp > math.pi / 4 + _ROUND_EPS:
            return 0.0
        if pp <= 0:
            return math.inf
        b = math.pi - 2 * pp  # pp·r² − (π − 2pp)·r + pp = 0
        return (b + math.sqrt(max(0.0, b * b - 4 * pp * pp))) / (2 * pp)
    assert reock is not None
    if reock > 2 / math.pi + _ROUND_EPS:
        return 0.0
    if reock <= 0:
        return math.inf
    k = reock * math.pi  # k·r² − 4r + k = 0
    return (4 + math.sqrt(max(0.0, 16 - 4 * k * k))) / (2 * k)


def shared_buildings(units: Units, assignment: pd.Series | Mapping[int, str]) -> pd.DataFrame:
    """Buildings whose entrances lie in two or more grids, with households per grid."""
    return _shared_buildings(units, _codes(units, assignment))


def _shared_buildings(units: Units, codes: np.ndarray) -> pd.DataFrame:
    frame = units.frame
    rows = _divided(frame[frame["entrance"] >= 0], "building_id", codes)
    return pd.DataFrame(rows, columns=["building_id", "households", "grids", "per_grid"])


def _divided(frame: pd.DataFrame, by: str, codes: np.ndarray) -> list[tuple[Any, int, str, str]]:
    """Groups of units (by the column ``by``) that lie in two or more grids: the group, its
    households, its grids and the households in each (``"G01,G02"``, ``"90/60"``)."""
    rows = []
    for key, group in frame.groupby(by, sort=True):
        grid_codes = codes[group.index.to_numpy()]
        if len(set(grid_codes.tolist())) < 2:
            continue
        per = group["households"].groupby(grid_codes).sum().sort_index()
        rows.append(
            (
                key,
                int(group["households"].sum()),
                ",".join(per.index.astype(str)),
                "/".join(str(int(x)) for x in per.to_numpy()),
            )
        )
    return rows


def cut_blocks(units: Units, assignment: pd.Series | Mapping[int, str]) -> pd.DataFrame:
    """Road-bounded blocks divided between grids, with households per grid."""
    return _cut_blocks(units, _codes(units, assignment))


def _cut_blocks(units: Units, codes: np.ndarray) -> pd.DataFrame:
    rows = [(int(block), *rest) for block, *rest in _divided(units.frame, "block", codes)]
    return pd.DataFrame(rows, columns=["block", "households", "grids", "per_grid"])


def unavoidable_offroad_m(units: Units, *, max_households: int = DEFAULT_MAX_HOUSEHOLDS) -> float:
    """An estimate of the off-road boundary no plan can avoid.

    A block holding ``H`` households more than ``max_households`` must be cut into at least
    ``m = ceil(H / max)`` parts. For each such block this takes the cheapest way to cut one
    part of at most ``max`` households off the rest of the block such that the rest fits in
    ``m − 1`` grids (searched over connected sets of the block's units, the shared lengths of
    the unit graph), ``m − 1`` times. Blocks of more than ``_CUT_SEARCH_UNITS`` units fall
    back to their narrow side (the short side of the minimum rotated rectangle) per cut. An
    estimate, not a bound: a grid may take two pieces of a block that meet outside it, and
    three parts that meet each other need less than two cuts around one part;
    :func:`offroad_lower_bound_m` is a proven bound (lower than this estimate on the
    synthetic district's oversized communities).
    """
    frame = units.frame
    per_block = frame.groupby("block")["households"].sum()
    big = per_block[per_block > max_households]
    if big.empty:
        return 0.0
    g = units.graph
    inner = g.kind != ROAD
    blocks = frame["block"].to_numpy()
    hh = frame["households"].to_numpy()
    total = 0.0
    for block, households in big.items():
        members = np.flatnonzero(blocks == block)
        cuts = math.ceil(int(households) / max_households) - 1
        edges = (g.u[inner], g.v[inner], g.length_m[inner])
        cheapest = _cheapest_cut(members, edges, hh, cuts, max_households)
        if cheapest is None:
            geom = shapely.union_all(frame.geometry.values[members], grid_size=SNAP_M)
            rect = shapely.get_coordinates(shapely.oriented_envelope(geom))
            cheapest = float(np.hypot(*(np.diff(rect[:3], axis=0).T)).min())
        total += cuts * cheapest
    return total


_CUT_SEARCH_UNITS = 40
_CUT_SEARCH_SETS = 5_000


def _cheapest_cut(
    members: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    hh: np.ndarray,
    cuts: int,
    max_households: int,
) -> float | None:
    """Shortest boundary around a connected set of a block's units holding at most ``max``
    households whose rest fits in ``cuts`` grids; None if the block is too big to search."""
    if len(members) > _CUT_SEARCH_UNITS:
        return None
    inside = set(members.tolist())
    nbrs: dict[int, list[tuple[int, float]]] = {m: [] for m in inside}
    for a, b, ln in zip(*(e.tolist() for e in edges), strict=True):
        if a in inside and b in inside:
            nbrs[a].append((b, ln))
            nbrs[b].append((a, ln))
    total = int(hh[members].sum())
    best: float | None = None
    seen: set[frozenset[int]] = set()
    stack = [frozenset([m]) for m in sorted(inside)]
    while stack and len(seen) < _CUT_SEARCH_SETS:
        group = stack.pop()
        if group in seen:
            continue
        seen.add(group)
        weight = int(hh[list(group)].sum())
        if weight > max_households:
            continue
        if total - weight <= cuts * max_households:
            cut = sum(ln for a in group for b, ln in nbrs[a] if b not in group)
            best = cut if best is None else min(best, cut)
        stack.extend(group | {b} for a in group for b, _ in nbrs[a] if b not in group)
    return best


def offroad_lower_bound_m(
    units: Units,
    *,
    max_households: int = DEFAULT_MAX_HOUSEHOLDS,
    steps: int = 100_000,
) -> float:
    """Off-road boundary that every plan whose grids hold at most ``max_households`` must
    have: a proven bound, unlike :func:`unavoidable_offroad_m`. So a plan in the band whose
    grids share ``L`` metres of boundary has at most ``1 − bound / L`` of it on roads.

    Why it holds. Road edges lie wholly on roads and every other edge (a lot line, a wall
    between entrances) lies inside one block, so a plan's off-road boundary is the sum, over
    blocks, of the length of the block's inner edges whose two units lie in different grids;
    each block can be bounded alone. Inside a block ``B`` the grids cut it into parts
    ``B ∩ G``, each of at most ``max_households`` (the grid holds no more), and the plan's
    off-road length in ``B`` is exactly the cut of that partition. So it is at least
    ``c*(B)``, the least cut over *all* partitions of ``B``'s units into parts of at most
    ``max_households``: the plan's partition is one of them (contiguity, the band's minimum
    and the rest of the community are dropped, which can only lower the minimum). A block of
    at most ``max_households`` has ``c*(B) = 0``.

    ``c*(B)`` is computed exactly (:func:`_least_partition_cut`): parts may be taken
    connected inside the block (splitting a part into its pieces adds no cut edge), so the
    part holding the lowest unit left is one of its connected sets of at most
    ``max_households``, and the rest is partitioned the same way (memoised, cheapest first,
    pruned by the best found). When that takes more than ``steps`` sets (blocks of 20 and
    more units can), the block gets the weaker bound of :func:`_least_boundary_by_households`
    (within ``steps`` sets), or 0 if that runs out too. A block of more than
    ``_BOUND_UNITS`` units (Porto's blocks of a hundred lots, many without households) is
    not searched and counts 0, as does a block with a unit over ``max_households`` (no plan
    keeps it in the band): the bound stays a bound, only less tight.

    :func:`unavoidable_offroad_m` counts ``⌈H / max⌉ − 1`` times a block's cheapest cut
    around one part; where three parts meet each other every stretch of cut borders two of
    them at once, or more, smaller parts are cheaper, so that estimate may exceed what a plan
    in the band needs (three lots of 150 households meeting pairwise along 10 m: 40 m
    counted, 30 m cut; ``tests/geo/test_offroad_bound.py``).
    """
    frame = units.frame
    g = units.graph
    blocks = frame["block"].to_numpy()
    hh = frame["households"].to_numpy().astype(int)
    inner = np.flatnonzero(g.kind != ROAD)
    per_block = frame.groupby("block")["households"].sum()
    big = [int(b) for b, h in per_block.items() if h > max_households]
    if not big:
        return 0.0
    wanted = set(big)
    edges: dict[int, list[tuple[int, int, float]]] = {b: [] for b in big}
    for e in inner.tolist():
        b = int(blocks[g.u[e]])
        if b in wanted:
            edges[b].append((int(g.u[e]), int(g.v[e]), float(g.length_m[e])))
    total = 0.0
    for b in big:
        members = np.flatnonzero(blocks == b).tolist()
        w = {u: int(hh[u]) for u in members}
        if len(members) > _BOUND_UNITS or max(w.values()) > max_households:
            continue
        nbrs: dict[int, list[tuple[int, float]]] = {u: [] for u in members}
        for a, c, ln in edges[b]:
            nbrs[a].append((c, ln))
            nbrs[c].append((a, ln))
        exact = _least_partition_cut(members, nbrs, w, max_households, steps)
        if exact is None:
            exact = _least_boundary_by_households(members, nbrs, w, max_households, steps) or 0.0
        total += exact
    return total


_BOUND_UNITS = 40


class _OutOfSteps(Exception):
    """An enumeration took more sets than it was allowed."""


def _connected_sets(
    start: int,
    allowed: frozenset[int],
    nbrs: Mapping[int, list[tuple[int, float]]],
    w: Mapping[int, int],
    cap: int,
    counter: list[int],
) -> list[frozenset[int]]:
    """Every connected set of ``allowed`` units holding ``start`` and at most ``cap``
    households; ``counter[0]`` is the sets still allowed (raises :class:`_OutOfSteps`)."""
    if w[start] > cap:
        return []
    seen: set[frozenset[int]] = set()
    stack = [frozenset([start])]
    out: list[frozenset[int]] = []
    while stack:
        s = stack.pop()
        if s in seen:
            continue
        seen.add(s)
        counter[0] -= 1
        if counter[0] < 0:
            raise _OutOfSteps
        out.append(s)
        weight = sum(w[u] for u in s)
        for u in s:
            for v, _ in nbrs[u]:
                if v in allowed and v not in s and weight + w[v] <= cap:
                    stack.append(s | {v})
    return out


def _least_partition_cut(
    members: list[int],
    nbrs: Mapping[int, list[tuple[int, float]]],
    w: Mapping[int, int],
    cap: int,
    steps: int,
) -> float | None:
    """The least total length of inner edges cut by a partition of ``members`` into parts
    of at most ``cap`` households each (None past ``steps`` sets): see
    :func:`offroad_lower_bound_m`."""
    counter = [steps]
    memo: dict[frozenset[int], float] = {}

    def least(rest: frozenset[int]) -> float:
        if sum(w[u] for u in rest) <= cap:
            return 0.0
        known = memo.get(rest)
        if known is not None:
            return known
        options = []
        for part in _connected_sets(min(rest), rest, nbrs, w, cap, counter):
            left = rest - part
            options.append((sum(ln for u in part for v, ln in nbrs[u] if v in left), left))
        options.sort(key=lambda o: (o[0], sorted(o[1])))  # cheapest first: prunes the rest
        best = math.inf
        for cut, left in options:
            if cut >= best:
                break
            best = min(best, cut + least(left))
        memo[rest] = best
        return best

    try:
        return least(frozenset(members))
    except _OutOfSteps:
        return None


def _least_boundary_by_households(
    members: list[int],
    nbrs: Mapping[int, list[tuple[int, float]]],
    w: Mapping[int, int],
    cap: int,
    steps: int,
) -> float | None:
    """A lower bound on :func:`_least_partition_cut` from single parts (None past ``steps``
    sets): ``φ(x)``, the least boundary inside the block of a connected set of ``x``
    households (``1 ≤ x ≤ cap``), is enumerated; the pieces with households of any
    partition hold ``H`` together, each at least ``φ`` of its households around it, and each
    cut edge borders two pieces, so the cut is at least half the least ``Σ φ(xᵢ)`` over
    ``Σ xᵢ = H`` (a knapsack). Exact where the best partition has two parts; lower where
    a part in the middle has cuts on two sides that ``φ`` finds cheaper at a block's end."""
    counter = [steps]
    phi = [math.inf] * (cap + 1)
    try:
        for start in members:  # each connected set once: from its lowest unit
            allowed = frozenset(u for u in members if u >= start)
            for part in _connected_sets(start, allowed, nbrs, w, cap, counter):
                x = sum(w[u] for u in part)
                if x >= 1:
                    cut = sum(ln for u in part for v, ln in nbrs[u] if v not in part)
                    phi[x] = min(phi[x], cut)
    except _OutOfSteps:
        return None
    total = sum(w.values())
    least = [0.0] + [math.inf] * total
    for h in range(1, total + 1):
        least[h] = min(phi[x] + least[h - x] for x in range(1, min(cap, h) + 1))
    return least[total] / 2.0 if math.isfinite(least[total]) else 0.0


#: Why a move is refused: a code for each rule, and its English sentence with ``%(name)s``
#: values. Pages say the same in the reader's language from the code and the values (the
#: same sentences, marked for translation, in ``api/routers/plan_pages.py``).
MOVE_PROBLEMS: dict[str, str] = {
    "units_locked": "unit(s) %(units)s are locked",
    "units_locked_more": "unit(s) %(units)s and %(more)s more are locked",
    "target_locked": "grid %(grid)s is locked",
    "sources_locked": "grid(s) %(grids)s are locked",
    "already_there": "already in grid %(grid)s",
    "not_touching": "grid %(grid)s would not be contiguous: the unit(s) do not touch it",
    "over": "grid %(grid)s would hold %(households)s households, over %(max)s",
    "empty": "grid %(grid)s would be left empty",
    "under": "grid %(grid)s would hold %(households)s households, under %(min)s",
    "parts": "grid %(grid)s would break into parts",
}


class Problem(str):
    """One rule a move breaks: the English sentence (what the API answers and logs), with
    the rule's ``code`` and its ``values`` so that a page can say it in its own language."""

    code: str
    values: dict[str, str | int]

    def __new__(cls, code: str, **values: str | int) -> Problem:
        self = super().__new__(cls, MOVE_PROBLEMS[code] % values)
        self.code = code
        self.values = values
        return self


@dataclass(frozen=True)
class MoveResult:
    """What became of a requested move: ``moved``, and every rule it breaks (``problems``).

    A refused move leaves ``assignment`` as it was; a forced one applies it anyway and still
    lists the problems, so the plan's review shows them.
    """

    moved: bool
    problems: tuple[Problem, ...]
    assignment: pd.Series

    @property
    def reason(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


def move_unit(
    units: Units,
    assignment: pd.Series,
    unit: int | Sequence[int],
    to_grid: str,
    *,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_households: int = DEFAULT_MAX_HOUSEHOLDS,
    locked_units: Collection[int] = (),
    locked_grids: Collection[str] = (),
    force: bool = False,
) -> MoveResult:
    """Move units (one, or a block's worth) to a neighbouring grid if the plan stays valid.

    Refused, with every reason, when a unit is locked or already there, when the target grid
    is locked, not adjacent or would exceed ``max_households``, or when a source grid would
    fall below ``min_households`` or break apart. ``force=True`` moves anyway (never across a
    lock), keeping the reasons in ``problems``.
    """
    check_band(min_households, max_households)
    codes = _codes(units, assignment)
    moving = sorted({int(u) for u in ([unit] if isinstance(unit, int | np.integer) else unit)})
    if not moving:
        raise InvalidInput("no unit to move", field="unit")
    bad = [u for u in moving if not 0 <= u < len(units)]
    if bad:
        raise InvalidInput(f"no unit {bad[0]} in this community", field="unit", index=bad[0])
    if to_grid not in set(codes.tolist()):
        raise InvalidInput(f"no grid {to_grid!r} in this plan", field="to_grid")

    hard: list[Problem] = []
    soft: list[Problem] = []
    locked_here = sorted(set(moving) & {int(u) for u in locked_units})
    if len(locked_here) > _SHOWN:
        shown, more = _list(locked_here), len(locked_here) - _SHOWN
        hard.append(Problem("units_locked_more", units=shown, more=more))
    elif locked_here:
        hard.append(Problem("units_locked", units=_list(locked_here)))
    if to_grid in set(locked_grids):
        hard.append(Problem("target_locked", grid=to_grid))
    sources = sorted({str(codes[u]) for u in moving} - {to_grid})
    frozen_sources = [s for s in sources if s in set(locked_grids)]
    if frozen_sources:
        hard.append(Problem("sources_locked", grids=", ".join(frozen_sources)))
    already = [u for u in moving if codes[u] == to_grid]
    if len(already) == len(moving):
        hard.append(Problem("already_there", grid=to_grid))

    after = codes.copy()
    after[moving] = to_grid
    hh = units.frame["households"].to_numpy()
    nbrs = units.graph.neighbours()
    target = np.flatnonzero(after == to_grid)
    if not connected(target.tolist(), nbrs):
        soft.append(Problem("not_touching", grid=to_grid))
    t_total = int(hh[target].sum())
    if t_total > max_households:
        soft.append(Problem("over", grid=to_grid, households=t_total, max=max_households))
    for src in sources:
        rest = np.flatnonzero(after == src)
        if not len(rest):
            soft.append(Problem("empty", grid=src))
            continue
        s_total = int(hh[rest].sum())
        if s_total < min_households:
            soft.append(Problem("under", grid=src, households=s_total, min=min_households))
        if not connected(rest.tolist(), nbrs):
            soft.append(Problem("parts", grid=src))
    problems = tuple(hard + soft)
    if hard or (soft and not force):
        return MoveResult(False, problems, assignment.copy())
    index = assignment.index if isinstance(assignment, pd.Series) else units.frame.index
    return MoveResult(True, problems, pd.Series(after, index=index, name="grid"))


# --- helpers ---------------------------------------------------------------------------------


def dissolve(units: Units, grid_of: np.ndarray, k: int) -> np.ndarray:
    """One geometry per grid, the union of its units (exact for a coverage, snapped else)."""
    geoms = np.asarray(units.frame.geometry.values, dtype=object)
    out = np.empty(k, dtype=object)
    order = np.argsort(grid_of, kind="stable")
    starts = np.searchsorted(grid_of[order], np.arange(k + 1))
    for j in range(k):
        members = geoms[order[starts[j] : starts[j + 1]]]
        out[j] = _union(members)
    return out


def _union(members: np.ndarray) -> BaseGeometry:
    if len(members) == 1:
        return members[0]
    merged = shapely.union_all(members, grid_size=SNAP_M)
    parts = [p for p in shapely.get_parts(merged) if p.geom_type == "Polygon"]
    if not parts:
        return merged
    # Snap-rounding can leave pinholes (< 1 m²) where lots met a block edge; they are noise.
    polys = [
        shapely.Polygon(p.exterior, [r for r in p.interiors if shapely.Polygon(r).area > 1.0])
        for p in parts
    ]
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _parts(n: int, u: np.ndarray, v: np.ndarray, grid_of: np.ndarray, k: int) -> np.ndarray:
    """Connected pieces per grid over the edges inside grids (union-find)."""
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for a, b in zip(u.tolist(), v.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    roots = np.array([find(x) for x in range(n)])
    pieces = np.zeros(k, dtype=np.int64)
    for grid, _root in set(zip(grid_of.tolist(), roots.tolist(), strict=True)):
        pieces[grid] += 1
    return pieces


def _codes(units: Units, assignment: pd.Series | Mapping[int, str]) -> np.ndarray:
    """Grid code per unit position; every unit must have one."""
    series = assignment if isinstance(assignment, pd.Series) else pd.Series(dict(assignment))
    n = len(units)
    if len(series) != n or not series.index.isin(units.frame.index).all():
        raise InvalidInput(
            f"the assignment must give a grid for each of the {n} units, got {len(series)}",
            field="assignment",
        )
    ordered = series.reindex(units.frame.index)
    missing = np.flatnonzero(ordered.isna().to_numpy())
    if len(missing):
        raise InvalidInput("unit has no grid", field="assignment", index=int(missing[0]))
    return ordered.astype(str).to_numpy(dtype=object)


def check_band(lo: int, hi: int) -> None:
    """Refuse a band that is not ``0 < min ≤ max`` whole households."""
    if not (isinstance(lo, int | np.integer) and isinstance(hi, int | np.integer)):
        raise InvalidInput(f"the band must be whole numbers, got {lo!r}-{hi!r}", field="band")
    if not 0 < lo <= hi:
        raise InvalidInput(f"need 0 < min ≤ max households, got {lo}-{hi}", field="band")


_SHOWN = 10  # units named in a reason; the rest are counted


def _list(items: Sequence[int]) -> str:
    return ", ".join(str(x) for x in items[:_SHOWN])


__all__ = [
    "DEFAULT_MAX_HOUSEHOLDS",
    "DEFAULT_MIN_HOUSEHOLDS",
    "MOVE_PROBLEMS",
    "MoveResult",
    "PlanMetrics",
    "Problem",
    "check_band",
    "cut_blocks",
    "dissolve",
    "move_unit",
    "offroad_lower_bound_m",
    "plan_metrics",
    "rectangle_ratio",
    "shared_buildings",
    "unavoidable_offroad_m",
]
