"""What the starts of the search share and how drafts are finished
(geo.planning.partition.search, .exact), on hand-drawn lattices of blocks.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import cache

import numpy as np

from geo.planning.partition.problem import Budget, Problem, connected
from geo.planning.partition.search import Partitioner, plan_score, split_units
from tests.geo.partition_lattice import lattice_problem

# 4 × 3 blocks, households as drawn (row 0 at the bottom), band 150-180: 655 households make
# four grids, but many pieces of the lattice cannot be divided into grids at all.
#
#     34 67 80 51
#     79 51 26 40
#     52 65 87 23
HOUSEHOLDS = [52, 65, 87, 23, 79, 51, 26, 40, 34, 67, 80, 51]
LO, HI = 150, 180


def _divisible(problem: Problem, piece: frozenset[int]) -> bool:
    """Brute force: whether ``piece`` splits into connected grids of LO-HI households."""

    @cache
    def ok(rest: frozenset[int]) -> bool:
        if not rest:
            return True
        first = min(rest)
        others = sorted(rest - {first})
        for mask in range(1 << len(others)):
            grid = {first} | {u for k, u in enumerate(others) if mask >> k & 1}
            total = sum(problem.w[u] for u in grid)
            if LO <= total <= HI and connected(grid, problem.nbrs):
                left = rest - grid
                parts = problem.components(set(left))
                if all(ok(frozenset(part)) for part in parts):
                    return True
        return False

    return ok(piece)


def test_starts_share_only_what_is_proven_impossible() -> None:
    problem, _ = lattice_problem(4, 3, households=HOUSEHOLDS)
    everything = list(range(problem.n))
    dead: set[frozenset[int]] = set()
    first = Partitioner(problem, LO, HI, 1, Budget(), dead)
    steps = 10_000
    plan = first.exact.within(everything, sum(HOUSEHOLDS), steps)
    first_steps = steps - first.exact.left
    assert isinstance(plan, list)
    assert dead
    for piece in dead:
        assert not _divisible(problem, piece), sorted(piece)
    second = Partitioner(problem, LO, HI, 2, Budget(), dead)
    plan = second.exact.within(everything, sum(HOUSEHOLDS), steps)
    assert isinstance(plan, list)
    assert all(LO <= sum(problem.w[u] for u in g) <= HI for g in plan)
    assert steps - second.exact.left < first_steps


def test_finishing_more_drafts_never_gives_a_worse_plan() -> None:
    """Drafts are ranked before improvement and only the best few improved: improving more
    of them can only find a better plan (the best of a larger set)."""
    rng = np.random.default_rng(2)
    households = rng.integers(10, 45, size=48).tolist()
    problem, _ = lattice_problem(8, 6, households=households)
    budget = Budget(starts=6, start_grids=1)
    judge = Partitioner(problem, LO, HI, 1, budget)
    scores = []
    for finish in range(1, 7):
        grids = split_units(
            problem, [list(range(problem.n))], LO, HI, 1, replace(budget, finish=finish)
        )
        assert all(connected(g, problem.nbrs) for g in grids)
        scores.append(plan_score(judge, grids))
    assert all(b <= a for a, b in itertools.pairwise(scores))
    assert scores[0][0] == 0  # every grid in the band
