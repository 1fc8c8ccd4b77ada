"""a stamp per grid tile shape, and versions of their own for workers and communities, so a
grid tile is drawn again only when something it shows changed

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 05:00:00.000000

The API keeps the grid vector tiles it served (``api.tile_cache``) under the versions of what
they show: until now ``grids_version`` (any write to a grid, worker, community or street
anywhere) and ``table_version['grid_households']`` (any household count that moved anywhere).
At the megacity's full size a household registered in one street made every tile of the city
cold, and a cold z10 tile costs ~120 ms against a 20 ms target (docs/scale.md): the cost of
one edit grew with the size of the city.

Now a grid tile's key is read from the grids under it (``api.tile_cache.GRID_TILE_KEY``):
how many current grids' shapes lie under the tile, an XOR of their stamps, and an XOR of their
household counts, plus the versions of ``worker`` and ``community`` (names and codes shown in
the tile; renamed seldom, so their writes still make every tile anew):

- ``grid_tile_shape.stamp`` is taken from a sequence when 0024's triggers write a shape (a new
  current grid, an outline redrawn) and renewed by a row trigger on every ``UPDATE`` of a
  shape; an ``UPDATE`` of ``grid`` that changes what a tile shows besides the outline (code,
  community, worker) renews the stamps of those grids' shapes too, in the same statement-level
  way as 0024 (the writer of ``grid`` already locks those shape rows, so no new lock order).
- The household counts are read from ``grid_households`` (0022) as they are, so a household
  edit takes no lock beyond 0022's: hashing the counts means a count that returns to what it
  was gives the tile it had, which is right, since the tile is the same.
- ``table_version`` gets rows for ``worker`` and ``community``, renewed by 0026's function.

A GiST index on the shapes (including the stamp) makes the key a read of the grids under the
tile. The downgrade removes all of it; the cache then keys grid tiles as before.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables versioned by 0026's ``bump_table_version()`` from here on.
WATCHED = ("worker", "community")

_EVENTS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def upgrade() -> None:
    op.execute(
        "INSERT INTO table_version (name, version) VALUES "
        "('worker', gen_random_uuid()), ('community', gen_random_uuid()) "
        "ON CONFLICT (name) DO NOTHING"
    )
    for table in WATCHED:
        for event, referencing in _EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_version_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                "EXECUTE FUNCTION bump_table_version()"
            )
        op.execute(
            f"CREATE TRIGGER {table}_version_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version()"
        )

    op.execute("CREATE SEQUENCE grid_tile_stamp")
    op.execute(
        "ALTER TABLE grid_tile_shape "
        "ADD COLUMN stamp bigint NOT NULL DEFAULT nextval('grid_tile_stamp')"
    )
    op.execute("ALTER SEQUENCE grid_tile_stamp OWNED BY grid_tile_shape.stamp")
    op.execute(
        """
        CREATE FUNCTION renew_grid_tile_stamp() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
            NEW.stamp := nextval('public.grid_tile_stamp');
            RETURN NEW;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER grid_tile_shape_stamp BEFORE UPDATE ON grid_tile_shape "
        "FOR EACH ROW EXECUTE FUNCTION renew_grid_tile_stamp()"
    )
    op.execute(
        """
        CREATE FUNCTION touch_grid_tile_shapes() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
            UPDATE public.grid_tile_shape s SET stamp = s.stamp
                FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE s.grid_id = n.id AND (o.code, o.community_id, o.worker_id)
                    IS DISTINCT FROM (n.code, n.community_id, n.worker_id);
            RETURN NULL;
        END $$;
        """
    )
    for name in ("renew_grid_tile_stamp", "touch_grid_tile_shapes"):
        op.execute(f"REVOKE ALL ON FUNCTION {name}() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER grid_tile_stamp_update AFTER UPDATE ON grid "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION touch_grid_tile_shapes()"
    )
    op.execute(
        "CREATE INDEX grid_tile_shape_exact ON grid_tile_shape USING gist (exact) INCLUDE (stamp)"
    )
    op.execute("ANALYZE grid_tile_shape")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS grid_tile_shape_exact")
    op.execute("DROP TRIGGER IF EXISTS grid_tile_stamp_update ON grid")
    op.execute("DROP TRIGGER IF EXISTS grid_tile_shape_stamp ON grid_tile_shape")
    op.execute("DROP FUNCTION IF EXISTS touch_grid_tile_shapes()")
    op.execute("DROP FUNCTION IF EXISTS renew_grid_tile_stamp()")
    op.execute("ALTER TABLE grid_tile_shape DROP COLUMN IF EXISTS stamp")  # and its sequence
    for table in WATCHED:
        for event in (*_EVENTS, "TRUNCATE"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event.lower()} ON {table}")
    op.execute("DELETE FROM table_version WHERE name IN ('worker', 'community')")
