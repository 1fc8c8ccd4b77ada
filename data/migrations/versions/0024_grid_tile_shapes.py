"""grid outlines kept in Web Mercator, simplified per zoom band, for the grid vector tiles

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 21:30:00.000000

A vector tile of ``ogc.grids`` is drawn in Web Mercator (EPSG:3857), and tipg made every one
of them from the stored WGS-84 outline: ``ST_Transform`` of every vertex, then
``ST_AsMVTGeom`` clipping and snapping them to the tile's 4096 units. At a tenth of the
megacity a z10 tile holds ~2,900 grids and ~165,000 vertices, and that was ~60 of its ~80 ms
in PostgreSQL (``EXPLAIN ANALYZE``; docs/scale.md), for detail a z10 tile cannot show: one
tile unit there is 9.6 m.

``grid_tile_shape`` keeps, per current grid (``valid_to IS NULL``), its outline already in
Web Mercator (``exact``) and simplified to half a tile unit of the lowest zoom of each band
(``z8``: 19.1 m, for z ≤ 9; ``z10``: 4.8 m, z10–11; ``z12``: 1.2 m, z12–13; ``exact`` from
z14); half a unit is below what ``ST_AsMVTGeom``'s rounding to whole units moves a vertex
anyway. ``ST_SimplifyPreserveTopology`` keeps every outline a valid polygon (it never
collapses one), but each grid is simplified alone, so two neighbours' shared edge may differ
by that half unit. :mod:`api.grid_tiles` draws the tiles from it; which grids a tile holds is
still decided on ``grid.geom`` as before.

Statement-level triggers with transition tables on ``grid`` keep it, in the writing
transaction (so a standby sees the shapes with the grids): an ``INSERT`` adds the new current
grids; an ``UPDATE`` redraws those whose outline changed or that became current again, and
drops those given a ``valid_to`` (a plan's publish retires old grids that way); a grid
deleted takes its row with it (``ON DELETE CASCADE``). Every write to ``grid`` already renews
``grids_version`` (0003), under which the grid tiles are cached (``api.tile_cache``), so no
version of its own is needed. Outlines reaching past Web Mercator's ±85.05° are cut to it
first (``ST_Transform`` cannot project a pole), so no grid write fails for its tile shape.

The function runs with its owner's rights (``SECURITY DEFINER``, fixed ``search_path``): the
app's role reads the shapes and cannot write them.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNIT_Z0 = 40075016.685578488 / 4096  # metres of one tile unit at zoom 0 (equator)
BANDS = {"z8": 8, "z10": 10, "z12": 12}
"""Simplified column → the zoom whose half tile unit is its tolerance."""

_MERCATOR = (
    "ST_Transform(CASE WHEN ST_YMin({g}) >= -85.0511287798 AND ST_YMax({g}) <= 85.0511287798 "
    "THEN {g} ELSE ST_Intersection({g}, "
    "ST_MakeEnvelope(-180, -85.0511287798, 180, 85.0511287798, 4326)) END, 3857)"
)

_COLUMNS = ", ".join([*BANDS, "exact"])
_VALUES = ", ".join(
    [
        *(
            f"ST_SimplifyPreserveTopology(m.g, {_UNIT_Z0 / 2**zoom / 2:.4f})"
            for zoom in BANDS.values()
        ),
        "m.g",
    ]
)
# Made of the fixed names and numbers above.
_UPSERT = (
    f"INSERT INTO public.grid_tile_shape (grid_id, {_COLUMNS}) "  # noqa: S608
    f"SELECT n.id, {_VALUES} FROM {{rows}} "
    f"CROSS JOIN LATERAL (SELECT {_MERCATOR.format(g='n.geom')} AS g) m "
    "WHERE {where} ORDER BY n.id "
    "ON CONFLICT (grid_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*BANDS, "exact"])
)


def upgrade() -> None:
    columns = ",\n            ".join(f"{c} geometry(Geometry, 3857) NOT NULL" for c in BANDS)
    op.execute(
        f"""
        CREATE TABLE grid_tile_shape (
            grid_id integer PRIMARY KEY REFERENCES grid (id) ON DELETE CASCADE,
            {columns},
            exact geometry(Geometry, 3857) NOT NULL
        );
        COMMENT ON TABLE grid_tile_shape IS
            'Current grids'' outlines in EPSG:3857, simplified per zoom band for the vector '
            'tiles; kept by triggers on grid (migration 0024).';
        """
    )
    insert = _UPSERT.format(rows="new_rows n", where="n.valid_to IS NULL")
    redraw = _UPSERT.format(
        rows="new_rows n LEFT JOIN old_rows o ON o.id = n.id",
        where="n.valid_to IS NULL AND (o.id IS NULL OR o.valid_to IS NOT NULL "
        "OR NOT ST_OrderingEquals(o.geom, n.geom))",
    )
    op.execute(
        f"""
        CREATE FUNCTION keep_grid_tile_shapes() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {insert};
            ELSE
                DELETE FROM public.grid_tile_shape s USING new_rows n
                    WHERE s.grid_id = n.id AND n.valid_to IS NOT NULL;
                {redraw};
            END IF;
            RETURN NULL;
        END $$;
        """  # noqa: S608 - the body is made of the fixed statements above
    )
    op.execute("REVOKE ALL ON FUNCTION keep_grid_tile_shapes() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER grid_tile_shape_insert AFTER INSERT ON grid "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION keep_grid_tile_shapes()"
    )
    op.execute(
        "CREATE TRIGGER grid_tile_shape_update AFTER UPDATE ON grid "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION keep_grid_tile_shapes()"
    )
    # The triggers hold grid against writes until this transaction ends: the fill below and
    # the triggers see the same rows.
    op.execute(_UPSERT.format(rows="grid n", where="n.valid_to IS NULL").split(" ON CONFLICT")[0])
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridwork_app') THEN
                REVOKE ALL ON grid_tile_shape FROM gridwork_app;
                GRANT SELECT ON grid_tile_shape TO gridwork_app;
            END IF;
        END $$;
        """
    )
    op.execute("ANALYZE grid_tile_shape")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS grid_tile_shape_insert ON grid")
    op.execute("DROP TRIGGER IF EXISTS grid_tile_shape_update ON grid")
    op.execute("DROP FUNCTION IF EXISTS keep_grid_tile_shapes()")
    op.execute("DROP TABLE IF EXISTS grid_tile_shape")
