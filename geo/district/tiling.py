"""Make children tile their parent exactly before they are stored.

Grids are unions of units that were cut in a metric CRS and rounded to the millimetre; sent
back to WGS-84 their outer edges no longer sit exactly on the community's own vertices, which
leaves hair-thin gaps and overlaps that ``gridwork check`` rightly reports. Clipping every
child to the parent and handing each leftover crumb to the child it shares most boundary with
closes them without moving any internal boundary a planner drew.
"""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidGeometry


def _polygons(geom: BaseGeometry) -> list[BaseGeometry]:
    if geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def fit_to_parent(
    children: Sequence[BaseGeometry], parent: BaseGeometry, *, grid_size: float | None = None
) -> list[BaseGeometry]:
    """Each child clipped to ``parent``; gaps and detached crumbs join their best neighbour.

    The result covers ``parent`` exactly (up to ``grid_size``) with no overlaps. A child
    keeps its largest part; smaller parts, like gap pieces, go to the child whose boundary
    they share most of (the nearest child if they touch none). With ``grid_size`` (in a
    metric CRS, say 0.001 for a millimetre) every overlay snaps to that grid, so no output
    has vertices closer than it: valid here, and still valid after reprojection.
    """
    gs = grid_size
    if not children:
        raise InvalidGeometry("nothing to fit", field="children")
    main: list[BaseGeometry] = []
    crumbs: list[BaseGeometry] = []
    for child in children:
        parts = sorted(
            _polygons(shapely.intersection(child, parent, grid_size=gs)), key=lambda p: -p.area
        )
        if not parts:
            raise InvalidGeometry("a child lies wholly outside its parent", field="children")
        main.append(parts[0])
        crumbs += parts[1:]
    crumbs += _polygons(
        shapely.difference(parent, shapely.union_all(main, grid_size=gs), grid_size=gs)
    )
    for crumb in sorted(crumbs, key=lambda p: -p.area):
        shared = [shapely.length(shapely.intersection(m.boundary, crumb.boundary)) for m in main]
        best = max(range(len(main)), key=lambda i: (shared[i], -crumb.distance(main[i])))
        merged = shapely.union(main[best], crumb, grid_size=gs)
        parts = sorted(_polygons(merged), key=lambda p: -p.area)
        main[best] = parts[0] if len(parts) == 1 else shapely.union_all(parts, grid_size=gs)
    # Overlaps between children (if their inputs had any) go to the first claimant.
    for i in range(len(main)):
        for j in range(i + 1, len(main)):
            if main[i].intersects(main[j]) and main[i].intersection(main[j]).area > 0:
                main[j] = shapely.difference(main[j], main[i], grid_size=gs)
    return [shapely.normalize(shapely.make_valid(m)) for m in main]
