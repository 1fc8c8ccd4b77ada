"""Rebuilding regions of a plan (geo.planning.partition.rebuild) on a hand-drawn lattice of
10 m cells, one household each, band 4-4 (every grid exactly four cells)::

    row 5:  F F F F          E E F F
    row 4:  E E E E          E E F F
    row 3:  D D D D    ->    C C D D
    row 2:  C C C C          C C D D
    row 1:  B B B B          A A B B
    row 0:  A A A A          A A B B

Six strips are a valid plan that no single move or pair re-split can round off without
leaving the band: two strips re-split come back as two strips or two squares side by side
(the same outline). Three strips rebuilt from nothing can come back as squares.
"""

from __future__ import annotations

from geo.planning.partition.problem import Budget, connected
from geo.planning.partition.rebuild import rebuild_regions
from geo.planning.partition.roundness import reock_loss
from geo.planning.partition.search import Partitioner, plan_score
from tests.geo.partition_lattice import lattice_problem

COLS, ROWS = 4, 6
STRIPS = [[r * COLS + c for c in range(COLS)] for r in range(ROWS)]
SQUARES = [
    [r * COLS + c for r in (2 * i, 2 * i + 1) for c in (2 * j, 2 * j + 1)]
    for i in range(ROWS // 2)
    for j in range(COLS // 2)
]
BUDGET = Budget(rebuild_grids=3)  # regions of three grids in a plan of six


def _rebuild(
    grids: list[list[int]], *, block: list[int] | None = None, label: list[int] | None = None
) -> tuple[list[list[int]], tuple[int, float], tuple[int, float]]:
    """The plan rebuilt, and its score before and after."""
    problem, hulls = lattice_problem(COLS, ROWS, block=block, label=label)
    shape = reock_loss(problem, hulls)
    got = rebuild_regions(problem, grids, lo=4, hi=4, seed=1, budget=BUDGET, shape=shape)
    judge = Partitioner(problem, 4, 4, 1, BUDGET)
    for g in got:
        assert len(g) == 4
        assert connected(g, problem.nbrs)
    assert sorted(u for g in got for u in g) == list(range(COLS * ROWS))
    return got, plan_score(judge, grids, shape), plan_score(judge, got, shape)


def test_strips_are_rebuilt_into_squares() -> None:
    got, before, after = _rebuild(STRIPS)
    assert after < before
    assert sorted(map(sorted, got)) == sorted(SQUARES)


def test_a_plan_nothing_beats_is_kept() -> None:
    got, before, after = _rebuild(SQUARES)
    assert sorted(map(sorted, got)) == sorted(SQUARES)
    assert after == before


# A plan on whole blocks: 6 × 6 cells, each block a domino of two cells side by side,
# households as drawn, band 8-10. Grids F and G are strips; built again on cells, they come
# back rounder by cutting dominoes in two (as the search does where it must open blocks).
#
#     households         grids
#     3 3 1 2 2 3        E E D D C C
#     3 1 4 3 2 3        E E D D C C
#     4 1 2 3 4 1        F F F F B B
#     1 1 2 4 3 1        G G G G B B
#     4 2 1 4 1 2        I I H H A A
#     3 1 2 3 1 4        I I H H A A

DOMINO_HOUSEHOLDS = [3, 1, 2, 3, 1, 4, 4, 2, 1, 4, 1, 2, 1, 1, 2, 4, 3, 1]
DOMINO_HOUSEHOLDS += [4, 1, 2, 3, 4, 1, 3, 1, 4, 3, 2, 3, 3, 3, 1, 2, 2, 3]
DOMINO_PLAN = [
    [4, 5, 10, 11],
    [16, 17, 22, 23],
    [28, 29, 34, 35],
    [26, 27, 32, 33],
    [24, 25, 30, 31],
    [18, 19, 20, 21],
    [12, 13, 14, 15],
    [2, 3, 8, 9],
    [0, 1, 6, 7],
]


def test_a_plan_on_roads_everywhere_stays_on_roads() -> None:
    side = 6
    dominoes = [r * side // 2 + c // 2 for r in range(side) for c in range(side)]
    problem, hulls = lattice_problem(side, side, block=dominoes, households=DOMINO_HOUSEHOLDS)
    got = rebuild_regions(
        problem, DOMINO_PLAN, lo=8, hi=10, seed=1, budget=BUDGET, shape=reock_loss(problem, hulls)
    )
    grid_of = {u: k for k, g in enumerate(got) for u in g}
    for a, b in zip(problem.eu, problem.ev, strict=True):
        assert problem.block[a] != problem.block[b] or grid_of[a] == grid_of[b], (a, b)


def test_locks_hold() -> None:
    """Cells 0 and 5 are locked to different grids; the square A would join them."""
    label = [-1] * (COLS * ROWS)
    label[0], label[5] = 0, 1
    got, before, after = _rebuild(STRIPS, label=label)
    assert after < before
    assert all(not {0, 5} <= set(g) for g in got)


def test_the_same_seed_gives_the_same_plan() -> None:
    assert _rebuild(STRIPS)[0] == _rebuild(STRIPS)[0]
