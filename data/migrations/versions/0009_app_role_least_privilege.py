"""the application's own database role, with only the rights it needs

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00.000000

Until now the API connected as the migrations' role, which owns every table: it could
``ALTER TABLE audit_log DISABLE TRIGGER`` and then delete audit rows. From here on the API
server connects as ``gridwork_app`` (a role of the whole PostgreSQL server, like every role):

* no superuser, no CREATEDB/CREATEROLE, owns nothing, so it cannot ALTER, DROP or disable a
  trigger on any table;
* ``audit_log``: SELECT and INSERT only (no UPDATE, DELETE, TRUNCATE);
* every other table: SELECT, INSERT, UPDATE, DELETE (no TRUNCATE, REFERENCES, TRIGGER);
  ``alembic_version``: SELECT; sequences: USAGE, SELECT; the ``ogc`` views: SELECT.

Tables created by later migrations (run by the same owner) get the same rights through
default privileges. The role is created here without LOGIN if it does not exist (the private
cluster gives it a password; with ``DATABASE_URL`` the README says how); a migrating role that
may not create roles must find it made by the database administrator.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The role's name is spelled out (data.cluster.APP_ROLE): a migration must not change with
# the code.


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridwork_app') THEN
                IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles
                        WHERE rolname = current_user) THEN
                    RAISE EXCEPTION 'role gridwork_app does not exist and % may not create it',
                        current_user
                        USING HINT = 'as a superuser: CREATE ROLE gridwork_app LOGIN '
                            'PASSWORD ''...'' (see the README, "The app''s database role")';
                END IF;
                BEGIN
                    CREATE ROLE gridwork_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
                        NOREPLICATION NOBYPASSRLS;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- made meanwhile by a migration of another database
                END;
            END IF;
        END $$;
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO gridwork_app',
                           current_database());
        END $$;
        """
    )
    op.execute(
        """
        GRANT USAGE ON SCHEMA public TO gridwork_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO gridwork_app;
        REVOKE ALL ON alembic_version FROM gridwork_app;
        GRANT SELECT ON alembic_version TO gridwork_app;
        REVOKE ALL ON audit_log FROM gridwork_app;
        GRANT SELECT, INSERT ON audit_log TO gridwork_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gridwork_app;
        GRANT USAGE ON SCHEMA ogc TO gridwork_app;
        GRANT SELECT ON ALL TABLES IN SCHEMA ogc TO gridwork_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO gridwork_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO gridwork_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA ogc GRANT SELECT ON TABLES TO gridwork_app;
        """
    )


def downgrade() -> None:
    # The role belongs to the whole server (other databases may use it): only this
    # database's rights are taken back.
    op.execute(
        """
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM gridwork_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE USAGE, SELECT ON SEQUENCES FROM gridwork_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA ogc REVOKE SELECT ON TABLES FROM gridwork_app;
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM gridwork_app;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM gridwork_app;
        REVOKE ALL ON ALL TABLES IN SCHEMA ogc FROM gridwork_app;
        REVOKE USAGE ON SCHEMA ogc FROM gridwork_app;
        REVOKE USAGE ON SCHEMA public FROM gridwork_app;
        """
    )
