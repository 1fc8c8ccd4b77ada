"""a change counter per table, kept by the store, for the caches that read whole tables

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 20:00:00.000000

The coverage cache (the road graph, and every household snapped onto it) knew whether the
stored roads and households had changed by ``count(*), max(id), max(xmin)`` over the whole
table: 0.13 s at 500,000 households, ~2.5 s at 10 M, on every request, more than the 1 s a
street's coverage may take in all. Now the store says so itself: ``table_version`` holds one
row per watched table, and a statement-level trigger (``AFTER INSERT OR UPDATE OR DELETE``,
and one ``AFTER TRUNCATE``) on each watched table gives its row a new version. Reading a
version is a primary-key lookup, whatever the table's size.

A version is a random token, as ``grids_version`` is (0003), not a counter: databases copied
from one template (every test's) start with the same tokens and the same rows, but their
first writes part them, where counters would both read 1 over different rows.

Why a row updated in the writer's transaction, and not a sequence (``nextval`` never waits):

* a version must change with every **committed** change and be seen **with** it. The row's
  new value becomes visible in the same commit as the rows it stands for, on the primary and,
  as a commit is replayed atomically, on a hot standby (data/replica.py). A sequence moves
  at ``nextval``, before the commit and whether or not the transaction commits: a reader that
  saw the new number but not yet the new rows would file the old rows under the new number
  and keep them until the next change. On a standby it is worse: a sequence's WAL record
  runs up to 32 values ahead of those handed out;
* a transaction that rolls back leaves the version as it was (nothing changed);
* the reader reads the version first, then the table, each in its own statement: what it
  reads is at least as new as the version, so a cache is never older than its key (at
  worst newer, and rebuilt once more at the next version).

The price: two transactions writing the same watched table now take turns on its version
row, the second waiting from its first write until the first commits (before, they waited
only over rows both wrote), as writers of grids already do on ``grids_version``. gridwork's
writes to these tables are imports, assignment runs and edits, none of them long. Two
transactions writing two watched tables in opposite orders can deadlock; PostgreSQL aborts
one of them after ``deadlock_timeout`` (1 s). gridwork writes buildings before households.

The trigger's work is that one ``UPDATE`` of a one-page table. A statement that changes no
row still makes a new version: at worst a cache is rebuilt for nothing, never kept when it
should not be. The function runs with its owner's rights (``SECURITY DEFINER``, fixed
``search_path``), so the app's role may read the versions but not set them.

Watched: what the coverage cache reads (``road_segment``; ``household`` and, for its
community, ``building``) and ``facility``, which coverage reads on every request. Grids,
workers, communities and streets already have ``grids_version``. Another table joins with a
row here and the two triggers that :func:`watch` makes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = ("road_segment", "household", "building", "facility")


def watch(table: str) -> None:
    """Version ``table`` in ``table_version`` (a later migration may copy this)."""
    op.execute(
        sa.text(
            "INSERT INTO table_version (name) VALUES (:t) ON CONFLICT (name) DO NOTHING"
        ).bindparams(t=table)
    )
    op.execute(
        f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_version_truncate AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version()"
    )


def unwatch(table: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {table}_version_truncate ON {table}")
    op.execute(f"DROP TRIGGER IF EXISTS {table}_version ON {table}")
    op.execute(sa.text("DELETE FROM table_version WHERE name = :t").bindparams(t=table))


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE table_version (
            name text PRIMARY KEY,
            version uuid NOT NULL DEFAULT gen_random_uuid()
        );
        COMMENT ON TABLE table_version IS
            'One row per watched table: a token made anew by every statement that writes '
            'it, committed with the write (migration 0021). Caches of whole tables compare '
            'it instead of scanning them.';
        """
    )
    op.execute(
        """
        CREATE FUNCTION bump_table_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
            UPDATE public.table_version SET version = gen_random_uuid()
                WHERE name = TG_TABLE_NAME;
            RETURN NULL;
        END $$;
        """
    )
    op.execute("REVOKE ALL ON FUNCTION bump_table_version() FROM PUBLIC")
    # The default privileges (0009) gave the app's role every write on a new table.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridwork_app') THEN
                REVOKE ALL ON table_version FROM gridwork_app;
                GRANT SELECT ON table_version TO gridwork_app;
            END IF;
        END $$;
        """
    )
    for table in WATCHED:
        watch(table)


def downgrade() -> None:
    for table in WATCHED:
        unwatch(table)
    op.execute("DROP FUNCTION bump_table_version()")
    op.execute("DROP TABLE table_version")
