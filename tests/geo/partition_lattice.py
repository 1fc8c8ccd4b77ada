"""Hand-drawn partition problems for the search's tests: square cells on a lattice.

Cells are ``SIDE`` metres square, numbered row by row from the bottom left
(``unit = row * cols + col``), one household each unless told; neighbours share an edge.
Every cell is a block of its own unless ``block`` says otherwise; edges between blocks are
roads (free to cut), edges inside a block are lot lines (5 per mille of the cut cost per
metre, as the splitter prices them).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.planning.partition.problem import LOT, ROAD, Problem
from geo.planning.partition.roundness import unit_hulls

SIDE = 10.0
OFFROAD_COST = 0.005 * SIDE


def lattice_problem(
    cols: int,
    rows: int,
    *,
    block: list[int] | None = None,
    label: list[int] | None = None,
    households: list[int] | None = None,
) -> tuple[Problem, list[NDArray[np.float64]]]:
    """The problem and each cell's convex hull vertices (for the Reock loss)."""
    cells = [(c, r) for r in range(rows) for c in range(cols)]
    n = len(cells)
    blocks = block or list(range(n))
    eu, ev = [], []
    for r in range(rows):
        for c in range(cols):
            u = r * cols + c
            for v, ok in ((u + 1, c + 1 < cols), (u + cols, r + 1 < rows)):
                if ok:
                    eu.append(u)
                    ev.append(v)
    kind = [ROAD if blocks[a] != blocks[b] else LOT for a, b in zip(eu, ev, strict=True)]
    problem = Problem(
        w=households or [1] * n,
        area=[SIDE * SIDE] * n,
        perim=[4 * SIDE] * n,
        eu=eu,
        ev=ev,
        elen=[SIDE] * len(eu),
        ecost=[0.0 if k == ROAD else OFFROAD_COST for k in kind],
        ekind=kind,
        label=label or [-1] * n,
        block=blocks,
        x=[(c + 0.5) * SIDE for c, _ in cells],
        y=[(r + 0.5) * SIDE for _, r in cells],
    )
    boxes = np.array(
        [shapely.box(c * SIDE, r * SIDE, (c + 1) * SIDE, (r + 1) * SIDE) for c, r in cells]
    )
    return problem, unit_hulls(boxes)
