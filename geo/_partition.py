"""The search behind :func:`geo.split.split_community`, on plain lists for speed.

Units are integers ``0..n-1``; a grid is a list of units. Nothing here knows about geometry
beyond each unit's households, area and perimeter and each edge's length and cut cost, so the
same code runs on hand-drawn fixtures and on a 10,000-household district.

1. **Construction: recursive bisection on random spanning trees.** A spanning tree of a piece
   is drawn with Kruskal's algorithm on random keys ranked by edge kind: entrance edges first,
   then lot edges, then road edges. So every building and every block is a connected subtree,
   and removing a road edge of the tree separates whole blocks. Every tree edge is a candidate
   cut. A cut is acceptable when each side is one grid inside the band, or several grids with
   room to spare: its total ``T`` lies in ``[k·min, k·max]`` for some ``k`` (memoised) with
   at least ``Budget.comfort × (max − min)`` households per grid to each end (a side of 358
   is divisible as 179 + 179 but hardly ever splits so). Among acceptable cuts the lowest kind
   wins (a road before a block before a building), then sides of at least a third, then
   balance. The first trees may cut only roads; blocks and then buildings are opened only
   when roads have failed. If no tree has an acceptable cut, the cut nearest to one is taken,
   so construction never backtracks and its cost is bounded.
2. **Repair.** A grid left outside the band is merged with a neighbour and the pair re-split
   along random trees, keeping the split that most reduces the households outside the band,
   and on a tie the one that best evens out the two grids: surplus and deficit diffuse from
   grid to grid until they meet.
3. **Improvement.** Pairs of neighbouring grids are re-split and single units moved to a
   neighbouring grid. A change is kept only if no grid leaves the band or breaks apart and the
   plan's cost falls: ``Σ (1 − Polsby-Popper)`` over grids plus the cut cost of the
   boundaries between grids (zero on roads, per metre off roads, plus a price per building
   shared).

Randomness comes from one ``random.Random(seed)`` and iteration orders are fixed, so a seed
gives the same plan on every machine. Work is bounded by counts, never by the clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

ROAD, LOT, ENTRANCE = 0, 1, 2
_TREE_RANK = (2.0, 1.0, 0.0)  # Kruskal takes entrances first, roads last
_FOUR_PI = 4.0 * math.pi
_EPS = 1e-9


class _OutOfBudget(Exception):
    """The exact search took more steps than its budget."""


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


def contract(problem: Problem, groups: list[list[int]]) -> Problem:
    """The problem with each group of units merged into one node (groups cover all units).

    A merged node's perimeter is its outline; edges between two nodes are merged into one
    whose length, road length and cut cost are sums and whose kind is the lowest.
    """
    p = problem
    node = [0] * p.n
    for k, g in enumerate(groups):
        for u in g:
            node[u] = k
    m = len(groups)
    w = [0] * m
    area = [0.0] * m
    perim = [0.0] * m
    label = [-1] * m
    block = [-1] * m
    xs = [0.0] * m
    ys = [0.0] * m
    for k, g in enumerate(groups):
        xs[k] = sum(p.x[u] for u in g) / len(g)
        ys[k] = sum(p.y[u] for u in g) / len(g)
        w[k] = sum(p.w[u] for u in g)
        area[k] = sum(p.area[u] for u in g)
        perim[k] = sum(p.perim[u] for u in g)
        labels = {p.label[u] for u in g}
        label[k] = labels.pop() if len(labels) == 1 else -1
        block[k] = p.block[g[0]]
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
        w=w,
        area=area,
        perim=perim,
        eu=[a for a, _ in keys],
        ev=[b for _, b in keys],
        elen=[merged[k][0] for k in keys],
        ecost=[merged[k][1] for k in keys],
        ekind=[int(merged[k][2]) for k in keys],
        label=label,
        block=block,
        x=xs,
        y=ys,
    )


def split_units(
    problem: Problem,
    components: list[list[int]],
    lo: int,
    hi: int,
    seed: int,
    budget: Budget | None = None,
) -> list[list[int]]:
    """Grids for connected components: whole blocks first, finer units only where needed.

    Blocks that fit in one grid are merged into one node and the components are split,
    repaired and improved on that coarse graph, so boundaries stay on roads wherever whole
    blocks can make the band. The plan is then expanded to units and repaired and improved
    again: only grids the coarse plan could not bring into the band open their blocks.
    """
    p = problem
    by_block: dict[int, list[int]] = {}
    for u in range(p.n):
        by_block.setdefault(p.block[u], []).append(u)
    groups: list[list[int]] = []
    for b in sorted(by_block):
        units = by_block[b]
        whole = sum(p.w[u] for u in units) <= hi and all(p.label[u] < 0 for u in units)
        groups.extend([units] if whole else [[u] for u in units])
    node = [0] * p.n
    for k, g in enumerate(groups):
        for u in g:
            node[u] = k
    coarse = contract(p, groups)
    part = Partitioner(coarse, lo, hi, seed, budget)
    fine = Partitioner(p, lo, hi, seed + 1, budget)
    grids: list[list[int]] = []
    rough: list[list[int]] = []
    for comp in components:
        if any(len(groups[node[u]]) == 1 and groups[node[u]] != by_block[p.block[u]]
               for u in comp):  # fmt: skip
            rough += fine.solve(comp)  # a block over the band: work on units from the start
            continue
        nodes = sorted({node[u] for u in comp})
        exact = part.exact_solve(nodes)
        grids += exact if exact is not None else part.solve(nodes)
    if grids:
        grids = part.plan(grids, regions=False)
    expanded = [sorted(u for k in g for u in groups[k]) for g in grids]
    return fine.plan(expanded + rough)


@dataclass(frozen=True)
class Budget:
    """How hard to search. Counts, not seconds, so that a seed always gives one plan.

    ``road_tries`` / ``lot_tries`` / ``entrance_tries``: spanning trees drawn per piece while
    only roads / also blocks / also buildings may be cut. ``comfort``: the room a multi-grid
    side must keep, as a share of the band's width per grid. ``pair_trees``: trees per pair
    re-split. ``repair_rounds``: passes of pair repair; ``repair_radius``, ``region_tries``:
    how far around a grid still outside the band, and how often, to re-solve; ``rounds``:
    passes of improvement.
    """

    road_tries: int = 8
    lot_tries: int = 8
    entrance_tries: int = 8
    comfort: float = 0.25
    pair_trees: int = 12
    repair_rounds: int = 60
    repair_radius: int = 3
    region_tries: int = 4
    region_attempts: int = 40
    chain_targets: int = 4
    verify: int = 6
    exact_steps: int = 20_000
    strict_work: int = 0
    small_grids: int = 3
    clean_exact: bool = False
    solve_steps: int = 100_000
    mrv_cap: int = 24
    heavy_share: float = 0.5
    pocket_units: int = 8
    exact_per_grid: int = 80
    exact_restarts: int = 200
    exact_total: int = 120
    mrv_hops: int = 3
    walk_steps: int = 3000
    verify_tries: int = 6
    rounds: int = 8


class Partitioner:
    """Split pieces of one problem into connected grids whose households lie in the band."""

    def __init__(
        self, problem: Problem, lo: int, hi: int, seed: int, budget: Budget | None = None
    ) -> None:
        self.p = problem
        self.lo, self.hi = lo, hi
        self.mid = (lo + hi) / 2.0
        self.rng = random.Random(seed)
        self.budget = budget or Budget()
        self.comfort = (hi - lo) * self.budget.comfort
        self._div: dict[int, bool] = {}
        self._slack: dict[int, float] = {}
        self._dist: dict[int, int] = {}
        self._memo: dict[frozenset[int], list[list[int]] | None] = {}
        self._exact_memo: dict[frozenset[int], list[list[int]] | None] = {}
        self._left = 0
        self._work = 0
        self._steps = 0
        self._always_divisible = _always_divisible(lo, hi)
        self._failed: set[frozenset[int]] = set()
        n = problem.n
        self._mark = [0] * n
        self._stamp = 0
        self._uf = list(range(n))

    # --- arithmetic of the band --------------------------------------------------------------

    def divisible(self, total: int) -> bool:
        """Whether ``total`` households can form whole grids: ``k·lo ≤ total ≤ k·hi``."""
        ok = self._div.get(total)
        if ok is None:
            ok = total > 0 and -(-total // self.hi) <= total // self.lo
            self._div[total] = ok
        return ok

    def slack(self, total: int) -> float:
        """Households per grid by which ``total`` could move and stay divisible (best ``k``)."""
        room = self._slack.get(total)
        if room is None:
            room = -1.0
            for k in range(max(1, -(-total // self.hi)), total // self.lo + 1):
                room = max(room, min(total - k * self.lo, k * self.hi - total) / k)
            self._slack[total] = room
        return room

    def distance(self, total: int) -> int:
        """Households outside the band for the best number of grids (0 when divisible)."""
        d = self._dist.get(total)
        if d is None:
            k = max(1, round(total / self.mid))
            d = min(
                max(0, j * self.lo - total, total - j * self.hi)
                for j in range(max(1, k - 2), k + 3)
            )
            self._dist[total] = d
        return d

    def best_k(self, total: int) -> int:
        """The number of grids for ``total``: inside the band if possible, nearest the middle."""
        k = max(1, round(total / self.mid))
        options = range(max(1, k - 2), k + 3)
        return min(
            options,
            key=lambda j: (max(0, j * self.lo - total, total - j * self.hi), abs(total / j - self.mid)),
        )

    def deviation(self, total: int) -> int:
        return max(0, self.lo - total, total - self.hi)

    # --- construction ------------------------------------------------------------------------

    def solve(self, piece: list[int]) -> list[list[int]]:
        """Grids for a connected piece; some may miss the band, for :meth:`plan` to repair.

        First a strict search (every cut's small sides proven splittable, backtracking within
        a work budget); if that fails, a loose one that takes the nearest miss where no cut
        is acceptable.
        """
        total = sum(self.p.w[u] for u in piece)
        self._work = self.budget.strict_work
        self._steps = self.budget.solve_steps
        strict = self._strict(piece, total)
        return strict if strict is not None else self._loose(piece)

    def _schedule(self) -> list[int]:
        b = self.budget
        return [ROAD] * b.road_tries + [LOT] * b.lot_tries + [ENTRANCE] * b.entrance_tries

    def _strict(self, piece: list[int], total: int) -> list[list[int]] | None:
        if self.best_k(total) <= self.budget.small_grids:
            return self._clean(piece, total)
        key = frozenset(piece)
        if key in self._failed:
            return None
        need = min(self.comfort, max(self.slack(total), 0.0))
        for max_level in self._schedule():
            order, size, cands = self._candidates(piece, total)
            good = sorted(
                (key, i, t1)
                for i, t1, kind, key in cands
                if kind <= max_level
                and self._acceptable(t1, need)
                and self._acceptable(total - t1, need)
            )
            for _, i, t1 in good[: self.budget.verify]:
                self._work -= 1
                if self._work < 0:
                    return None
                side = order[i : i + size[order[i]]]
                left = self._strict(side, t1)
                if left is None:
                    continue
                right = self._strict(self._rest(piece, side), total - t1)
                if right is not None:
                    return left + right
        self._failed.add(key)
        return None

    def _loose(self, piece: list[int]) -> list[list[int]]:
        p = self.p
        total = sum(p.w[u] for u in piece)
        labels = {p.label[u] for u in piece if p.label[u] >= 0}
        if len(piece) == 1 or (len(labels) <= 1 and self.best_k(total) == 1):
            return [piece]
        if self.best_k(total) <= self.budget.small_grids:
            clean = self._clean(piece, total)
            if clean is not None:
                return clean
        b = self.budget
        need = min(self.comfort, max(self.slack(total), 0.0))
        fallback: tuple[tuple[float, ...], list[int]] | None = None
        for max_level in self._schedule():
            order, size, cands = self._candidates(piece, total)
            good = []
            for i, t1, kind, key in cands:
                t2 = total - t1
                if kind <= max_level and self._acceptable(t1, need) and self._acceptable(t2, need):
                    good.append((key, i, t1))
                else:
                    miss = self.distance(t1) + self.distance(t2)
                    room = min(
                        self.slack(t1) if t1 > self.hi else 0.0,
                        self.slack(t2) if t2 > self.hi else 0.0,
                    )
                    nkey = (float(miss), -room, *key)
                    if fallback is None or nkey < fallback[0]:
                        fallback = (nkey, order[i : i + size[order[i]]])
            good.sort()
            for _, i, t1 in good[: b.verify]:
                side = order[i : i + size[order[i]]]
                rest = self._rest(piece, side)
                done = self._settle(side, t1) + self._settle(rest, total - t1)
                if all(d is not None for d in done):
                    out: list[list[int]] = []
                    for d, part in zip(done, (side, rest), strict=True):
                        out += self._loose(part) if d == [] else d  # type: ignore[operator]
                    return out
        if fallback is None:
            return [piece]  # every cut would split a locked grid
        side = fallback[1]
        return self._loose(side) + self._loose(self._rest(piece, side))

    def _acceptable(self, total: int, need: float) -> bool:
        """One grid in the band, or several with ``need`` households per grid to spare."""
        if total <= self.hi:
            return total >= self.lo
        return self.divisible(total) and self.slack(total) >= need

    def _settle(self, side: list[int], total: int) -> list[list[int] | None]:
        """A small side's clean split (None if there is none), or ``[]`` for a large side
        that is left to :meth:`solve`."""
        if self.best_k(total) > self.budget.small_grids:
            return [[]]
        return [self._clean(side, total)]  # type: ignore[list-item]

    def _clean(self, piece: list[int], total: int) -> list[list[int]] | None:
        """Grids all inside the band for a small piece (a few grids), or None; memoised.

        Looking ahead like this keeps construction from leaving a two-grid piece whose units
        cannot make two grids in the band (a subset-sum failure, not a total one).
        """
        key = frozenset(piece)
        if key in self._memo:
            return self._memo[key]
        p = self.p
        labels = {p.label[u] for u in piece if p.label[u] >= 0}
        result: list[list[int]] | None = None
        if self.lo <= total <= self.hi and len(labels) <= 1:
            result = [piece]
        elif total > self.hi and self.divisible(total) and len(piece) > 1:
            allowance = min(self.budget.exact_steps, self._steps)
            if allowance <= 0 or not self.budget.clean_exact:
                result = self._tree_clean(piece, total)
            else:
                self._left = allowance
                try:
                    result = self._exact(piece, total)
                except _OutOfBudget:
                    result = self._tree_clean(piece, total)
                finally:
                    self._steps -= allowance - max(self._left, 0)
        self._memo[key] = result
        return result

    def _tree_clean(self, piece: list[int], total: int) -> list[list[int]] | None:
        """Random-tree search for a clean split, when the exact search is too big."""
        result: list[list[int]] | None = None
        if True:
            for _ in range(self.budget.verify_tries):
                order, size, cands = self._candidates(piece, total)
                good = sorted(
                    (key, i, t1)
                    for i, t1, _kind, key in cands
                    if self._acceptable(t1, 0.0) and self._acceptable(total - t1, 0.0)
                )
                for _, i, t1 in good[: self.budget.verify]:
                    side = order[i : i + size[order[i]]]
                    left = self._clean(side, t1)
                    if left is None:
                        continue
                    right = self._clean(self._rest(piece, side), total - t1)
                    if right is not None:
                        result = left + right
                        break
                if result is not None:
                    break
        return result

    def exact_solve(self, piece: list[int]) -> list[list[int]] | None:
        """Grids all inside the band for a whole connected piece by exhaustive search, or None.

        The search is heavy-tailed (a poor early choice can cost exponential time), so it
        runs in restarts with a growing step budget and random tie-breaks; proven dead ends
        are remembered across restarts.
        """
        total = sum(self.p.w[u] for u in piece)
        unit = self.budget.exact_per_grid * max(1, round(total / self.mid))
        spent = 0
        for k in range(1, self.budget.exact_restarts + 1):
            budget = unit * _luby(k)
            if spent + budget > unit * self.budget.exact_total:
                break
            spent += budget
            self._left = budget
            try:
                return self._exact(piece, total)
            except _OutOfBudget:
                continue
        return None

    def _exact(
        self, piece: list[int], total: int, counts: dict[int, int] | None = None
    ) -> list[list[int]] | None:
        """Exhaustive search: carve every connected grid holding the piece's most constrained
        unit, keep one whose remainder splits into divisible connected parts, recurse.

        Complete (None means no clean split exists) unless the step budget runs out, which
        raises :class:`_OutOfBudget`. ``counts`` carries, for the heavy units (half a grid or
        more), how many grids could hold them: the one with fewest is decided first, and a
        carve that leaves a heavy unit no grid at all is dropped at once. Candidate grids come
        nearest units first, so the first ones found are compact.
        """
        key = frozenset(piece)
        if key in self._exact_memo:
            return self._exact_memo[key]
        p = self.p
        labels = {p.label[u] for u in piece if p.label[u] >= 0}
        if self.lo <= total <= self.hi and len(labels) <= 1:
            return [piece]
        if len(piece) == 1 or not self.divisible(total):
            return None
        inside = set(piece)
        if counts is None:
            heavy = self.lo * self.budget.heavy_share
            counts = {u: self._count(u, inside) for u in piece if p.w[u] >= heavy}
        result: list[list[int]] | None = None
        if counts and min(counts.values()) == 0:
            self._exact_memo[key] = None
            return None
        if counts:
            fewest = min(counts.values())
            tied = sorted(u for u, c in counts.items() if c == fewest)
            anchor = tied[self.rng.randrange(len(tied))]
        else:
            anchor = self._outlying(piece)
        for grid in self._grids_holding(anchor, inside):
            mine = {p.label[u] for u in grid if p.label[u] >= 0}
            if len(mine) > 1:
                continue
            rest = inside - grid
            if mine and any(p.label[u] in mine for u in rest):
                continue
            parts = self._parts_after(rest, grid, total - sum(p.w[u] for u in grid))
            if parts is None:
                continue
            left = {u: c for u, c in counts.items() if u in rest}
            for u in self._near(grid, rest, left):
                left[u] = self._count(u, rest)
            if left and min(left.values()) == 0:
                continue
            found = [sorted(grid)]
            for c, t in parts:
                c_set = set(c) if c is not None else rest
                nodes = c if c is not None else sorted(rest)
                sub = self._exact(nodes, t, {u: n for u, n in left.items() if u in c_set})
                if sub is None:
                    break
                found += sub
            else:
                result = found
                break
        self._exact_memo[key] = result
        return result

    def _count(self, u: int, allowed: set[int]) -> int:
        """Grids that could hold ``u`` within ``allowed``, counted up to ``Budget.mrv_cap``."""
        count = 0
        for _ in self._grids_holding(u, allowed):
            count += 1
            if count >= self.budget.mrv_cap:
                break
        return count

    def _near(self, grid: set[int], rest: set[int], heavy: dict[int, int]) -> list[int]:
        """Heavy units within two steps of a carved grid: the ones whose options it took."""
        p = self.p
        ring = {v for u in grid for v, _ in p.nbrs[u] if v in rest}
        edge = set(ring)
        for _ in range(self.budget.mrv_hops - 1):
            edge = {x for v in edge for x, _ in p.nbrs[v] if x in rest and x not in ring}
            ring |= edge
        return sorted(u for u in ring if u in heavy)

    def _parts_after(
        self, rest: set[int], grid: set[int], weight_rest: int
    ) -> list[tuple[list[int] | None, int]] | None:
        """The connected parts left after carving ``grid``, with their households (``None``
        for nodes means all of ``rest``); None if a part cannot be divided into grids.

        Usually the rest stays connected, which a search from one neighbour of the grid that
        stops once it has met all the others shows cheaply. Otherwise parts are explored from
        the grid's edge only until they are big enough to be surely divisible.
        """
        p = self.p
        if not rest:
            return []
        starts = sorted({v for u in grid for v, _ in p.nbrs[u] if v in rest})
        if self._joined(starts, rest):
            return [(None, weight_rest)] if self.divisible(weight_rest) else None
        if self._small_pocket(starts, rest):
            return None
        cap = self._always_divisible
        owner: dict[int, int] = {}  # node → the exploration that reached it first
        small: list[tuple[list[int], int]] = []
        big = 0
        for idx, s0 in enumerate(starts):
            if s0 in owner:
                continue
            comp = [s0]
            owner[s0] = idx
            weight = p.w[s0]
            k = 0
            joined = False  # ran into an earlier, unfinished (big) exploration
            while k < len(comp) and weight <= cap and not joined:
                for v, _ in p.nbrs[comp[k]]:
                    if v in rest:
                        o = owner.get(v)
                        if o is None:
                            owner[v] = idx
                            comp.append(v)
                            weight += p.w[v]
                        elif o != idx:
                            joined = True
                k += 1
            if joined:
                continue
            if k < len(comp):  # stopped early: a big part
                big += 1
                continue
            if not self.divisible(weight):
                return None
            small.append((sorted(comp), weight))
        if big == 0:
            return list(small)
        out: list[tuple[list[int] | None, int]] = list(small)
        if big == 1:
            taken = {u for c, _ in small for u in c}
            other = sorted(rest - taken)
            return [*out, (other, sum(p.w[u] for u in other))]
        parts = p.components(rest)
        sums = [sum(p.w[u] for u in c) for c in parts]
        if not all(self.divisible(t) for t in sums):
            return None
        return list(zip(parts, sums, strict=True))

    def _small_pocket(self, starts: list[int], rest: set[int]) -> bool:
        """Whether carving cut off a small pocket (a few units) that no grid count fits:
        the usual reason to reject a carve, found before exploring the big part."""
        p = self.p
        limit = self.budget.pocket_units
        done: set[int] = set()
        for s0 in starts:
            if s0 in done:
                continue
            comp = [s0]
            seen = {s0}
            k = 0
            while k < len(comp) and len(comp) <= limit:
                for v, _ in p.nbrs[comp[k]]:
                    if v in rest and v not in seen:
                        seen.add(v)
                        comp.append(v)
                k += 1
            if k == len(comp):  # the whole pocket
                done |= seen
                if not self.divisible(sum(p.w[u] for u in comp)):
                    return True
        return False

    def _joined(self, starts: list[int], rest: set[int]) -> bool:
        """Whether the grid's neighbours are joined to each other close to the grid (within
        two steps of it): then the rest is still one piece. A False is inconclusive."""
        if len(starts) <= 1:
            return True
        p = self.p
        band = set(starts)
        for u in starts:
            for v, _ in p.nbrs[u]:
                if v in rest:
                    band.add(v)
        want = len(starts) - 1
        first = starts[0]
        targets = set(starts)
        seen = {first}
        stack = [first]
        while stack:
            u = stack.pop()
            for v, _ in p.nbrs[u]:
                if v in band and v not in seen:
                    seen.add(v)
                    stack.append(v)
                    if v in targets:
                        want -= 1
                        if want == 0:
                            return True
        return False

    def _outlying(self, piece: list[int]) -> int:
        """The unit farthest from the piece's centre (ties: lowest number)."""
        p = self.p
        cx = sum(p.x[u] for u in piece) / len(piece)
        cy = sum(p.y[u] for u in piece) / len(piece)
        return max(sorted(piece), key=lambda u: (p.x[u] - cx) ** 2 + (p.y[u] - cy) ** 2)

    def _grids_holding(self, anchor: int, inside: set[int]) -> Iterator[set[int]]:
        """Every connected set holding ``anchor`` whose households lie in the band, once each.

        Classic enumeration of connected subgraphs: a set grows by one frontier unit at a
        time; a unit skipped at one level is banned below it, so no set is produced twice.
        """
        p = self.p
        lo, hi = self.lo, self.hi
        x0, y0 = p.x[anchor], p.y[anchor]

        def far(v: int) -> float:
            return -((p.x[v] - x0) ** 2 + (p.y[v] - y0) ** 2)

        chosen = {anchor}

        def grow(
            weight: int, frontier: list[int], banned: set[int], last: bool
        ) -> Iterator[set[int]]:
            self._left -= 1
            if self._left < 0:
                raise _OutOfBudget
            if weight >= lo:
                yield set(chosen)
            frontier = sorted(frontier, key=far)  # nearest last, popped first
            banned = set(banned)
            while frontier:
                v = frontier.pop()
                banned.add(v)
                if weight + p.w[v] > hi:
                    continue
                seen = set(frontier)
                new = [
                    x
                    for x, _ in p.nbrs[v]
                    if x in inside and x not in chosen and x not in banned and x not in seen
                ]
                chosen.add(v)
                yield from grow(weight + p.w[v], frontier + new, banned, p.w[v] > 0)
                chosen.discard(v)

        start = [x for x, _ in p.nbrs[anchor] if x in inside]
        yield from grow(p.w[anchor], sorted(set(start)), {anchor}, True)

    def _candidates(
        self, piece: list[int], total: int
    ) -> tuple[list[int], dict[int, int], list[tuple[int, int, int, tuple[int, int, float]]]]:
        """A random tree of the piece and its cuts that keep locks whole, each with
        ``(position in order, households below, kind, preference key)``."""
        p = self.p
        order, parent, pedge = self.random_tree(piece)
        sub = {u: p.w[u] for u in order}
        for u in reversed(order[1:]):
            sub[parent[u]] += sub[u]
        size = _subtree_sizes(order, parent)
        lab_in, bad = self._label_cuts(order, parent)
        n_labels = lab_in[order[0]] if lab_in else 0
        lo = self.lo
        half = total / 2.0
        rnd = self.rng.random
        out = []
        for i in range(1, len(order)):
            u = order[i]
            t1 = sub[u]
            if lab_in:
                if bad[u]:
                    continue
                l1 = lab_in[u]
                if l1 > max(1, t1 // lo) or n_labels - l1 > max(1, (total - t1) // lo):
                    continue
            kind = p.ekind[pedge[u]]
            # Prefer roads, then sides of at least a third, then balance; random tie-break.
            balanced = 0 if 3 * min(t1, total - t1) >= total else 1
            out.append((i, t1, kind, (kind, balanced, abs(t1 - half) + rnd())))
        return order, size, out

    def _rest(self, piece: list[int], side: list[int]) -> list[int]:
        stamp = self._stamped(side)
        mark = self._mark
        return [u for u in piece if mark[u] != stamp]

    def random_tree(self, piece: list[int]) -> tuple[list[int], dict[int, int], dict[int, int]]:
        """A random spanning tree of a connected piece, built by kind (see module docstring).

        Returns the units in depth-first preorder (so every subtree is a slice of it), each
        unit's parent and the edge to its parent. On a disconnected piece, the tree spans only
        the part holding ``piece[0]``.
        """
        p = self.p
        stamp = self._stamped(piece)
        mark = self._mark
        rnd = self.rng.random
        keyed = []
        for a in piece:
            for b, e in p.nbrs[a]:
                if a < b and mark[b] == stamp:
                    keyed.append((_TREE_RANK[p.ekind[e]] + rnd(), e))
        keyed.sort()
        uf = self._uf
        for u in piece:
            uf[u] = u
        adj: dict[int, list[tuple[int, int]]] = {u: [] for u in piece}
        need = len(piece) - 1
        eu, ev = p.eu, p.ev
        for _, e in keyed:
            if need == 0:
                break
            a, b = eu[e], ev[e]
            ra = a
            while uf[ra] != ra:
                uf[ra] = uf[uf[ra]]
                ra = uf[ra]
            rb = b
            while uf[rb] != rb:
                uf[rb] = uf[uf[rb]]
                rb = uf[rb]
            if ra == rb:
                continue
            uf[ra] = rb
            adj[a].append((b, e))
            adj[b].append((a, e))
            need -= 1
        root = piece[0]
        order: list[int] = []
        parent = {root: -1}
        pedge = {root: -1}
        stack = [root]
        while stack:
            u = stack.pop()
            order.append(u)
            for v, e in adj[u]:
                if v != parent[u]:
                    parent[v] = u
                    pedge[v] = e
                    stack.append(v)
        return order, parent, pedge

    def _label_cuts(
        self, order: list[int], parent: dict[int, int]
    ) -> tuple[dict[int, int], dict[int, bool]]:
        """Per unit: how many pinned labels lie wholly in its subtree, and whether cutting
        above it would split a label (then the cut is refused)."""
        p = self.p
        units_of: dict[int, list[int]] = {}
        for u in order:
            lab = p.label[u]
            if lab >= 0:
                units_of.setdefault(lab, []).append(u)
        if not units_of:
            return {}, {}
        depth = _depths(order, parent)
        bad = dict.fromkeys(order, False)
        count = dict.fromkeys(order, 0)
        for lab in sorted(units_of):
            members = units_of[lab]
            top = members[0]
            for u in members[1:]:
                top = _lca(top, u, parent, depth)
            count[top] += 1
            for u in members:
                while u != top and not bad[u]:
                    bad[u] = True
                    u = parent[u]
        for u in reversed(order[1:]):
            count[parent[u]] += count[u]
        return count, bad

    def _stamped(self, units: Sequence[int]) -> int:
        self._stamp += 1
        s = self._stamp
        mark = self._mark
        for u in units:
            mark[u] = s
        return s

    # --- repair and improvement --------------------------------------------------------------

    def plan(self, grids: list[list[int]], *, regions: bool = True) -> list[list[int]]:
        """Repair grids outside the band, then improve the plan while its cost falls.

        ``regions=False`` skips re-solving rings of grids (the costly last resort).
        """
        state = _State(self, grids)
        state.repair()
        state.chain_repair()
        if regions and any(self.deviation(w) for w in state.w):
            state = _State(self, self._repair_regions([sorted(m) for m in state.members]))
        dirty = set(range(len(state.members)))
        for _ in range(self.budget.rounds):
            changed = False
            for g, h in state.pairs():
                if (g in dirty or h in dirty) and state.resplit(g, h, repair=False):
                    changed = True
            changed |= state.move_units()
            dirty, state.touched = state.touched, set()
            if not changed:
                break
        return [sorted(m) for m in state.members]


    def _repair_regions(self, grids: list[list[int]]) -> list[list[int]]:
        """Re-solve a grid still outside the band together with the grids around it.

        Pair re-splits cannot move 5 households when units hold 20-30; a ring of neighbours
        re-split from scratch can. The ring grows (1, 2, 3 grids deep) until some attempt puts
        every grid of it in the band; the number of grids may change on the way.
        """
        p = self.p
        attempts = self.budget.region_attempts
        for radius in range(1, self.budget.repair_radius + 1):
            for _ in range(len(grids)):
                grid_of = [-1] * p.n
                for k, g in enumerate(grids):
                    for u in g:
                        grid_of[u] = k
                bad = [k for k, g in enumerate(grids) if self.deviation(sum(p.w[u] for u in g))]
                fixed = False
                for k in bad:
                    ring = self._ring(k, radius, grids, grid_of)
                    units = sorted(u for j in ring for u in grids[j])
                    if not self.divisible(sum(p.w[u] for u in units)):
                        continue
                    attempts -= 1
                    if attempts < 0:
                        return grids
                    new = self._ring_solve(units)
                    if new is not None:
                        grids = [g for j, g in enumerate(grids) if j not in ring] + new
                        fixed = True
                    if fixed:
                        break
                if not fixed:
                    break
            if not any(self.deviation(sum(p.w[u] for u in g)) for g in grids):
                break
        return grids

    def _ring_solve(self, units: list[int]) -> list[list[int]] | None:
        """Grids all in the band for a ring of grids: exact search, then a few tree tries."""
        total = sum(self.p.w[u] for u in units)
        self._left = self.budget.exact_steps
        try:
            found = self._exact(units, total)
            if found is not None:
                return found
        except _OutOfBudget:
            pass
        for _ in range(self.budget.region_tries):
            new = self.solve(units)
            if all(self._valid_grid(g) for g in new):
                return new
        return None

    def _valid_grid(self, grid: list[int]) -> bool:
        p = self.p
        labels = {p.label[u] for u in grid if p.label[u] >= 0}
        return self.deviation(sum(p.w[u] for u in grid)) == 0 and len(labels) <= 1

    def _ring(self, k: int, radius: int, grids: list[list[int]], grid_of: list[int]) -> set[int]:
        """Grid ``k`` and the grids within ``radius`` steps of it."""
        p = self.p
        ring = {k}
        edge = {k}
        for _ in range(radius):
            nxt = set()
            for j in edge:
                for u in grids[j]:
                    for v, _ in p.nbrs[u]:
                        h = grid_of[v]
                        if h >= 0 and h not in ring:
                            nxt.add(h)
            ring |= nxt
            edge = nxt
        return ring


class _State:
    """A plan being repaired or improved: grid of each unit and per-grid totals."""

    def __init__(self, part: Partitioner, grids: list[list[int]]) -> None:
        self.part = part
        p = part.p
        self.p = p
        self.grid_of = [-1] * p.n
        self.members: list[set[int]] = [set(g) for g in grids]
        for k, g in enumerate(grids):
            for u in g:
                self.grid_of[u] = k
        self.w = [sum(p.w[u] for u in g) for g in grids]
        self.a = [sum(p.area[u] for u in g) for g in grids]
        self.per = [self._perimeter(g) for g in self.members]
        self.touched: set[int] = set()

    def _perimeter(self, units: set[int]) -> float:
        p = self.p
        per = sum(p.perim[u] for u in units)
        for u in units:
            for v, e in p.nbrs[u]:
                if v in units:
                    per -= p.elen[e]
        return per

    @staticmethod
    def loss(area: float, per: float) -> float:
        """``1 − Polsby-Popper`` of a grid from its area and perimeter."""
        return 1.0 - (_FOUR_PI * area / (per * per) if per > 0 else 0.0)

    def pairs(self) -> list[tuple[int, int]]:
        p = self.p
        out: set[tuple[int, int]] = set()
        for a, b in zip(p.eu, p.ev, strict=True):
            ga, gb = self.grid_of[a], self.grid_of[b]
            if ga >= 0 and gb >= 0 and ga != gb:
                out.add((min(ga, gb), max(ga, gb)))
        return sorted(out)

    def neighbours(self, g: int) -> list[int]:
        p = self.p
        out = set()
        for u in self.members[g]:
            for v, _ in p.nbrs[u]:
                h = self.grid_of[v]
                if h >= 0 and h != g:
                    out.add(h)
        return sorted(out)

    def _cut_between(self, g: int, h: int) -> float:
        p = self.p
        cost = 0.0
        for u in self.members[g]:
            for v, e in p.nbrs[u]:
                if self.grid_of[v] == h:
                    cost += p.ecost[e]
        return cost

    def repair(self) -> None:
        """Re-split out-of-band grids with neighbours until none is left or nothing helps."""
        part = self.part
        for _ in range(part.budget.repair_rounds):
            bad = [g for g in range(len(self.members)) if part.deviation(self.w[g]) > 0]
            if not bad:
                return
            progress = False
            for g in bad:
                if part.deviation(self.w[g]) == 0:
                    continue
                for h in self.neighbours(g):
                    if self.resplit(g, h, repair=True):
                        progress = True
                        break
            if not progress:
                return

    def resplit(self, g: int, h: int, *, repair: bool) -> bool:
        """Best split of two neighbouring grids over random trees; True if it was kept.

        Splits are ranked by households outside the band, then (``repair``) by how evenly the
        two grids hold them or (otherwise) by compactness and cut cost.
        """
        part, p = self.part, self.p
        lo, hi, mid = part.lo, part.hi, part.mid
        region = sorted(self.members[g] | self.members[h])
        inside = set(region)
        total_w = self.w[g] + self.w[h]
        dev_now = part.deviation(self.w[g]) + part.deviation(self.w[h])
        if repair:
            current = (dev_now, (self.w[g] - mid) ** 2 + (self.w[h] - mid) ** 2)
        else:
            current = (
                dev_now,
                self.loss(self.a[g], self.per[g])
                + self.loss(self.a[h], self.per[h])
                + self._cut_between(g, h),
            )
        # Per unit: perimeter minus its edges inside the region (q), so P(S) = Σq + X(S).
        q = {}
        if not repair:
            for u in region:
                s = p.perim[u]
                for v, e in p.nbrs[u]:
                    if v in inside:
                        s -= p.elen[e]
                q[u] = s
        total_a = self.a[g] + self.a[h]
        total_q = sum(q.values())
        labs = sorted({p.label[u] for u in region if p.label[u] >= 0})
        best: tuple[tuple[float, float], list[int]] | None = None
        for _ in range(part.budget.pair_trees):
            order, parent, pedge = part.random_tree(region)
            if len(order) < len(region):
                return False  # no longer neighbours after an earlier change this round
            sw = {u: p.w[u] for u in order}
            lab_count = [{u: int(p.label[u] == lab) for u in order} for lab in labs]
            if not repair:
                depth = _depths(order, parent)
                sa = {u: p.area[u] for u in order}
                sq = dict(q)
                cross = dict.fromkeys(order, 0.0)
                ccost = dict.fromkeys(order, 0.0)
                for a in region:
                    for b, e in p.nbrs[a]:
                        if a < b and b in inside:
                            top = _lca(a, b, parent, depth)
                            ln, c = p.elen[e], p.ecost[e]
                            cross[a] += ln
                            cross[b] += ln
                            cross[top] -= 2 * ln
                            ccost[a] += c
                            ccost[b] += c
                            ccost[top] -= 2 * c
            for u in reversed(order[1:]):
                up = parent[u]
                sw[up] += sw[u]
                for lc in lab_count:
                    lc[up] += lc[u]
                if not repair:
                    sa[up] += sa[u]
                    sq[up] += sq[u]
                    cross[up] += cross[u]
                    ccost[up] += ccost[u]
            size = _subtree_sizes(order, parent)
            for i in range(1, len(order)):
                u = order[i]
                t1 = sw[u]
                t2 = total_w - t1
                dev = max(0, lo - t1, t1 - hi) + max(0, lo - t2, t2 - hi)
                if dev > current[0]:
                    continue
                if labs and not _labels_split_ok(lab_count, u, order[0]):
                    continue
                if repair:
                    key = (float(dev), (t1 - mid) ** 2 + (t2 - mid) ** 2)
                else:
                    a1 = sa[u]
                    per1 = sq[u] + cross[u]
                    per2 = total_q - sq[u] + cross[u]
                    key = (
                        float(dev),
                        self.loss(a1, per1) + self.loss(total_a - a1, per2) + ccost[u],
                    )
                if best is None or key < best[0]:
                    best = (key, order[i : i + size[u]])
        if best is None or not _better(best[0], current):
            return False
        side1 = set(best[1])
        side2 = inside - side1
        # Keep grid numbers on the side they overlap most (locks and names follow them).
        if len(side1 & self.members[g]) < len(side1 & self.members[h]):
            side1, side2 = side2, side1
        self._assign(g, side1)
        self._assign(h, side2)
        self.touched |= {g, h}
        return True

    def walk_repair(self) -> None:
        """A random walk of re-splits that never adds households outside the band.

        A grid outside the band and a random neighbour are re-split at random among the
        splits that keep the pair's households outside the band from growing (a new split
        with the same shortfall moves it to the other grid). Shortfalls and surpluses wander
        through the plan until they meet or reach a grid with room, where they vanish.
        """
        part = self.part
        rng = part.rng
        for _ in range(part.budget.walk_steps):
            bad = [g for g in range(len(self.members)) if part.deviation(self.w[g]) > 0]
            if not bad:
                return
            g = bad[rng.randrange(len(bad))]
            near = self.neighbours(g)
            if near:
                self._wander(g, near[rng.randrange(len(near))])

    def _wander(self, g: int, h: int) -> None:
        part, p = self.part, self.p
        lo, hi = part.lo, part.hi
        region = sorted(self.members[g] | self.members[h])
        total = self.w[g] + self.w[h]
        dev_now = part.deviation(self.w[g]) + part.deviation(self.w[h])
        labs = sorted({p.label[u] for u in region if p.label[u] >= 0})
        order, parent, _ = part.random_tree(region)
        if len(order) < len(region):
            return
        sw = {u: p.w[u] for u in order}
        lab_count = [{u: int(p.label[u] == lab) for u in order} for lab in labs]
        for u in reversed(order[1:]):
            sw[parent[u]] += sw[u]
            for lc in lab_count:
                lc[parent[u]] += lc[u]
        best = (dev_now, 1)  # households outside the band, then whether both grids miss it
        choices: list[int] = []
        for i in range(1, len(order)):
            u = order[i]
            t1 = sw[u]
            d1 = max(0, lo - t1, t1 - hi)
            d2 = max(0, lo - total + t1, total - t1 - hi)
            key = (d1 + d2, int(d1 > 0 and d2 > 0))
            if key > best or (labs and not _labels_split_ok(lab_count, u, order[0])):
                continue
            if key < best:
                best, choices = key, []
            choices.append(i)
        if not choices:
            return
        i = choices[part.rng.randrange(len(choices))]
        size = _subtree_sizes(order, parent)
        side = set(order[i : i + size[order[i]]])
        rest = set(region) - side
        if part.rng.random() < 0.5:
            side, rest = rest, side
        self._assign(g, side)
        self._assign(h, rest)
        self.touched |= {g, h}

    def chain_repair(self) -> None:
        """Pass a grid's surplus or deficit along a chain of neighbours to one with room.

        When no pair re-split can put a grid in the band (units of 20-30 households cannot
        move 5), the grid is re-split with its neighbour so that *it* lands in the band and
        the neighbour takes the surplus or deficit, and so on along the shortest chain of grids
        to one that has room. A chain that does not lower the households outside the band is
        undone.
        """
        part = self.part
        for _ in range(part.budget.repair_rounds):
            bad = [g for g in range(len(self.members)) if part.deviation(self.w[g]) > 0]
            if not bad:
                return
            progress = False
            for g in bad:
                if part.deviation(self.w[g]) > 0 and self._chain(g):
                    progress = True
            if not progress:
                return

    def _chain(self, g: int) -> bool:
        part = self.part
        short = self.w[g] < part.lo
        # Shortest chains (breadth-first over neighbouring grids) to grids with room.
        prev = {g: -1}
        queue = [g]
        targets: list[int] = []
        for x in queue:
            for h in self.neighbours(x):
                if h in prev:
                    continue
                prev[h] = x
                queue.append(h)
                room = self.w[h] > part.lo if short else self.w[h] < part.hi
                if room and part.deviation(self.w[h]) == 0:
                    targets.append(h)
            if len(targets) >= self.part.budget.chain_targets:
                break
        for t in targets:
            path = [t]
            while prev[path[-1]] != -1:
                path.append(prev[path[-1]])
            path.reverse()  # g … t
            saved = {x: set(self.members[x]) for x in path}
            before = sum(part.deviation(self.w[x]) for x in path)
            for cur, nxt in zip(path, path[1:], strict=False):
                if not self.push(cur, nxt) or part.deviation(self.w[nxt]) == 0:
                    break
            if sum(part.deviation(self.w[x]) for x in path) < before:
                self.touched |= set(path)
                return True
            for x, units in saved.items():
                self._assign(x, units)
        return False

    def push(self, g: int, h: int) -> bool:
        """Re-split ``g`` and ``h`` so that ``g`` is in the band and ``h`` as near it as can be."""
        part, p = self.part, self.p
        lo, hi, mid = part.lo, part.hi, part.mid
        region = sorted(self.members[g] | self.members[h])
        total = self.w[g] + self.w[h]
        labs = sorted({p.label[u] for u in region if p.label[u] >= 0})
        best: tuple[tuple[float, float], list[int], bool] | None = None
        for _ in range(part.budget.pair_trees):
            order, parent, _ = part.random_tree(region)
            if len(order) < len(region):
                return False
            sw = {u: p.w[u] for u in order}
            lab_count = [{u: int(p.label[u] == lab) for u in order} for lab in labs]
            for u in reversed(order[1:]):
                sw[parent[u]] += sw[u]
                for lc in lab_count:
                    lc[parent[u]] += lc[u]
            size = _subtree_sizes(order, parent)
            for i in range(1, len(order)):
                u = order[i]
                if labs and not _labels_split_ok(lab_count, u, order[0]):
                    continue
                t1 = sw[u]
                for tg, g_gets_subtree in ((t1, True), (total - t1, False)):
                    if not lo <= tg <= hi:
                        continue
                    th = total - tg
                    key = (float(part.deviation(th)), (th - mid) ** 2)
                    if best is None or key < best[0]:
                        best = (key, order[i : i + size[u]], g_gets_subtree)
        if best is None:
            return False
        side = set(best[1])
        rest = set(region) - side
        self._assign(g, side if best[2] else rest)
        self._assign(h, rest if best[2] else side)
        return True

    def _assign(self, g: int, units: set[int]) -> None:
        p = self.p
        self.members[g] = set(units)
        for u in units:
            self.grid_of[u] = g
        self.w[g] = sum(p.w[u] for u in units)
        self.a[g] = sum(p.area[u] for u in units)
        self.per[g] = self._perimeter(self.members[g])

    def move_units(self) -> bool:
        """Move single boundary units to a neighbouring grid where that lowers the cost."""
        p, part = self.p, self.part
        moved = False
        for u in range(p.n):
            g = self.grid_of[u]
            if g < 0 or p.label[u] >= 0 or len(self.members[g]) == 1:
                continue
            wg = self.w[g] - p.w[u]
            dev_g = part.deviation(wg) - part.deviation(self.w[g])
            if dev_g > 0:
                continue
            to_g = 0.0  # shared length and cut cost from u to its own grid and to each other
            cost_g = 0.0
            other: dict[int, list[float]] = {}
            for v, e in p.nbrs[u]:
                h = self.grid_of[v]
                if h == g:
                    to_g += p.elen[e]
                    cost_g += p.ecost[e]
                elif h >= 0:
                    acc = other.setdefault(h, [0.0, 0.0])
                    acc[0] += p.elen[e]
                    acc[1] += p.ecost[e]
            if not other:
                continue
            before_g = self.loss(self.a[g], self.per[g])
            after_g = self.loss(self.a[g] - p.area[u], self.per[g] - p.perim[u] + 2 * to_g)
            best: tuple[tuple[float, float], int] | None = None
            for h in sorted(other):
                dev = dev_g + part.deviation(self.w[h] + p.w[u]) - part.deviation(self.w[h])
                if dev > 0:
                    continue
                to_h, cost_h = other[h]
                before = before_g + self.loss(self.a[h], self.per[h])
                after = after_g + self.loss(
                    self.a[h] + p.area[u], self.per[h] + p.perim[u] - 2 * to_h
                )
                key = (float(dev), after - before + cost_g - cost_h)
                if _better(key, (0.0, 0.0)) and (best is None or key < best[0]):
                    best = (key, h)
            if best is None or not self._connected_without(g, u):
                continue
            h = best[1]
            to_h = other[h][0]
            self.members[g].discard(u)
            self.members[h].add(u)
            self.grid_of[u] = h
            self.w[g] -= p.w[u]
            self.w[h] += p.w[u]
            self.a[g] -= p.area[u]
            self.a[h] += p.area[u]
            self.per[g] = self.per[g] - p.perim[u] + 2 * to_g
            self.per[h] = self.per[h] + p.perim[u] - 2 * to_h
            self.touched |= {g, h}
            moved = True
        return moved

    def _connected_without(self, g: int, u: int) -> bool:
        p = self.p
        rest = self.members[g] - {u}
        if not rest:
            return False
        start = min(rest)
        seen = {start}
        stack = [start]
        while stack:
            a = stack.pop()
            for b, _ in p.nbrs[a]:
                if b in rest and b not in seen:
                    seen.add(b)
                    stack.append(b)
        return len(seen) == len(rest)


def _luby(i: int) -> int:
    """The i-th term (from 1) of the Luby restart sequence 1 1 2 1 1 2 4 1 1 2 …"""
    k = 1
    while (1 << k) - 1 < i:
        k += 1
    while i != (1 << k) - 1:
        i -= (1 << (k - 1)) - 1
        k = 1
        while (1 << k) - 1 < i:
            k += 1
    return 1 << (k - 1)


def _always_divisible(lo: int, hi: int) -> int:
    """A total from which every total can be divided into grids (750 for 150-180): from
    ``k·lo`` on, once ``(k+1)·lo ≤ k·hi + 1``, the bands of ``k`` and ``k+1`` grids overlap."""
    if hi <= lo:
        return 10**12
    k = max(1, -(-(lo - 1) // (hi - lo)))
    return k * lo


def _better(key: tuple[float, float], current: tuple[float, float]) -> bool:
    """Lexicographically lower by more than rounding noise."""
    if key[0] < current[0] - _EPS:
        return True
    return key[0] <= current[0] + _EPS and key[1] < current[1] - _EPS


def _labels_split_ok(lab_count: list[dict[int, int]], u: int, root: int) -> bool:
    """Each pinned label wholly on one side, and each side holding at most one."""
    side1 = side2 = 0
    for lc in lab_count:
        inside, total = lc[u], lc[root]
        if 0 < inside < total:
            return False
        if inside:
            side1 += 1
        else:
            side2 += 1
    return side1 <= 1 and side2 <= 1


def _subtree_sizes(order: list[int], parent: dict[int, int]) -> dict[int, int]:
    size = dict.fromkeys(order, 1)
    for u in reversed(order[1:]):
        size[parent[u]] += size[u]
    return size


def _depths(order: list[int], parent: dict[int, int]) -> dict[int, int]:
    depth = {order[0]: 0}
    for u in order[1:]:
        depth[u] = depth[parent[u]] + 1
    return depth


def _lca(a: int, b: int, parent: dict[int, int], depth: dict[int, int]) -> int:
    da, db = depth[a], depth[b]
    while da > db:
        a = parent[a]
        da -= 1
    while db > da:
        b = parent[b]
        db -= 1
    while a != b:
        a = parent[a]
        b = parent[b]
    return a
