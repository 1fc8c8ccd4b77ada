"""The search behind :func:`geo.planning.split.split_community`, on plain lists for speed.

Units are integers ``0..n-1``; a grid is a list of units. Nothing here knows about geometry
beyond each unit's households, area, perimeter and centre and each edge's length and cut
cost, so the same code runs on hand-drawn fixtures and on a 10,000-household district.

:func:`split_units` runs the whole pipeline on the connected parts of a community:

1. **Whole blocks first.** Where no block holds more than a grid may, every block is merged
   into one node and the part is split on that coarse graph, by the trees below and repair,
   and where that leaves grids outside the band by exhaustive search
   (:mod:`geo.planning.partition.exact`): whole blocks make the band a subset-sum problem with
   connectivity, which random cuts rarely solve. Every boundary then lies on a road.
2. **Otherwise on units: recursive bisection on random spanning trees.** A spanning tree of a
   piece is drawn with Kruskal's algorithm on random keys ranked by edge kind: entrance edges
   first, then lot edges, then road edges. So every building and every block is a connected
   subtree, and removing a road edge of the tree separates whole blocks. Every tree edge is a
   candidate cut. A cut is acceptable when each side is one grid inside the band, or several
   grids with room to spare: its total ``T`` lies in ``[k·min, k·max]`` for some ``k``
   (memoised) with at least ``Budget.comfort × (max − min)`` households per grid to each end
   (a side of 358 is divisible as 179 + 179 but hardly ever splits so). Among acceptable cuts
   the lowest kind wins (a road before a block before a building), then sides of at least a
   third, then balance; sides of a few grids are first checked to split cleanly. The first
   trees may cut only roads; blocks and then buildings are opened only when roads have failed.
   If no tree has an acceptable cut, the cut nearest to one is taken, so construction never
   backtracks and its cost is bounded.
3. **Repair** of grids left outside the band (:mod:`geo.planning.partition.improve`: pair re-splits,
   chains of re-splits), then re-solving rings of grids around the last ones exactly.
4. **Improvement**: pair re-splits and single-unit moves while compactness and road
   alignment improve.

The plan is drafted (steps 1-3) from ``Budget.starts`` seeds (more where the community
makes few grids, fewer where it makes many: ``Budget.draft_grids``); only the most promising
drafts are improved (step 4, ``Budget.finish``) and the best plan is kept, Reock counted when
the caller gives a shape loss. Starts share what the exhaustive search proves impossible.

Randomness comes from one ``random.Random(seed)`` per level and iteration orders are fixed,
so a seed gives the same plan on every machine. Work is bounded by counts, never by the clock.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from geo.planning.partition.band import Band
from geo.planning.partition.exact import ExactSearch
from geo.planning.partition.improve import PlanState, Shape
from geo.planning.partition.problem import ENTRANCE, LOT, ROAD, Budget, Problem, contract
from geo.planning.partition.tree import depths, lca, subtree_sizes

_TREE_RANK = (2.0, 1.0, 0.0)  # Kruskal takes entrances first, roads last


def split_units(
    problem: Problem,
    components: list[list[int]],
    lo: int,
    hi: int,
    seed: int,
    budget: Budget | None = None,
    shape: Shape | None = None,
) -> list[list[int]]:
    """Grids for connected components, whole blocks where they can make the band.

    A component where every block fits in one grid is solved on whole blocks (by trees, then
    exhaustively if grids are left outside the band), and improved there; if it is still not
    in the band, the grids are repaired and improved on units, opening blocks only where
    needed. Other components are split on units from the start.

    Plans are drafted from ``Budget.starts`` seeds, more for a community of few grids (up to
    ``Budget.start_grids`` grids are made in all, where that is more starts), fewer (at
    least two) for one of many (``Budget.draft_grids``): each draft is built and repaired,
    not yet improved. Improvement costs as much as drafting and keeps a draft's character
    (the band leaves it little room), so only the ``Budget.finish`` most promising drafts
    (times the factor for few grids) are improved. Drafts and finished plans are ranked
    alike: fewest households outside the band, then the lowest cost (ties: the earliest
    seed). The cost is the search's, plus ``shape`` of each grid if given (``1 − Reock``:
    few grids of whole blocks leave little to improve after construction, so the choice of
    start is where their roundness is won).
    """
    budget = budget or Budget()
    facts = _Facts()
    grids_needed = sum(problem.w) / ((lo + hi) / 2.0)
    more = max(1, int(budget.start_grids // max(1.0, grids_needed)))
    starts = max(1, budget.starts) * more
    starts = max(min(2, starts), min(starts, int(budget.draft_grids // max(1.0, grids_needed))))
    drafts = [
        _Draft(problem, components, lo, hi, seed + 7919 * k, budget, facts) for k in range(starts)
    ]
    ranked = sorted(
        range(starts), key=lambda k: (plan_score(drafts[k].fine, drafts[k].plan(), shape), k)
    )
    best: tuple[tuple[int, float], list[list[int]]] | None = None
    for k in ranked[: max(1, budget.finish) * more]:
        grids = drafts[k].finish()
        score = plan_score(drafts[k].fine, grids, shape)
        if best is None or score < best[0]:
            best = (score, grids)
    assert best is not None
    return best[1]


def plan_score(
    part: Partitioner, grids: list[list[int]], shape: Shape | None = None
) -> tuple[int, float]:
    """How plans (or regions of one) are ranked: households outside the band, then the
    search's cost (plus ``shape`` per grid). For a region, the cost counts every boundary it
    touches, so regions of one plan compare as whole plans would."""
    state = PlanState(part, grids)
    extra = sum(shape(g) for g in grids) if shape is not None else 0.0
    return sum(part.deviation(w) for w in state.w), state.cost() + extra


@dataclass
class _Facts:
    """What one start learns about the problem that holds for every start: the components
    the exhaustive search gave up on (not tried again) and the pieces it proved cannot be
    divided into grids, on whole blocks (``coarse``) and on units (``fine``)."""

    hopeless: set[int] = field(default_factory=set)
    coarse: set[frozenset[int]] = field(default_factory=set)
    fine: set[frozenset[int]] = field(default_factory=set)


class _Draft:
    """One start: a plan built and repaired (:meth:`plan`), improved on demand (:meth:`finish`).

    Blocks that fit in one grid are merged into one node each (``coarse``); a component
    without bigger blocks is built on those nodes, so that its boundaries lie on roads, and
    one with a bigger block on units (``fine``) from the start.
    """

    def __init__(
        self,
        problem: Problem,
        components: list[list[int]],
        lo: int,
        hi: int,
        seed: int,
        budget: Budget,
        facts: _Facts,
    ) -> None:
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
        opened = {u for g in groups if len(g) == 1 and len(by_block[p.block[g[0]]]) > 1 for u in g}
        self.groups = groups
        self.coarse = Partitioner(contract(p, groups), lo, hi, seed, budget, facts.coarse)
        self.fine = Partitioner(p, lo, hi, seed + 1, budget, facts.fine)
        coarse = self.coarse
        self.blocky: list[list[int]] = []  # grids of coarse nodes
        rough: list[list[int]] = []  # grids of units
        for i, comp in enumerate(components):
            if any(u in opened for u in comp):
                rough += self.fine.solve(comp)  # a block over the band: on units from the start
                continue
            # Whole blocks: trees first (quick where blocks are small), exhaustive search where
            # they leave grids outside the band (big blocks make it a subset-sum problem).
            nodes = sorted({node[u] for u in comp})
            grids = coarse.repaired(coarse.solve(nodes), regions=False)
            if any(coarse.deviation(sum(coarse.p.w[k] for k in g)) for g in grids):
                exact = None if i in facts.hopeless else coarse.exact.solve(nodes)
                if exact is None:
                    facts.hopeless.add(i)
                else:
                    grids = exact
            self.blocky += grids
        self.rough = self.fine.repaired(rough, regions=False) if rough else []

    def _expand(self, grids: list[list[int]]) -> list[list[int]]:
        return [sorted(u for k in g for u in self.groups[k]) for g in grids]

    def plan(self) -> list[list[int]]:
        """The draft as grids of units, before improvement."""
        return self._expand(self.blocky) + self.rough

    def finish(self) -> list[list[int]]:
        """The draft improved: on whole blocks, then on units where the band needs them."""
        state = PlanState(self.coarse, self.blocky)
        state.improve()
        expanded = self._expand(state.grids())
        everything = expanded + self.rough
        fine = self.fine
        if not self.rough and not any(
            fine.deviation(sum(fine.p.w[u] for u in g)) for g in expanded
        ):
            return everything  # whole blocks in the band: units could only trade roads away
        return fine.plan(everything)


class Partitioner(Band):
    """Split pieces of one problem into connected grids whose households lie in the band."""

    def __init__(
        self,
        problem: Problem,
        lo: int,
        hi: int,
        seed: int,
        budget: Budget | None = None,
        dead: set[frozenset[int]] | None = None,
    ) -> None:
        self.p = problem
        super().__init__(lo, hi)
        self.rng = random.Random(seed)  # noqa: S311 - reproducible search, not secrets
        self.budget = budget or Budget()
        self.comfort = (hi - lo) * self.budget.comfort
        self._memo: dict[frozenset[int], list[list[int]] | None] = {}
        self._mark = [0] * problem.n
        self._stamp = 0
        self._uf = list(range(problem.n))
        self.exact = ExactSearch(self, dead)

    # --- construction ------------------------------------------------------------------------

    def solve(self, piece: list[int]) -> list[list[int]]:
        """Grids for a connected piece; some may miss the band, for :meth:`plan` to repair."""
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
        schedule = [ROAD] * b.road_tries + [LOT] * b.lot_tries + [ENTRANCE] * b.entrance_tries
        fallback: tuple[tuple[float, ...], list[int]] | None = None
        for max_level in schedule:
            order, size, cands = self._candidates(piece, total)
            good = []
            for i, t1, kind, key in cands:
                t2 = total - t1
                if kind <= max_level and self._acceptable(t1, need) and self._acceptable(t2, need):
                    good.append((key, i, t1))
                    continue
                miss = self.distance(t1) + self.distance(t2)
                room = min(
                    self.slack(t1) if t1 > self.hi else 0.0,
                    self.slack(t2) if t2 > self.hi else 0.0,
                )
                near = (float(miss), -room, *key)
                if fallback is None or near < fallback[0]:
                    fallback = (near, order[i : i + size[order[i]]])
            good.sort()
            for _, i, t1 in good[: b.verify]:
                side = order[i : i + size[order[i]]]
                rest = self._rest(piece, side)
                ok_left, left = self._settled(side, t1)
                ok_right, right = self._settled(rest, total - t1)
                if ok_left and ok_right:
                    return (self.solve(side) if left is None else left) + (
                        self.solve(rest) if right is None else right
                    )
        if fallback is None:
            return [piece]  # every cut would split a locked grid
        side = fallback[1]
        return self.solve(side) + self.solve(self._rest(piece, side))

    def _acceptable(self, total: int, need: float) -> bool:
        """One grid in the band, or several with ``need`` households per grid to spare."""
        if total <= self.hi:
            return total >= self.lo
        return self.divisible(total) and self.slack(total) >= need

    def _settled(self, side: list[int], total: int) -> tuple[bool, list[list[int]] | None]:
        """For a small side, whether it splits cleanly and how; a large side passes with
        ``None`` (it is split later by :meth:`solve`)."""
        if self.best_k(total) > self.budget.small_grids:
            return True, None
        clean = self._clean(side, total)
        return clean is not None, clean

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
                    right = (
                        self._clean(self._rest(piece, side), total - t1)
                        if left is not None
                        else None
                    )
                    if left is not None and right is not None:
                        result = left + right
                        break
                if result is not None:
                    break
        self._memo[key] = result
        return result

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
        size = subtree_sizes(order, parent)
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
        """Per unit: how many locked labels lie wholly in its subtree, and whether cutting
        above it would split a label (then the cut is refused)."""
        p = self.p
        units_of: dict[int, list[int]] = {}
        for u in order:
            lab = p.label[u]
            if lab >= 0:
                units_of.setdefault(lab, []).append(u)
        if not units_of:
            return {}, {}
        depth = depths(order, parent)
        bad = dict.fromkeys(order, False)
        count = dict.fromkeys(order, 0)
        for lab in sorted(units_of):
            members = units_of[lab]
            top = members[0]
            for u in members[1:]:
                top = lca(top, u, parent, depth)
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

    def plan(self, grids: list[list[int]]) -> list[list[int]]:
        """Repair grids outside the band, then improve the plan while its cost falls."""
        state = PlanState(self, self.repaired(grids))
        state.improve()
        return state.grids()

    def repaired(self, grids: list[list[int]], *, regions: bool = True) -> list[list[int]]:
        """Grids outside the band repaired as far as the budget goes (see the module doc).

        ``regions=False`` skips re-solving rings of grids (the costly last resort).
        """
        state = PlanState(self, grids)
        state.repair()
        state.chain_repair()
        if regions and any(self.deviation(w) for w in state.w):
            return self._repair_regions(state.grids())
        return state.grids()

    def _repair_regions(self, grids: list[list[int]]) -> list[list[int]]:
        """Re-solve a grid still outside the band together with the grids around it.

        Pair re-splits cannot move 5 households when units hold 20-30; a ring of neighbours
        re-split from scratch can. The ring grows (1, 2, 3 grids deep) until some attempt puts
        every grid of it in the band; the number of grids may change on the way.
        """
        p = self.p
        attempts = self.budget.region_attempts
        for radius in range(1, self.budget.repair_radius + 1):
            fixed = True
            while fixed:
                grid_of = [-1] * p.n
                for k, g in enumerate(grids):
                    for u in g:
                        grid_of[u] = k
                bad = [k for k, g in enumerate(grids) if self.deviation(sum(p.w[u] for u in g))]
                if not bad:
                    return grids
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
                        break
        return grids

    def _ring_solve(self, units: list[int]) -> list[list[int]] | None:
        """Grids all in the band for a ring of grids: exact search, then a few constructions."""
        total = sum(self.p.w[u] for u in units)
        found = self.exact.within(units, total, self.budget.exact_steps)
        if isinstance(found, list):
            return found
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


__all__ = ["ENTRANCE", "LOT", "ROAD", "Budget", "Partitioner", "Problem", "contract", "split_units"]
