"""Large-neighbourhood search: a grid and its neighbours rebuilt from scratch, kept if better.

Why a pass of its own: the band is 30 households wide and units hold 20-30, so a finished
plan leaves the local moves of :mod:`~geo.planning.partition.improve` almost no room. Three
neighbouring grids re-split along random trees come back as the same three grids nearly every
time; a plan's shape is decided when it is built. Building a few grids again from nothing
(recursive bisection, repair, improvement: the search itself, on a region) escapes that.

The pass takes the grids in order of how badly they do (``1 − Polsby-Popper`` plus the shape
loss, ``2 (1 − Reock)``), and for each builds its region (the grid and up to
``Budget.rebuild_grids − 1`` neighbours, those sharing the longest boundary first) again
``Budget.rebuild_tries`` times. The build with the lowest cost is improved and replaces the
region if the region's households outside the band, then its cost, fall. The cost is the
search's (``Σ (1 − Polsby-Popper)`` plus the cut cost of every boundary the region touches)
plus the shape loss, so a rounder grid is never bought with more boundary off the roads than
it is worth. A region is rebuilt once as long as its grids stay as they are;
``Budget.rebuild_total`` builds in all bound the work, so a seed always gives the same plan.
Measured on the five oversized synthetic communities (seeds 1-3), 120 builds in regions of
up to 8 grids: mean Reock 0.462 → 0.482, Polsby-Popper 0.589 → 0.609, boundary on roads
1.5 points nearer the estimated most, for 0.6 s more per community (0.7 → 1.3 s).
"""

from __future__ import annotations

from geo.planning.partition.improve import PlanState, Shape, better
from geo.planning.partition.problem import Budget, Problem, contract
from geo.planning.partition.search import Partitioner, plan_score

_SEED_STEP = 101  # seeds of successive builds: seed, seed + 101, seed + 202 …


def rebuild_regions(
    problem: Problem,
    grids: list[list[int]],
    *,
    lo: int,
    hi: int,
    seed: int,
    budget: Budget,
    shape: Shape,
) -> list[list[int]]:
    """``grids`` (each connected) after regions of neighbouring grids are rebuilt (see the
    module doc); ``shape`` is the extra loss per grid. Units outside ``grids`` stay out.

    A plan of more than ``Budget.rebuild_max_grids`` grids, or of no more than a region holds
    (rebuilding it all is what the starts of the search did), is left as it is. A plan that
    keeps every block whole is rebuilt on whole blocks: units could only trade roads away.
    """
    p = problem
    plan = [sorted(g) for g in grids]
    if not budget.rebuild_grids < len(plan) <= budget.rebuild_max_grids:
        return plan
    nodes = _Nodes(p, plan, lo, hi, seed, budget, shape)
    left = budget.rebuild_total
    builds = 0
    tried: set[frozenset[frozenset[int]]] = set()
    while left > 0:
        state = PlanState(nodes.judge, plan, shape)
        worst = sorted(
            range(len(plan)),
            key=lambda g: (-state.loss(state.a[g], state.per[g]) - state.extra[g], g),
        )
        changed = False
        for g in worst:
            region = _region(state, g, budget.rebuild_grids)
            key = frozenset(frozenset(plan[k]) for k in region)
            if key in tried:
                continue
            tried.add(key)
            tries = min(left, budget.rebuild_tries)
            new = nodes.rebuild([plan[k] for k in region], seed + _SEED_STEP * builds, tries)
            builds += tries
            left -= tries
            if new is not None:
                plan = [q for k, q in enumerate(plan) if k not in set(region)] + new
                changed = True
                break
            if left <= 0:
                break
        if not changed:
            break
    return plan


def _region(state: PlanState, g: int, size: int) -> list[int]:
    """Grid ``g`` and up to ``size − 1`` neighbours, longest shared boundary first."""
    p = state.p
    shared: dict[int, float] = {}
    for u in state.members[g]:
        for v, e in p.nbrs[u]:
            h = state.grid_of[v]
            if h >= 0 and h != g:
                shared[h] = shared.get(h, 0.0) + p.elen[e]
    nearest = sorted(shared, key=lambda h: (-shared[h], h))[: size - 1]
    return sorted([g, *nearest])


class _Nodes:
    """What regions are built from: units, or whole blocks where the plan cuts none."""

    def __init__(
        self,
        p: Problem,
        plan: list[list[int]],
        lo: int,
        hi: int,
        seed: int,
        budget: Budget,
        shape: Shape,
    ) -> None:
        self.lo, self.hi, self.budget, self.shape = lo, hi, budget, shape
        self.judge = Partitioner(p, lo, hi, seed, budget)  # scores plans on units
        grid_of = [-1] * p.n
        for k, g in enumerate(plan):
            for u in g:
                grid_of[u] = k
        by_block: dict[int, list[int]] = {}
        for u in range(p.n):
            by_block.setdefault(p.block[u], []).append(u)
        cut = any(
            grid_of[a] != grid_of[b] and p.block[a] == p.block[b]
            for a, b in zip(p.eu, p.ev, strict=True)
        )
        self.groups: list[list[int]] = []
        for b in sorted(by_block):
            units = by_block[b]
            whole = not cut and all(
                grid_of[u] == grid_of[units[0]] >= 0 and p.label[u] < 0 for u in units
            )
            self.groups.extend([units] if whole else [[u] for u in units])
        self.p = p if len(self.groups) == p.n else contract(p, self.groups)
        self.node = [0] * p.n
        for k, group in enumerate(self.groups):
            for u in group:
                self.node[u] = k

    def _units(self, grids: list[list[int]]) -> list[list[int]]:
        return [sorted(u for k in g for u in self.groups[k]) for g in grids]

    def rebuild(self, old: list[list[int]], seed: int, tries: int) -> list[list[int]] | None:
        """The region's grids built anew and improved, if that beats ``old``; else None."""
        nodes = sorted({self.node[u] for g in old for u in g})
        best: tuple[tuple[int, float], Partitioner, list[list[int]]] | None = None
        for k in range(tries):
            part = Partitioner(self.p, self.lo, self.hi, seed + k, self.budget)
            built = part.repaired(part.solve(nodes), regions=False)
            score = plan_score(self.judge, self._units(built), self.shape)
            if _locks_hold(self.p, built) and (best is None or score < best[0]):
                best = (score, part, built)
        if best is None or {frozenset(g) for g in self._units(best[2])} == {
            frozenset(g) for g in old
        }:
            return None  # nothing new: the plan was improved as it is
        state = PlanState(best[1], best[2])
        state.improve()
        new = self._units(state.grids())
        now = plan_score(self.judge, new, self.shape)
        then = plan_score(self.judge, old, self.shape)
        if not _locks_hold(self.p, state.grids()) or not better(now, (float(then[0]), then[1])):
            return None
        return new


def _locks_hold(p: Problem, grids: list[list[int]]) -> bool:
    """Each grid holds at most one locked code, and each code lies in one grid."""
    seen: set[int] = set()
    for g in grids:
        labels = {p.label[u] for u in g if p.label[u] >= 0}
        if len(labels) > 1 or labels & seen:
            return False
        seen |= labels
    return True
