"""Repair and improvement of a plan, for :mod:`geo.planning.partition.search`.

A plan here is a list of grids (lists of units) that are each connected. Every change below
keeps them connected: pair re-splits cut a spanning tree of the two grids, so both sides are
connected; a single unit moves only if its grid stays connected without it.

**Repair** (grids outside the band):

- *pair re-split*: a grid and a neighbour are re-split along random trees, keeping the split
  with the fewest households outside the band, ties to the one that best evens them out;
- *chain*: a grid whose surplus or deficit no neighbour can take is re-split with a
  neighbour so that *it* lands in the band and the neighbour carries the difference, and so
  on along the shortest chain of grids to one with room; a chain that does not help is undone.

**Improvement** (all grids in the band): pairs of neighbouring grids are re-split and single
units moved to a neighbouring grid while the plan's cost falls: ``Σ (1 − Polsby-Popper)``
over grids plus the cut cost of the boundaries between grids (zero on roads, per metre off
them, plus a price per building shared). Changes never add households outside the band.

**Shape**: given a ``shape`` loss per grid (``1 − Reock``, which needs the units' outlines and
so cannot be summed up a tree), :meth:`PlanState.reshape` re-splits pairs once more, ranking
the ``Budget.shape_candidates`` best splits by compactness and cut cost again with it added,
and keeps a split only if the cut cost between the pair does not rise: a rounder grid is never
bought with a boundary off the roads.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Collection

from geo.planning.partition.band import Search
from geo.planning.partition.problem import Problem, connected
from geo.planning.partition.tree import depths, lca, subtree_sizes

_FOUR_PI = 4.0 * math.pi
_EPS = 1e-9

Shape = Callable[[Collection[int]], float]
"""An extra loss for a grid from its units (``1 − Reock``), for :meth:`PlanState.reshape`."""


def ties(p: Problem, grid_of: list[int], u: int) -> tuple[float, float, dict[int, list[float]]]:
    """What binds unit ``u`` where it is: the boundary length and cut cost it shares with its
    own grid, and per other neighbouring grid ``[length, cost]`` (units in no grid skipped)."""
    g = grid_of[u]
    to_g = cost_g = 0.0
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
    return to_g, cost_g, other


class PlanState:
    """A plan being repaired or improved: the grid of each unit and per-grid totals."""

    def __init__(self, part: Search, grids: list[list[int]], shape: Shape | None = None) -> None:
        self.part = part
        self.shape = shape
        p = part.p
        self.p = p
        self.grid_of = [-1] * p.n
        self.members: list[set[int]] = [set(g) for g in grids]
        for k, g in enumerate(grids):
            for u in g:
                self.grid_of[u] = k
        self.w = [sum(p.w[u] for u in g) for g in grids]
        self.a = [sum(p.area[u] for u in g) for g in grids]
        self.per = [p.outline(g) for g in self.members]
        self.extra = [shape(m) if shape else 0.0 for m in self.members]
        self._offered: list[None] = []  # a counter of splits offered, for ties
        self.touched: set[int] = set()

    def grids(self) -> list[list[int]]:
        return [sorted(m) for m in self.members]

    def cost(self) -> float:
        """The plan's cost: ``Σ (1 − Polsby-Popper)`` plus the cut cost between grids."""
        p = self.p
        cut = sum(
            p.ecost[e]
            for e, (a, b) in enumerate(zip(p.eu, p.ev, strict=True))
            if self.grid_of[a] != self.grid_of[b]
        )
        return sum(self.loss(a, per) for a, per in zip(self.a, self.per, strict=True)) + cut

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

    def _assign(self, g: int, units: set[int]) -> None:
        p = self.p
        self.members[g] = set(units)
        for u in units:
            self.grid_of[u] = g
        self.w[g] = sum(p.w[u] for u in units)
        self.a[g] = sum(p.area[u] for u in units)
        self.per[g] = p.outline(self.members[g])
        if self.shape is not None:
            self.extra[g] = self.shape(self.members[g])

    # --- repair ------------------------------------------------------------------------------

    def repair(self) -> None:
        """Pair re-splits of out-of-band grids until none is left or nothing helps."""
        self._rounds(lambda g: any(self.resplit(g, h, repair=True) for h in self.neighbours(g)))

    def chain_repair(self) -> None:
        """Pass surpluses and deficits along chains of grids (see the module docstring)."""
        self._rounds(self._chain)

    def _rounds(self, fix: Callable[[int], bool]) -> None:
        """Call ``fix`` on each grid still out of its band, round after round, until every
        grid is in band, a round changes nothing, or the budget's rounds are spent."""
        part = self.part
        for _ in range(part.budget.repair_rounds):
            bad = [g for g in range(len(self.members)) if part.deviation(self.w[g]) > 0]
            if not bad:
                return
            progress = False
            for g in bad:
                if part.deviation(self.w[g]) > 0 and fix(g):
                    progress = True
            if not progress:
                return

    def _chain(self, g: int) -> bool:
        part = self.part
        short = self.w[g] < part.lo
        prev = {g: -1}  # breadth-first over neighbouring grids to the nearest with room
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
            if len(targets) >= part.budget.chain_targets:
                break
        for t in targets:
            path = [t]
            while prev[path[-1]] != -1:
                path.append(prev[path[-1]])
            path.reverse()  # g … t
            saved = {x: set(self.members[x]) for x in path}
            before = sum(part.deviation(self.w[x]) for x in path)
            for cur, nxt in itertools.pairwise(path):
                if not self._push(cur, nxt) or part.deviation(self.w[nxt]) == 0:
                    break
            if sum(part.deviation(self.w[x]) for x in path) < before:
                self.touched |= set(path)
                return True
            for x, units in saved.items():
                self._assign(x, units)
        return False

    def _push(self, g: int, h: int) -> bool:
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
            size = subtree_sizes(order, parent)
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

    # --- improvement -------------------------------------------------------------------------

    def improve(self) -> None:
        """Pair re-splits and unit moves, in passes, while any of them lowers the cost."""
        self._passes(self.part.budget.rounds, moves=True)

    def _passes(self, rounds: int, *, moves: bool) -> None:
        """Re-split each pair of neighbouring grids of which one changed in the last pass
        (all in the first), then move single units if ``moves``; at most ``rounds`` passes,
        until one changes nothing."""
        dirty = set(range(len(self.members)))
        for _ in range(rounds):
            changed = False
            for g, h in self.pairs():
                if (g in dirty or h in dirty) and self.resplit(g, h, repair=False):
                    changed = True
            if moves:
                changed |= self.move_units()
            dirty, self.touched = self.touched, set()
            if not changed:
                return

    def resplit(self, g: int, h: int, *, repair: bool) -> bool:
        """Best split of two neighbouring grids over random trees; True if it was kept.

        Splits are ranked by households outside the band, then (``repair``) by how evenly the
        two grids hold them or (otherwise) by compactness plus cut cost. The outline of each
        side comes from the tree: ``P(S) = Σ_S (perimeter − edges inside the pair) + X(S)``,
        with ``X`` the length of edges crossing the cut, summed up the tree by the usual
        lowest-common-ancestor trick.
        """
        part, p = self.part, self.p
        lo, hi, mid = part.lo, part.hi, part.mid
        region = sorted(self.members[g] | self.members[h])
        inside = set(region)
        total_w = self.w[g] + self.w[h]
        dev_now = part.deviation(self.w[g]) + part.deviation(self.w[h])
        if repair:
            current = (float(dev_now), (self.w[g] - mid) ** 2 + (self.w[h] - mid) ** 2)
        else:
            current = (
                float(dev_now),
                self.loss(self.a[g], self.per[g])
                + self.loss(self.a[h], self.per[h])
                + self._cut_between(g, h),
            )
        q: dict[int, float] = {}
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
        shaped = self.shape is not None and not repair
        kept: list[tuple[float, float, int, list[int]]] = []  # the best few, worst on top
        cut_now = self._cut_between(g, h) if shaped else 0.0
        for _ in range(part.budget.shape_trees if shaped else part.budget.pair_trees):
            order, parent, _ = part.random_tree(region)
            if len(order) < len(region):
                return False  # no longer neighbours after an earlier change this round
            sw = {u: p.w[u] for u in order}
            lab_count = [{u: int(p.label[u] == lab) for u in order} for lab in labs]
            sa: dict[int, float] = {}
            sq: dict[int, float] = {}
            cross: dict[int, float] = {}
            ccost: dict[int, float] = {}
            if not repair:
                depth = depths(order, parent)
                sa = {u: p.area[u] for u in order}
                sq = dict(q)
                cross = dict.fromkeys(order, 0.0)
                ccost = dict.fromkeys(order, 0.0)
                for a in region:
                    for b, e in p.nbrs[a]:
                        if a < b and b in inside:
                            top = lca(a, b, parent, depth)
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
            size = subtree_sizes(order, parent)
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
                    if shaped:
                        if ccost[u] <= cut_now + _EPS:
                            self._offer(kept, key, order, i, size[u])
                        continue
                if best is None or key < best[0]:
                    best = (key, order[i : i + size[u]])
        if not repair:
            for side, key, cut in self._sweeps(region, inside, labs, current[0]):
                if shaped:
                    if cut <= cut_now + _EPS:
                        self._offer(kept, key, side, 0, len(side))
                elif best is None or key < best[0]:
                    best = (key, side)
        if shaped:
            best, current = self._reshaped(kept, inside, current, g, h)
        if best is None or not better(best[0], current):
            return False
        side1 = set(best[1])
        side2 = inside - side1
        # Keep grid numbers on the side they overlap most.
        if len(side1 & self.members[g]) < len(side1 & self.members[h]):
            side1, side2 = side2, side1
        self._assign(g, side1)
        self._assign(h, side2)
        self.touched |= {g, h}
        return True

    def _offer(
        self,
        top: list[tuple[float, float, int, list[int]]],
        key: tuple[float, float],
        order: list[int],
        i: int,
        size: int,
    ) -> None:
        """Keep ``order[i : i + size]`` among the ``Budget.shape_candidates`` best splits
        (a heap with the worst on top; ties go to the split offered first)."""
        entry = (-key[0], -key[1], -len(self._offered), order[i : i + size])
        self._offered.append(None)
        if len(top) < self.part.budget.shape_candidates:
            heapq.heappush(top, entry)
        elif entry[:3] > top[0][:3]:
            heapq.heapreplace(top, entry)

    def _reshaped(
        self,
        top: list[tuple[float, float, int, list[int]]],
        inside: set[int],
        current: tuple[float, float],
        g: int,
        h: int,
    ) -> tuple[tuple[tuple[float, float], list[int]] | None, tuple[float, float]]:
        """The best of the kept splits with the shape loss added, and the current split's
        key with it added."""
        assert self.shape is not None
        self._offered.clear()
        now = (current[0], current[1] + self.extra[g] + self.extra[h])
        best: tuple[tuple[float, float], list[int]] | None = None
        for neg0, neg1, _, side in sorted(top, reverse=True):
            rest = inside.difference(side)
            key = (-neg0, -neg1 + self.shape(side) + self.shape(rest))
            if best is None or key < best[0]:
                best = (key, side)
        return best, now

    def _sweeps(
        self, region: list[int], inside: set[int], labs: list[int], max_dev: float
    ) -> list[tuple[list[int], tuple[float, float], float]]:
        """Straight cuts across a pair of grids, at ``Budget.sweep_angles`` angles: units are
        ordered along a direction and every prefix whose two sides are connected and no
        further from the band than now is a candidate. Random trees rarely cut straight, and
        straight cuts make compact halves."""
        part, p = self.part, self.p
        lo, hi = part.lo, part.hi
        total_w = sum(p.w[u] for u in region)
        out: list[tuple[list[int], tuple[float, float], float]] = []
        n = part.budget.sweep_angles
        for k in range(n):
            theta = math.pi * k / n
            dx, dy = math.cos(theta), math.sin(theta)
            order = sorted(region, key=lambda u: (p.x[u] * dx + p.y[u] * dy, u))
            t1 = 0
            for i, u in enumerate(order[:-1]):
                t1 += p.w[u]
                t2 = total_w - t1
                dev = max(0, lo - t1, t1 - hi) + max(0, lo - t2, t2 - hi)
                if dev > max_dev:
                    continue
                side = order[: i + 1]
                cost = self._split_cost(side, inside, labs)
                if cost is not None:
                    out.append((side, (float(dev), cost[0] + cost[1]), cost[1]))
        return out

    def _split_cost(
        self, side: list[int], inside: set[int], labs: list[int]
    ) -> tuple[float, float] | None:
        """Compactness loss of both sides and the cut cost between them; None if a side is
        not connected or a locked label is split or doubled."""
        p = self.p
        mine = set(side)
        other = inside - mine
        if not (connected(mine, p.nbrs) and connected(other, p.nbrs)):
            return None
        if labs:
            la = {p.label[u] for u in mine if p.label[u] >= 0}
            lb = {p.label[u] for u in other if p.label[u] >= 0}
            if len(la) > 1 or len(lb) > 1 or la & lb:
                return None
        area1 = sum(p.area[u] for u in mine)
        area2 = sum(p.area[u] for u in other)
        per1 = sum(p.perim[u] for u in mine)
        per2 = sum(p.perim[u] for u in other)
        cut = 0.0
        for u in mine:
            for v, e in p.nbrs[u]:
                if v in mine:
                    per1 -= p.elen[e]
                elif v in other:
                    cut += p.ecost[e]
        for u in other:
            for v, e in p.nbrs[u]:
                if v in other:
                    per2 -= p.elen[e]
        return self.loss(area1, per1) + self.loss(area2, per2), cut

    def reshape(self) -> None:
        """Re-split every pair of neighbouring grids with the shape loss (module docstring),
        in passes while any split is kept, at most ``Budget.shape_rounds``."""
        self._passes(self.part.budget.shape_rounds, moves=False)

    def move_units(self) -> bool:
        """Move single boundary units to a neighbouring grid where that lowers the cost."""
        p, part = self.p, self.part
        moved = False
        for u in range(p.n):
            g = self.grid_of[u]
            if g < 0 or p.label[u] >= 0 or len(self.members[g]) == 1:
                continue
            dev_g = part.deviation(self.w[g] - p.w[u]) - part.deviation(self.w[g])
            if dev_g > 0:
                continue
            to_g, cost_g, other = ties(p, self.grid_of, u)
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
                if better(key, (0.0, 0.0)) and (best is None or key < best[0]):
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
            if self.shape is not None:
                self.extra[g] = self.shape(self.members[g])
                self.extra[h] = self.shape(self.members[h])
            self.touched |= {g, h}
            moved = True
        return moved

    def _connected_without(self, g: int, u: int) -> bool:
        return connected(self.members[g] - {u}, self.p.nbrs)


# --- tree helpers ----------------------------------------------------------------------------


def better(key: tuple[float, float], current: tuple[float, float]) -> bool:
    """Lexicographically lower by more than rounding noise."""
    if key[0] < current[0] - _EPS:
        return True
    return key[0] <= current[0] + _EPS and key[1] < current[1] - _EPS


def _labels_split_ok(lab_count: list[dict[int, int]], u: int, root: int) -> bool:
    """Each locked label wholly on one side of the cut, and each side holding at most one."""
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
