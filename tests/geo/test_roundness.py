"""The last pass for Reock (geo.planning.partition.roundness) on a hand-drawn lattice of
10 m squares, one household each, band 3-5::

    row 1:  A A B B          A A B B
    row 0:  A A A B   ->     A A B B

The unit sticking out of A's square makes both grids longer than they need be; moving it
to B gives two squares (rounder by Polsby-Popper and Reock, one cut edge fewer).
"""

from __future__ import annotations

import numpy as np

from geo.planning.partition.problem import Budget, Problem
from geo.planning.partition.roundness import polish_reock, reshape_pairs
from tests.geo.partition_lattice import lattice_problem

COLS, ROWS = 4, 2


def _lattice(label: list[int] | None = None) -> tuple[Problem, list[np.ndarray]]:
    """The 4 × 2 lattice as one block (every edge a lot line)."""
    return lattice_problem(COLS, ROWS, block=[0] * COLS * ROWS, label=label)


A = [0, 1, 2, 4, 5]  # row 0: columns 0-2; row 1: columns 0-1
B = [3, 6, 7]


def test_the_unit_sticking_out_moves_and_both_grids_become_squares() -> None:
    problem, hulls = _lattice()
    assert polish_reock(problem, [A, B], hulls, lo=3, hi=5) == [[0, 1, 4, 5], [2, 3, 6, 7]]


def test_never_out_of_the_band_and_never_a_locked_unit() -> None:
    problem, hulls = _lattice()
    # B may not grow past 3: the move would break the band, so nothing moves.
    assert polish_reock(problem, [A, B], hulls, lo=3, hi=3) == [A, B]
    # The unit that would move is locked to its grid.
    locked, hulls = _lattice(label=[-1, -1, 0, -1, -1, -1, -1, -1])
    assert polish_reock(locked, [A, B], hulls, lo=3, hi=5) == [A, B]


# --- pair re-splits with Reock (reshape_pairs) ------------------------------------------------
#
#     row 1:  B B B B          A A B B
#     row 0:  A A A A   ->     A A B B
#
# Two strips of four, band 4-4: no single unit can move (both grids are full), but cutting the
# pair anew gives two squares (Reock 0.30 -> 0.64 each).

STRIP_A = [0, 1, 2, 3]
STRIP_B = [4, 5, 6, 7]


def test_full_grids_are_cut_anew_into_rounder_ones() -> None:
    problem, hulls = lattice_problem(COLS, ROWS)  # every unit a block of its own
    assert polish_reock(problem, [STRIP_A, STRIP_B], hulls, lo=4, hi=4) == [STRIP_A, STRIP_B]
    got = reshape_pairs(problem, [STRIP_A, STRIP_B], hulls, lo=4, hi=4, seed=1, budget=Budget())
    assert sorted(got) == [[0, 1, 4, 5], [2, 3, 6, 7]]


def test_no_new_cut_through_a_block_and_no_lock_broken() -> None:
    rows, hulls = lattice_problem(COLS, ROWS, block=[0] * COLS + [1] * COLS)  # a strip a block
    got = reshape_pairs(rows, [STRIP_A, STRIP_B], hulls, lo=4, hi=4, seed=1, budget=Budget())
    assert got == [STRIP_A, STRIP_B]
    # Units 0 and 4 are locked to different grids: the squares would join them.
    locked, hulls = lattice_problem(COLS, ROWS, label=[0, -1, -1, -1, 1, -1, -1, -1])
    got = reshape_pairs(locked, [STRIP_A, STRIP_B], hulls, lo=4, hi=4, seed=1, budget=Budget())
    assert all(not {0, 4} <= set(g) for g in got)
    assert sorted(len(g) for g in got) == [4, 4]
