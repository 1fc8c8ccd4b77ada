"""The partition problem as plain lists, and how hard to search it.

Units are integers ``0..n-1``; edges join units that touch. ``ekind`` says what an edge's cut
runs along: a road (``ROAD``), a block's lot line (``LOT``) or a building's entrance
(``ENTRANCE``). Shared by the search, the exact search and repair, none of which import each
other's classes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

ROAD, LOT, ENTRANCE = 0, 1, 2


@dataclass
class Problem:
    """The unit graph as plain lists; ``label[u]`` ≥ 0 pins unit ``u`` to a named grid."""

    w: list[int]
    area: list[float]
    perim: list[float]
    eu: list[int]
    ev: list[int]
    elen: list[float]
    ecost: list[float]
    ekind: list[int]
    label: list[int]
    block: list[int]
    x: list[float]
    y: list[float]

    def __post_init__(self) -> None:
        self.n = len(self.w)
        self.nbrs: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        for e, (a, b) in enumerate(zip(self.eu, self.ev, strict=True)):
            self.nbrs[a].append((b, e))
            self.nbrs[b].append((a, e))

    def outline(self, units: Collection[int]) -> float:
        """Outline length of a set of units from the graph: their perimeters minus twice
        the edges inside it."""
        inside = units if isinstance(units, set | frozenset) else set(units)
        per = sum(self.perim[u] for u in inside)
        for u in inside:
            for v, e in self.nbrs[u]:
                if v in inside:
                    per -= self.elen[e]
        return per

    def components(self, nodes: set[int]) -> list[list[int]]:
        """Connected parts of the subgraph on ``nodes``, each sorted, by lowest unit."""
        left = set(nodes)
        out: list[list[int]] = []
        for start in sorted(nodes):
            if start not in left:
                continue
            left.discard(start)
            comp = [start]
            stack = [start]
            while stack:
                u = stack.pop()
                for v, _ in self.nbrs[u]:
                    if v in left:
                        left.discard(v)
                        comp.append(v)
                        stack.append(v)
            out.append(sorted(comp))
        return out


def connected(units: Collection[int], nbrs: Sequence[Sequence[tuple[int, int]]]) -> bool:
    """Whether ``units`` are one piece in a graph given as ``(neighbour, edge)`` lists (an
    empty set is not): the rule every grid must keep."""
    if not units:
        return False
    inside = units if isinstance(units, set | frozenset) else set(units)
    start = min(inside)
    seen = {start}
    stack = [start]
    while stack:
        a = stack.pop()
        for b, _ in nbrs[a]:
            if b in inside and b not in seen:
                seen.add(b)
                stack.append(b)
    return len(seen) == len(inside)


@dataclass(frozen=True)
class Budget:
    """How hard to search. Counts, not seconds, so that a seed always gives one plan.

    Construction: ``road_tries`` / ``lot_tries`` / ``entrance_tries`` spanning trees per
    piece while only roads / also blocks / also buildings may be cut; ``comfort``, the room a
    multi-grid side must keep, as a share of the band's width per grid; ``verify`` cuts per
    tree checked to split cleanly, ``verify_tries`` trees for such a check, on pieces of at
    most ``small_grids`` grids. Exact search: ``exact_per_grid`` steps per grid make one
    unit of budget, ``exact_total`` units in all (restarts follow Luby's sequence);
    ``heavy_share`` of the minimum makes a unit heavy; ``mrv_cap`` and ``mrv_hops`` bound how
    the options of heavy units are counted and refreshed; ``pocket_units`` is the size of a
    pocket checked first. Repair: ``repair_rounds`` passes; ``chain_targets`` chains per
    grid; rings up to ``repair_radius`` grids deep, ``region_attempts`` in all, each tried
    exactly within ``exact_steps`` and then with ``region_tries`` constructions. Improvement:
    ``pair_trees`` trees and ``sweep_angles`` straight cuts per pair re-split, ``rounds``
    passes. ``starts``: whole plans drafted from different seeds; a community of fewer
    than ``start_grids`` grids gets ``start_grids // grids`` times as many, one of more
    than ``draft_grids / starts`` grids as many as make ``draft_grids`` grids (at least two:
    on the 10,000 households, 62 grids, two drafts gave the Reock of four in 60 % of the
    time); the ``finish`` best drafts (times the same factor for few grids) are improved and
    the best kept. Shape (Reock): ``shape_trees`` trees per pair, the ``shape_candidates``
    best splits ranked again with it, ``shape_rounds`` passes, on plans of at most
    ``shape_max_grids`` grids (on the 10,000 households, 62 grids, it gained 0.004 of Reock
    for 0.4 s of 2.5). Rebuilding regions (:mod:`geo.planning.partition.rebuild`):
    ``rebuild_total`` builds in all, ``rebuild_tries`` per region of up to
    ``rebuild_grids`` grids, on plans of more than ``rebuild_grids`` and at most
    ``rebuild_max_grids`` grids.
    """

    road_tries: int = 8
    lot_tries: int = 8
    entrance_tries: int = 8
    comfort: float = 0.25
    verify: int = 6
    verify_tries: int = 6
    small_grids: int = 3
    exact_per_grid: int = 200
    exact_total: int = 40
    heavy_share: float = 0.5
    mrv_cap: int = 24
    mrv_hops: int = 3
    pocket_units: int = 8
    repair_rounds: int = 60
    chain_targets: int = 4
    repair_radius: int = 3
    region_attempts: int = 40
    exact_steps: int = 20_000
    region_tries: int = 4
    pair_trees: int = 12
    sweep_angles: int = 8
    rounds: int = 8
    starts: int = 4
    start_grids: int = 16
    draft_grids: int = 160
    finish: int = 2
    rebuild_total: int = 120
    rebuild_grids: int = 8
    rebuild_tries: int = 4
    rebuild_max_grids: int = 80
    shape_trees: int = 40
    shape_candidates: int = 12
    shape_rounds: int = 3
    shape_max_grids: int = 40


def contract(problem: Problem, groups: list[list[int]]) -> Problem:
    """The problem with each group of units merged into one node (groups cover all units).

    A merged node's perimeter is its outline; edges between two nodes are merged into one
    whose length and cut cost are sums and whose kind is the lowest.
    """
    p = problem
    node = [0] * p.n
    for k, g in enumerate(groups):
        for u in g:
            node[u] = k
    perim = [sum(p.perim[u] for u in g) for g in groups]
    labels = [{p.label[u] for u in g} for g in groups]
    merged: dict[tuple[int, int], list[float]] = {}
    for e, (a, b) in enumerate(zip(p.eu, p.ev, strict=True)):
        na, nb = node[a], node[b]
        if na == nb:
            perim[na] -= 2 * p.elen[e]
            continue
        key = (min(na, nb), max(na, nb))
        acc = merged.get(key)
        if acc is None:
            merged[key] = [p.elen[e], p.ecost[e], float(p.ekind[e])]
        else:
            acc[0] += p.elen[e]
            acc[1] += p.ecost[e]
            acc[2] = min(acc[2], float(p.ekind[e]))
    keys = sorted(merged)
    return Problem(
        w=[sum(p.w[u] for u in g) for g in groups],
        area=[sum(p.area[u] for u in g) for g in groups],
        perim=perim,
        eu=[a for a, _ in keys],
        ev=[b for _, b in keys],
        elen=[merged[k][0] for k in keys],
        ecost=[merged[k][1] for k in keys],
        ekind=[int(merged[k][2]) for k in keys],
        label=[lab.pop() if len(lab) == 1 else -1 for lab in labels],
        block=[p.block[g[0]] for g in groups],
        x=[sum(p.x[u] for u in g) / len(g) for g in groups],
        y=[sum(p.y[u] for u in g) / len(g) for g in groups],
    )
