"""a version token per grid for its households, so the coverage cache re-reads only the grids
that changed

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 22:30:00.000000

The coverage cache (``data.coverage.service.NetworkCache``) keeps the households snapped onto
the road graph per grid, each filed under ``table_version['household']`` (0021). That token
is the whole table's: after one household's write anywhere every grid held is of an old
version, and the first district-wide coverage request re-read every household of the city
(6–8 s at a tenth of the megacity, docs/scale.md; about ten times that at full size), though
one grid changed.

``grid_household_version`` holds one random token per grid (``version``), made anew by every
statement that inserts, deletes or updates a household of that grid: the old and the new grid
of a household moved, and every grid with a household whose any column was written (coverage
reads the position; the token stands for the rows, not for one column). A ``TRUNCATE`` of
``household`` renews every grid's. Households without a grid belong to no grid's token; the
cache reads them at the community level, still under the whole-table versions.

How it is kept:

* statement-level triggers with transition tables on ``household``, one per event, as 0022's
  counts are; PostgreSQL fills one set of transition tables per event and statement for all
  the triggers that reference them, so this costs one more pass over rows already collected,
  and one token written per grid touched, whatever the number of rows. A function of its own
  beside 0022's ``count_grid_households()`` rather than in it: 0022 writes a grid only when
  its count moved (an edit of a household's size moves none, and the grid tiles are cached
  on that), where this must renew the grid on every write of its rows; apart, each does one
  thing and this migration's downgrade drops only what it made;
* the tokens are upserted in ``grid_id`` order, so two statements renewing the same grids
  take their row locks in one order; a delta for a grid deleted in the same statement is
  dropped (its row went with it, ``ON DELETE CASCADE``), and a row deleted by hand comes back
  at the grid's next household write;
* a grid gets its row when it is inserted (a trigger on ``grid``), so that a grid without
  households has a token too: a grid without a row is one whose row was deleted by hand,
  which the cache must treat as unversioned (re-read every time), never as unchanged.

A token is random (``gen_random_uuid()``), as 0021's are: databases copied from one template
start alike, and counters would meet again after their first writes. It is a row written in
the writer's transaction, so it commits (and replays on a standby) with the rows it stands
for; the reader reads the tokens before the rows (``data.table_versions``).

Separate from ``grid_households`` (0022): the grid tiles are cached on that table's version,
renewed only when a count moves, and must stay so. The functions run with their owner's
rights (``SECURITY DEFINER``, fixed ``search_path``): the app's role reads the tokens and
cannot set them.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The grids whose households one statement wrote, from its transition tables (one query per
# event, since a trigger with transition tables serves one event only).
_TOUCHED = {
    "INSERT": "SELECT grid_id FROM new_rows WHERE grid_id IS NOT NULL",
    "DELETE": "SELECT grid_id FROM old_rows WHERE grid_id IS NOT NULL",
    "UPDATE": "SELECT grid_id FROM old_rows WHERE grid_id IS NOT NULL "
    "UNION SELECT grid_id FROM new_rows WHERE grid_id IS NOT NULL",
}

_RENEW = """
        INSERT INTO public.grid_household_version AS v (grid_id)
        SELECT DISTINCT t.grid_id FROM ({touched}) t
        WHERE EXISTS (SELECT FROM public.grid g WHERE g.id = t.grid_id)
        ORDER BY t.grid_id
        ON CONFLICT (grid_id) DO UPDATE SET version = gen_random_uuid();
"""

_REFERENCING = {
    "INSERT": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_household_version (
            grid_id integer PRIMARY KEY REFERENCES grid (id) ON DELETE CASCADE,
            version uuid NOT NULL DEFAULT gen_random_uuid()
        );
        COMMENT ON TABLE grid_household_version IS
            'One row per grid: a token made anew by every statement that writes any of its '
            'households (household.grid_id, old or new), committed with the write (migration '
            '0025). The coverage cache re-reads only the grids whose token moved.';
        """
    )
    body = "\n".join(
        f"        IF TG_OP = '{event}' THEN{_RENEW.format(touched=touched)}        END IF;"
        for event, touched in _TOUCHED.items()
    )
    op.execute(
        f"""
        CREATE FUNCTION renew_grid_household_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
{body}
            IF TG_OP = 'TRUNCATE' THEN
                UPDATE public.grid_household_version SET version = gen_random_uuid();
            END IF;
            RETURN NULL;
        END $$;
        """  # noqa: S608 - the body is made of the fixed statements above
    )
    op.execute(
        """
        CREATE FUNCTION add_grid_household_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
            INSERT INTO public.grid_household_version (grid_id)
            SELECT id FROM new_rows ORDER BY id ON CONFLICT (grid_id) DO NOTHING;
            RETURN NULL;
        END $$;
        """
    )
    for function in ("renew_grid_household_version()", "add_grid_household_version()"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    for event, referencing in _REFERENCING.items():
        op.execute(
            f"CREATE TRIGGER household_grid_version_{event.lower()} AFTER {event} ON household "
            f"REFERENCING {referencing} FOR EACH STATEMENT "
            "EXECUTE FUNCTION renew_grid_household_version()"
        )
    op.execute(
        "CREATE TRIGGER household_grid_version_truncate AFTER TRUNCATE ON household "
        "FOR EACH STATEMENT EXECUTE FUNCTION renew_grid_household_version()"
    )
    op.execute(
        "CREATE TRIGGER grid_household_version_insert AFTER INSERT ON grid "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION add_grid_household_version()"
    )
    # The triggers hold household and grid against writes until this transaction ends: the
    # fill below and the triggers see the same rows.
    op.execute("INSERT INTO grid_household_version (grid_id) SELECT id FROM grid ORDER BY id")
    # The default privileges (0009) gave the app's role every write on a new table.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridwork_app') THEN
                REVOKE ALL ON grid_household_version FROM gridwork_app;
                GRANT SELECT ON grid_household_version TO gridwork_app;
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS grid_household_version_insert ON grid")
    for event in (*_REFERENCING, "TRUNCATE"):
        op.execute(f"DROP TRIGGER IF EXISTS household_grid_version_{event.lower()} ON household")
    op.execute("DROP FUNCTION IF EXISTS add_grid_household_version()")
    op.execute("DROP FUNCTION IF EXISTS renew_grid_household_version()")
    op.execute("DROP TABLE IF EXISTS grid_household_version")
