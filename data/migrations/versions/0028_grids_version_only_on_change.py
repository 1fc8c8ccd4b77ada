"""the grids' version, and the notice to every API process, only from a statement that wrote
a row of grids, workers, communities or streets

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 03:00:00.000000

0003 renews ``deployment_setting['grids_version']`` after every ``INSERT``, ``UPDATE`` or
``DELETE`` statement on ``grid``, ``worker``, ``community`` and ``street``, and 0007 adds a
``NOTIFY gridwork_change`` on which every API process drops its grid index, its tiles and
the caches keyed on the version. Since an import leaves unchanged rows unwritten (0026 and
``data.importing.importer``), a street office's re-import of its unchanged grids or workers
writes no row, yet its ``INSERT … ON CONFLICT`` still renewed the version and made every
process rebuild its index of every grid and draw its tiles again.

As 0026 did for ``table_version``: one statement-level trigger per event with the statement's
transition table (new rows for ``INSERT`` and ``UPDATE``, old rows for ``DELETE``), and
``bump_grids_version()`` returns at once when it holds no row. ``TRUNCATE`` (no transition
table) renews and notifies always, as before. The function keeps 0007's body otherwise and
its owner's rights as they were (it runs as the writer, as before). The downgrade puts back
0003's triggers and 0007's function body exactly.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 0003's ``_VERSIONED``
VERSIONED = ("grid", "worker", "community", "street")

_EVENTS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}

_FUNCTION = """
        CREATE OR REPLACE FUNCTION bump_grids_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN{skip}
            INSERT INTO deployment_setting (key, value)
            VALUES ('grids_version', gen_random_uuid()::text)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
            PERFORM pg_notify('gridwork_change', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
        """

# Each branch reads only the transition table its event's trigger has.
_SKIP = """
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                IF NOT EXISTS (SELECT FROM new_rows) THEN
                    RETURN NULL;
                END IF;
            ELSIF TG_OP = 'DELETE' THEN
                IF NOT EXISTS (SELECT FROM old_rows) THEN
                    RETURN NULL;
                END IF;
            END IF;  -- TRUNCATE has no transition table: always a change"""


def upgrade() -> None:
    for table in VERSIONED:
        op.execute(f"DROP TRIGGER {table}_bump_grids_version ON {table}")
    op.execute(_FUNCTION.format(skip=_SKIP))
    for table in VERSIONED:
        for event, referencing in _EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_bump_grids_version_{event.lower()} AFTER {event} "
                f"ON {table} REFERENCING {referencing} FOR EACH STATEMENT "
                "EXECUTE FUNCTION bump_grids_version()"
            )
    # {table}_bump_grids_version_truncate (0003) stays as it is.


def downgrade() -> None:
    for table in VERSIONED:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER {table}_bump_grids_version_{event.lower()} ON {table}")
    op.execute(_FUNCTION.format(skip=""))
    for table in VERSIONED:
        op.execute(
            f"CREATE TRIGGER {table}_bump_grids_version AFTER INSERT OR UPDATE OR DELETE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_grids_version()"
        )
