"""assignment distance on points, grids version token for in-process caches

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:10:00.000000

Every point that belongs to a grid also keeps how far it was from the grid it went to (0 when
covered; the snap distance, or the distance to the nearest grid when unassigned), so a clerk
can list the doubtful ones without recomputing.

``deployment_setting['grids_version']`` becomes an opaque token that changes, in the same
transaction, whenever a grid, worker, community or street is written. Processes that keep an
in-memory assignment index (the API) compare tokens instead of re-reading the polygons. A
random token rather than a counter: truncating ``deployment_setting`` can never bring back an
old value that a cache still holds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POINTS = ("household", "facility", "incident")
_VERSIONED = ("grid", "worker", "community", "street")


def upgrade() -> None:
    for table in _POINTS:
        op.add_column(
            table,
            sa.Column(
                "assign_distance_m",
                sa.Float(),
                nullable=True,
                comment="metres to the assigned grid (0 inside), or to the nearest when none",
            ),
        )
    op.execute(
        """
        CREATE FUNCTION bump_grids_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO deployment_setting (key, value)
            VALUES ('grids_version', gen_random_uuid()::text)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
            RETURN NULL;
        END $$;
        """
    )
    for table in _VERSIONED:
        op.execute(
            f"CREATE TRIGGER {table}_bump_grids_version AFTER INSERT OR UPDATE OR DELETE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_grids_version()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_bump_grids_version_truncate AFTER TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_grids_version()"
        )


def downgrade() -> None:
    for table in _VERSIONED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_grids_version ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_grids_version_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_grids_version()")
    op.execute("DELETE FROM deployment_setting WHERE key = 'grids_version'")
    for table in _POINTS:
        op.drop_column(table, "assign_distance_m")
