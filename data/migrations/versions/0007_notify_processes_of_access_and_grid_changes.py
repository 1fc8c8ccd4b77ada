"""notify other processes when who-may-see-what changes: users, scopes, keys, grids

Revision ID: 0007
Revises: 0003, 0004, 0005, 0006
Create Date: 2026-11-26 16:10:00.000000

The API keeps the caller behind each credential and the grid index in memory, so that a
``/locate`` or a device fix costs no database round trip for signing in. Those caches are
only correct while nothing they were built from has changed. Every statement that writes a
user, a scope, an API key, a grid, a worker, a community or a street now also sends
``NOTIFY gridwork_change, '<table>'``; PostgreSQL delivers it at commit (and not at all on
rollback) to every listening API process, which drops what it cached (:mod:`data.changes`).

This revision also joins the four branches that grew from 0002 into one head.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0003", "0004", "0005", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel is data.changes.CHANNEL, spelled out: a migration must not change with the code.
_ACCESS = ("app_user", "user_scope", "api_key")


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION bump_grids_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO deployment_setting (key, value)
            VALUES ('grids_version', gen_random_uuid()::text)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
            PERFORM pg_notify('gridwork_change', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        """
        CREATE FUNCTION notify_access_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('gridwork_change', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
        """
    )
    for table in _ACCESS:
        op.execute(
            f"CREATE TRIGGER {table}_notify_change AFTER INSERT OR UPDATE OR DELETE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION notify_access_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_notify_change_truncate AFTER TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION notify_access_change()"
        )


def downgrade() -> None:
    for table in _ACCESS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_change_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS notify_access_change()")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION bump_grids_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO deployment_setting (key, value)
            VALUES ('grids_version', gen_random_uuid()::text)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
            RETURN NULL;
        END $$;
        """
    )
