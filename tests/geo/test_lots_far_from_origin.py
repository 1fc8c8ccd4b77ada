"""Lots of blocks far from the origin, where GEOS's Voronoi and coverage union fail.

Two blocks of the generated megacity (UTM 45N, x ≈ 515,000 m), as the planner met them: with
every community of the city at a tenth of its size, the first draft failed on such a block
("CoverageUnion cannot process incorrectly noded inputs", "Overlay input is mixed-dimension").
The lots must still tile the block, one per footprint, around its footprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from geo.planning.units import _lots, _lots_by_outlines

BLOCKS = json.loads((Path(__file__).parent / "far_blocks.json").read_text())


@pytest.mark.parametrize("case", BLOCKS, ids=[b["error"].split(":")[0] for b in BLOCKS])
def test_a_block_far_from_the_origin_gets_its_lots(case: dict[str, Any]) -> None:
    block = shapely.from_wkt(case["block"])
    footprints = np.asarray([shapely.from_wkt(f) for f in case["footprints"]], dtype=object)
    with pytest.raises(shapely.errors.GEOSException):  # where it stands, GEOS gives up
        _lots_by_outlines(block, footprints)

    lots = _lots(block, footprints)

    assert len(lots) == len(footprints)
    assert all(shapely.is_valid(lot) and not lot.is_empty for lot in lots)
    assert sum(lot.area for lot in lots) == pytest.approx(block.area, rel=1e-9)
    assert shapely.union_all(lots).symmetric_difference(block).area < 1e-3  # no gap, no overlap
    for lot, footprint in zip(lots, footprints, strict=True):  # each lot holds its building
        in_block = shapely.intersection(footprint, block).area  # some stand over the road
        assert shapely.intersection(lot, footprint).area == pytest.approx(in_block, rel=1e-6)
