"""a table's version renewed only by a statement that wrote at least one of its rows

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 23:00:00.000000

0021 renewed ``table_version[t]`` after every ``INSERT``, ``UPDATE`` or ``DELETE`` statement
on a watched table, whether or not it wrote a row: "at worst a cache is rebuilt for
nothing". That worst case became the common one once an import stopped rewriting unchanged
rows (``data.importing.importer``): a street office's monthly re-import of its household
list, mostly unchanged, still ran one ``INSERT … ON CONFLICT`` and so renewed the household
version, which empties every cache keyed on it (the coverage graph's households, the
tiles) in every API process. The same for the after-import passes that find nothing to do
(``UPDATE building … WHERE … IS DISTINCT FROM``).

Now each watched table has one statement-level trigger per event, with the statement's
transition table (``REFERENCING NEW TABLE`` for ``INSERT`` and ``UPDATE``, ``OLD TABLE`` for
``DELETE``; a trigger with transition tables serves one event), and ``bump_table_version()``
renews the version only when that table holds a row. An ``INSERT … ON CONFLICT DO UPDATE``
fires the insert and the update trigger; a row it left alone (its ``WHERE`` false) is in
neither table. ``TRUNCATE`` (no transition table) renews it always, as before. Everything
else 0021 says holds: the version is written in the writer's transaction and seen with its
rows, a rollback leaves it, the function runs with its owner's rights.

The price: PostgreSQL now keeps the rows each statement wrote in a tuple store for the
trigger (in memory up to ``work_mem``, then in a temporary file) for ``road_segment``,
``building`` and ``facility``, and reads one of them. ``household``'s were kept already for
0022's per-grid counts (a table's triggers of one event share its transition tables), so
its writes pay nothing more. An ``UPDATE`` keeps only its new rows for this trigger.

Downgrade puts back 0021's two triggers per table and its function body exactly.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables 0021 watches (its ``WATCHED``; ``grid_households`` is versioned by 0022's own
#: function, which renews it only when a count moved).
WATCHED = ("road_segment", "household", "building", "facility")

#: event → the transition table its trigger keeps for the function
_EVENTS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}

_RENEW = """
            UPDATE public.table_version SET version = gen_random_uuid()
                WHERE name = TG_TABLE_NAME;"""

_FUNCTION = """
        CREATE OR REPLACE FUNCTION bump_table_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN{body}
            RETURN NULL;
        END $$;
        """

# 0021's body, restored by the downgrade word for word.
_BODY_0021 = _RENEW

# Each branch reads only the transition table its event's trigger has (PL/pgSQL plans a
# statement when it first runs it, per trigger).
_BODY_0026 = (
    """
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                IF NOT EXISTS (SELECT FROM new_rows) THEN
                    RETURN NULL;
                END IF;
            ELSIF TG_OP = 'DELETE' THEN
                IF NOT EXISTS (SELECT FROM old_rows) THEN
                    RETURN NULL;
                END IF;
            END IF;  -- TRUNCATE has no transition table: always a change"""  # noqa: S608
    + _RENEW
)


def upgrade() -> None:
    # 0021's INSERT OR UPDATE OR DELETE trigger has no transition table for the new body to
    # read: it goes first (all in this migration's one transaction).
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_version ON {table}")
    op.execute(_FUNCTION.format(body=_BODY_0026))
    for table in WATCHED:
        for event, referencing in _EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_version_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                "EXECUTE FUNCTION bump_table_version()"
            )
    # {table}_version_truncate (0021) stays as it is.


def downgrade() -> None:
    for table in WATCHED:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER {table}_version_{event.lower()} ON {table}")
    op.execute(_FUNCTION.format(body=_BODY_0021))
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_table_version()"
        )
