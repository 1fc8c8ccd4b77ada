"""The grid vector tiles drawn from the outlines the store keeps in Web Mercator (0024).

tipg draws a tile of ``ogc.grids`` by projecting every vertex of every grid to Web Mercator
and clipping it to the tile: at a tenth of the megacity a z10 tile holds ~2,900 grids and
~165,000 vertices, ~100 ms the first time it is asked for after a change (docs/scale.md).
Migration 0024 keeps each current grid's outline in EPSG:3857 already, whole and simplified
to half a tile unit per zoom band (``grid_tile_shape``). :class:`GridTiles` is tipg's own
collection with one change: the geometry a tile is made of is read from that table, in the
band of the tile's zoom. Everything else is tipg's query: the same view, the same WHERE
(which grids a tile holds is still decided on ``grid.geom``), the same properties, order,
limit and layer name, and every tipg parameter (filters, ``properties``, ``simplify``…) works
as before. The shape is read by primary key per grid, not joined, because tipg writes the
FROM clause; a grid with no stored shape would be left out of the tile (the triggers of 0024
give every current grid one; carrying ``grid.geom`` along as a fallback cost ~2 ms at z10).
"""

from __future__ import annotations

from typing import Any

from morecantile import Tile, TileMatrixSet
from tipg.collections import Collection, Column, PgCollection
from tipg.settings import MVTSettings

COLLECTION = "ogc.grids"
SHAPES = "public.grid_tile_shape"
WEB_MERCATOR = 3857
BANDS = ((14, "exact"), (12, "z12"), (10, "z10"), (0, "z8"))
"""(lowest zoom, column of ``grid_tile_shape``): the simplified outline each zoom is drawn
from (migration 0024: half a tile unit of the band's lowest zoom)."""

_MVT = MVTSettings()


def band(zoom: int) -> str:
    """The ``grid_tile_shape`` column a tile at ``zoom`` is drawn from."""
    return next(column for lowest, column in BANDS if zoom >= lowest)


class GridTiles(PgCollection):
    """``ogc.grids`` as tipg serves it, its tiles drawn from the stored Web Mercator shapes."""

    def _select_mvt(
        self,
        properties: list[str] | None,
        geometry_column: Column,
        tms: TileMatrixSet,
        tile: Tile,
        simplify: float | None = None,
    ) -> str:
        if (
            tms.crs.to_epsg() != WEB_MERCATOR
            or not tms.is_valid(tile, strict=False)
            or geometry_column.name != "geom"
            or self.id_column is None
        ):
            return str(super()._select_mvt(properties, geometry_column, tms, tile, simplify))
        # The view's id, qualified: the subquery's table has columns too.
        ident = f'{self._qualified_name}."{self.id_column.name}"'
        geom = f"(SELECT s.{band(tile.z)} FROM {SHAPES} s WHERE s.grid_id = {ident})"  # noqa: S608 - names of ours and tipg's catalog
        if simplify:
            geom = f"ST_SnapToGrid(ST_SimplifyPreserveTopology({geom}, {simplify}), {simplify})"
        bbox = tms.xy_bounds(tile)
        envelope = f"ST_MakeEnvelope({bbox.left}, {bbox.bottom}, {bbox.right}, {bbox.top})"
        clip = "TRUE" if _MVT.tile_clip else "FALSE"
        mvt = int(_MVT.tile_resolution), int(_MVT.tile_buffer)
        columns = [
            *self._select_property_columns(properties),
            f"ST_AsMVTGeom({geom}, {envelope}, {mvt[0]}, {mvt[1]}, {clip}) AS geom",
        ]
        return "SELECT " + ", ".join(columns)


def with_stored_shapes(collection: Collection) -> Collection:
    """``collection`` as :class:`GridTiles` if it is ``ogc.grids``, else unchanged."""
    if collection.id != COLLECTION or not isinstance(collection, PgCollection):
        return collection
    values: dict[str, Any] = dict(collection.__dict__)
    return GridTiles.model_construct(_fields_set=collection.model_fields_set, **values)
