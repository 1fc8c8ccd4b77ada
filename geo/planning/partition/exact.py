"""Exhaustive search for a plan with every grid in the band, for :mod:`.search`.

Used where random trees fail: on whole blocks (a block of 136 households fits in a grid only
with the few small blocks around it, a subset-sum problem with connectivity) and on small
rings of grids being repaired.

The search carves one grid at a time. It picks the *most constrained* heavy unit (half a grid
or more): the one that fits in the fewest candidate grids, ties going to the unit farthest
from the piece's centre, so the plan grows from the edge inwards. It then tries every
connected set holding that unit whose households lie in the band, nearest units first (so the
first ones are compact), and keeps one whose remainder falls into connected parts that can
each be divided into grids. A carve that leaves a heavy unit no possible grid is dropped at
once; proven dead ends are remembered.

Such searches are heavy-tailed: a poor early choice can cost exponential time. So
:meth:`ExactSearch.solve` runs in restarts (Luby's sequence of step budgets, random
tie-breaks), which keeps the expected cost low. On the 10,000-household case one restart of
about 10,000 steps usually suffices.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from geo.planning.partition.band import Search


class OutOfBudget(Exception):
    """The search took more steps than its budget."""


class ExactSearch:
    """Exhaustive search over one partitioner's problem; remembers proven results."""

    def __init__(self, part: Search, dead: set[frozenset[int]] | None = None) -> None:
        self.part = part
        self.p = part.p
        self.memo: dict[frozenset[int], list[list[int]] | None] = {}
        self.dead = set() if dead is None else dead
        """Pieces proven impossible to divide into grids: a fact about the problem, not about
        this search, so other searches of the same problem (other starts) may share it. On
        the 10,000 households it cuts a start's exhaustive search from ~45,000 steps to
        ~5,000."""
        self.left = 0
        self._ready_total = _always_divisible(part.lo, part.hi)

    def solve(self, piece: list[int]) -> list[list[int]] | None:
        """A plan of the connected piece with every grid in the band, or None (none exists,
        or none was found within ``Budget.exact_total`` units of steps)."""
        part = self.part
        b = part.budget
        total = sum(self.p.w[u] for u in piece)
        unit = b.exact_per_grid * max(1, round(total / part.mid))
        spent = 0
        for k in range(1, b.exact_total + 1):
            steps = unit * _luby(k)
            if spent + steps > unit * b.exact_total:
                break
            spent += steps
            found = self.within(piece, total, steps)
            if found is not False:
                return found
        return None

    def within(
        self, piece: list[int], total: int, steps: int
    ) -> list[list[int]] | Literal[False] | None:
        """One run of at most ``steps`` steps: a plan, None (proven impossible) or False
        (out of steps)."""
        self.left = steps
        try:
            return self._carve(piece, total)
        except OutOfBudget:
            return False

    def _carve(
        self, piece: list[int], total: int, counts: dict[int, int] | None = None
    ) -> list[list[int]] | None:
        key = frozenset(piece)
        if key in self.memo:
            return self.memo[key]
        if key in self.dead:
            return None
        p, part = self.p, self.part
        labels = {p.label[u] for u in piece if p.label[u] >= 0}
        if part.lo <= total <= part.hi and len(labels) <= 1:
            return [piece]
        if len(piece) == 1 or not part.divisible(total):
            return None
        inside = set(piece)
        if counts is None:
            heavy = part.lo * part.budget.heavy_share
            counts = {u: self._count(u, inside) for u in piece if p.w[u] >= heavy}
        if counts and min(counts.values()) == 0:
            self.memo[key] = None
            self.dead.add(key)
            return None
        result: list[list[int]] | None = None
        for grid in self._grids_holding(self._anchor(piece, counts), inside):
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
            for nodes, weight in parts:
                members = rest if nodes is None else set(nodes)
                sub = self._carve(
                    sorted(rest) if nodes is None else nodes,
                    weight,
                    {u: n for u, n in left.items() if u in members},
                )
                if sub is None:
                    break
                found += sub
            else:
                result = found
                break
        self.memo[key] = result
        if result is None:
            self.dead.add(key)
        return result

    def _anchor(self, piece: list[int], counts: dict[int, int]) -> int:
        """The heavy unit with the fewest possible grids; ties to the most outlying (with a
        random factor, so that restarts differ); the most outlying unit if none is heavy."""
        p = self.p
        cx = sum(p.x[u] for u in piece) / len(piece)
        cy = sum(p.y[u] for u in piece) / len(piece)
        if not counts:
            return max(sorted(piece), key=lambda u: (p.x[u] - cx) ** 2 + (p.y[u] - cy) ** 2)
        fewest = min(counts.values())
        tied = sorted(u for u, c in counts.items() if c == fewest)
        rnd = self.part.rng.random
        return max(
            tied, key=lambda u: ((p.x[u] - cx) ** 2 + (p.y[u] - cy) ** 2) * (0.7 + 0.6 * rnd())
        )

    def _count(self, u: int, allowed: set[int]) -> int:
        """Grids that could hold ``u`` within ``allowed``, counted up to ``Budget.mrv_cap``."""
        cap = self.part.budget.mrv_cap
        count = 0
        for _ in self._grids_holding(u, allowed):
            count += 1
            if count >= cap:
                break
        return count

    def _near(self, grid: set[int], rest: set[int], heavy: dict[int, int]) -> list[int]:
        """Heavy units a few steps from a carved grid: the ones whose options it took."""
        p = self.p
        ring = {v for u in grid for v, _ in p.nbrs[u] if v in rest}
        edge = set(ring)
        for _ in range(self.part.budget.mrv_hops - 1):
            edge = {x for v in edge for x, _ in p.nbrs[v] if x in rest and x not in ring}
            ring |= edge
        return sorted(u for u in ring if u in heavy)

    def _parts_after(
        self, rest: set[int], grid: set[int], weight_rest: int
    ) -> list[tuple[list[int] | None, int]] | None:
        """The connected parts left after carving ``grid``, with their households (``None``
        for nodes means all of ``rest``); None if a part cannot be divided into grids.

        Usually the rest stays in one piece, which a search among the grid's neighbours shows
        cheaply. Otherwise small pockets are checked first (the usual reason to reject a
        carve), then parts are explored from the grid's edge only until they are big enough
        to be divisible whatever their total.
        """
        p, part = self.p, self.part
        if not rest:
            return []
        starts = sorted({v for u in grid for v, _ in p.nbrs[u] if v in rest})
        if self._joined(starts, rest):
            return [(None, weight_rest)] if part.divisible(weight_rest) else None
        if self._small_pocket(starts, rest):
            return None
        owner: dict[int, int] = {}  # unit → the exploration that reached it first
        small: list[tuple[list[int] | None, int]] = []
        big = 0
        for idx, s0 in enumerate(starts):
            if s0 in owner:
                continue
            comp = [s0]
            owner[s0] = idx
            weight = p.w[s0]
            k = 0
            joined = False  # ran into an earlier, unfinished (big) exploration
            while k < len(comp) and weight <= self._ready_total and not joined:
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
            if not part.divisible(weight):
                return None
            small.append((sorted(comp), weight))
        if big == 0:
            return small
        if big == 1:
            taken = {u for nodes, _ in small if nodes is not None for u in nodes}
            other = sorted(rest - taken)
            return [*small, (other, sum(p.w[u] for u in other))]
        pieces = p.components(rest)
        sums = [sum(p.w[u] for u in c) for c in pieces]
        if not all(part.divisible(t) for t in sums):
            return None
        return list(zip(pieces, sums, strict=True))

    def _small_pocket(self, starts: list[int], rest: set[int]) -> bool:
        """Whether carving cut off a pocket of a few units that no number of grids fits."""
        p = self.p
        limit = self.part.budget.pocket_units
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
                if not self.part.divisible(sum(p.w[u] for u in comp)):
                    return True
        return False

    def _joined(self, starts: list[int], rest: set[int]) -> bool:
        """Whether the grid's neighbours reach each other through units next to them: then
        the rest is still one piece. False is inconclusive."""
        if len(starts) <= 1:
            return True
        p = self.p
        band = set(starts)
        for u in starts:
            for v, _ in p.nbrs[u]:
                if v in rest:
                    band.add(v)
        want = len(starts) - 1
        targets = set(starts)
        seen = {starts[0]}
        stack = [starts[0]]
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

    def _grids_holding(self, anchor: int, inside: set[int]) -> Iterator[set[int]]:
        """Every connected set holding ``anchor`` whose households lie in the band, once each.

        Classic enumeration of connected subgraphs: a set grows by one frontier unit at a
        time, nearest first; a unit skipped at one level is banned below it, so no set is
        produced twice. Every step counts against the budget.
        """
        p = self.p
        lo, hi = self.part.lo, self.part.hi
        x0, y0 = p.x[anchor], p.y[anchor]

        def far(v: int) -> float:
            return -((p.x[v] - x0) ** 2 + (p.y[v] - y0) ** 2)

        chosen = {anchor}

        def grow(weight: int, frontier: list[int], banned: set[int]) -> Iterator[set[int]]:
            self.left -= 1
            if self.left < 0:
                raise OutOfBudget
            if weight >= lo:
                yield set(chosen)
            frontier = sorted(frontier, key=far)  # nearest last, popped first
            banned = set(banned)
            while frontier:
                v = frontier.pop()
                banned.add(v)
                if weight + p.w[v] > hi:
                    continue
                listed = set(frontier)
                new = [
                    x
                    for x, _ in p.nbrs[v]
                    if x in inside and x not in chosen and x not in banned and x not in listed
                ]
                chosen.add(v)
                yield from grow(weight + p.w[v], frontier + new, banned)
                chosen.discard(v)

        start = sorted({x for x, _ in p.nbrs[anchor] if x in inside})
        yield from grow(p.w[anchor], start, {anchor})


def _luby(i: int) -> int:
    """The i-th term (from 1) of Luby's restart sequence 1 1 2 1 1 2 4 1 1 2 …"""
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
    """A total from which every total divides into grids (750 for 150-180): the bands of
    ``k`` and ``k + 1`` grids overlap once ``(k + 1)·lo ≤ k·hi + 1``."""
    if hi <= lo:
        return 10**12
    return max(1, -(-(lo - 1) // (hi - lo))) * lo
