"""households per grid kept by the store, not counted on every read

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 21:00:00.000000

Every grid layer showed its household count by ``(SELECT count(*) FROM household h WHERE
h.grid_id = g.id)`` per grid and per request: the vector tiles of ``ogc.grids``, the grid
and workload maps, ``GET /grids``. At a tenth of the megacity a z10 tile holds ~2,200 grids
and the count was most of its time (``bench.megacity tiles``; docs/scale.md).

``grid_households`` now holds the count, one row per grid that has or had households (a grid
without a row has none). Statement-level triggers with transition tables on ``household``
keep it: an ``INSERT`` adds the new rows per grid, a ``DELETE`` takes the old ones away, an
``UPDATE`` (reassignment, a household moved, a plan's publish) does both, so only grids whose
count changed are written, once per statement whatever the number of rows; ``TRUNCATE``
empties it. A statement that changed a count also renews ``table_version['grid_households']``
(0021), which the grid tiles are cached under (``api.tile_cache``): an edit of a household's
size moves no count and keeps them. A grid's row goes with the grid (``ON DELETE CASCADE``;
the grid's own version, ``grids_version``, moves then); a delta for a grid deleted in the
same statement is dropped. Rows are written in ``grid_id`` order, so two
transactions changing the same grids take their row locks in the same order.

A separate table and not a column on ``grid``: a write to ``grid`` bumps ``grids_version``
and notifies every API process (0003, 0007), which rebuild the grid index behind ``/locate``
on it; a household edit must not do that. Old grid versions (``valid_to`` set) keep their
row: households that a publish moved to the new grids were taken off it by the same
``UPDATE``.

The functions run with their owner's rights (``SECURITY DEFINER``, fixed ``search_path``):
the app's role reads the counts and cannot set them.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The per-grid change of one statement, from its transition tables (one query per event,
# since a trigger with transition tables serves one event only).
_DELTA = {
    "INSERT": "SELECT grid_id, count(*)::integer AS n FROM new_rows "
    "WHERE grid_id IS NOT NULL GROUP BY grid_id",
    "DELETE": "SELECT grid_id, -count(*)::integer AS n FROM old_rows "
    "WHERE grid_id IS NOT NULL GROUP BY grid_id",
    "UPDATE": "SELECT grid_id, sum(n)::integer AS n FROM ("
    "SELECT grid_id, 1 AS n FROM new_rows WHERE grid_id IS NOT NULL "
    "UNION ALL SELECT grid_id, -1 FROM old_rows WHERE grid_id IS NOT NULL) x GROUP BY grid_id",
}

_APPLY = """
        INSERT INTO public.grid_households AS c (grid_id, households)
        SELECT d.grid_id, d.n FROM ({delta}) d
        WHERE d.n <> 0 AND EXISTS (SELECT FROM public.grid g WHERE g.id = d.grid_id)
        ORDER BY d.grid_id
        ON CONFLICT (grid_id) DO UPDATE SET households = c.households + EXCLUDED.households;
        GET DIAGNOSTICS changed = ROW_COUNT;
"""

_REFERENCING = {
    "INSERT": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}

# ogc.grids as 0005 made it, with the count read instead of made.
_GRIDS_VIEW = """
    CREATE OR REPLACE VIEW ogc.grids AS
    SELECT g.id, g.code, c.code AS community_code, w.code AS worker_code,
           w.display_name AS worker_name,
           {households} AS households,
           g.geom
    FROM public.grid g JOIN public.community c ON c.id = g.community_id
    LEFT JOIN public.worker w ON w.id = g.worker_id
    {join}
    WHERE g.valid_to IS NULL
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_households (
            grid_id integer PRIMARY KEY REFERENCES grid (id) ON DELETE CASCADE,
            households integer NOT NULL
        );
        COMMENT ON TABLE grid_households IS
            'Households per grid (household.grid_id), kept by triggers on household '
            '(migration 0022); a grid without a row has none.';
        """
    )
    body = "\n".join(
        f"        IF TG_OP = '{event}' THEN{_APPLY.format(delta=delta)}        END IF;"
        for event, delta in _DELTA.items()
    )
    op.execute(
        f"""
        CREATE FUNCTION count_grid_households() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        DECLARE
            changed bigint := 0;
        BEGIN
{body}
            IF TG_OP = 'TRUNCATE' THEN
                DELETE FROM public.grid_households;
                GET DIAGNOSTICS changed = ROW_COUNT;
            END IF;
            IF changed > 0 THEN  -- only a count that moved re-draws the grid tiles
                UPDATE public.table_version SET version = gen_random_uuid()
                    WHERE name = 'grid_households';
            END IF;
            RETURN NULL;
        END $$;
        """  # noqa: S608 - the body is made of the fixed statements above
    )
    op.execute("REVOKE ALL ON FUNCTION count_grid_households() FROM PUBLIC")
    # Versioned (0021) by the function itself, only when a count changed: a household's
    # size or name edit leaves every count, and so the grid tiles cached on it, as they were.
    op.execute("INSERT INTO table_version (name) VALUES ('grid_households')")
    for event, referencing in _REFERENCING.items():
        op.execute(
            f"CREATE TRIGGER household_grid_count_{event.lower()} AFTER {event} ON household "
            f"REFERENCING {referencing} FOR EACH STATEMENT "
            "EXECUTE FUNCTION count_grid_households()"
        )
    op.execute(
        "CREATE TRIGGER household_grid_count_truncate AFTER TRUNCATE ON household "
        "FOR EACH STATEMENT EXECUTE FUNCTION count_grid_households()"
    )
    # The triggers hold household against writes until this transaction ends: the count
    # below and the triggers see the same rows.
    op.execute(
        "INSERT INTO grid_households (grid_id, households) SELECT grid_id, count(*) "
        "FROM household WHERE grid_id IS NOT NULL GROUP BY grid_id"
    )
    # The default privileges (0009) gave the app's role every write on a new table.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridwork_app') THEN
                REVOKE ALL ON grid_households FROM gridwork_app;
                GRANT SELECT ON grid_households TO gridwork_app;
            END IF;
        END $$;
        """
    )
    op.execute(
        _GRIDS_VIEW.format(
            households="coalesce(n.households, 0)",
            join="LEFT JOIN public.grid_households n ON n.grid_id = g.id",
        )
    )


def downgrade() -> None:
    op.execute(
        _GRIDS_VIEW.format(
            households="(SELECT count(*) FROM public.household h WHERE h.grid_id = g.id)::integer",
            join="",
        )
    )
    for event in (*_REFERENCING, "TRUNCATE"):
        op.execute(f"DROP TRIGGER IF EXISTS household_grid_count_{event.lower()} ON household")
    op.execute("DROP FUNCTION IF EXISTS count_grid_households()")
    op.execute("DROP TABLE IF EXISTS grid_households")
    op.execute("DELETE FROM table_version WHERE name = 'grid_households'")
