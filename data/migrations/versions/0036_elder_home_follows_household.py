"""an elder's home grid follows their household when it is reassigned (a new plan, a move)

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 14:30:00.000000

``elder.home_grid_id`` was set at enrolment and never again. Once a planner published new
grids for the community, the household moved to its new grid but the elder stayed on the
closed one: alerts went to the old grid's worker as "home grid", the new grid's worker did
not see the elder, and the inbox named a grid that no longer exists. A statement trigger on
``household`` now carries each changed ``grid_id`` to the elders of that household (a
household reassigned to no grid keeps the last one: the elder stays in someone's care), and
the upgrade mends the elders already behind. ``elder.household_id`` gets the index the
trigger (and the foreign key's ``ON DELETE SET NULL``) looks them up by.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036"
down_revision: str | Sequence[str] | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_elder_household_id", "elder", ["household_id"])
    op.execute(
        """
        CREATE FUNCTION elder_home_follows_household() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        BEGIN
            -- From the elders (a few hundred) to the rows changed (up to every household of
            -- a city when grids are replaced): no join of the two transition tables.
            UPDATE public.elder e SET home_grid_id = n.grid_id
            FROM new_rows n
            WHERE e.household_id = n.id AND n.grid_id IS NOT NULL
              AND e.home_grid_id IS DISTINCT FROM n.grid_id;
            RETURN NULL;
        END $$;
        """
    )
    op.execute("REVOKE ALL ON FUNCTION elder_home_follows_household() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER household_elder_home AFTER UPDATE ON household "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION elder_home_follows_household()"
    )
    op.execute(
        "UPDATE elder e SET home_grid_id = h.grid_id FROM household h "
        "WHERE h.id = e.household_id AND h.grid_id IS NOT NULL "
        "AND e.home_grid_id IS DISTINCT FROM h.grid_id"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER household_elder_home ON household")
    op.execute("DROP FUNCTION elder_home_follows_household()")
    op.drop_index("ix_elder_household_id", table_name="elder")
