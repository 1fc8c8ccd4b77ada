"""the daily partition work on positions locks only ``position``: its foreign keys become
triggers

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 02:30:00.000000

``position`` referred to ``device``, ``elder`` and ``grid`` by foreign key, and ``alert``
referred to ``position``. PostgreSQL keeps a partition's share of such keys as constraints
(and triggers) of their own: detaching a day partition (0019's purge) takes a
``SHARE ROW EXCLUSIVE`` lock on ``grid``, ``device`` and ``elder`` to give the detached table
its own keys, and dropping it then takes ``ACCESS EXCLUSIVE`` on those three and on
``alert``; attaching a new day (the partition maker) locks them too. So the daily purge
(a) deadlocked with any transaction that had read ``grid`` and went on to write it: a plan's
publication died with "deadlock detected" while the purge waited for ``grid``
(``tests/api/test_plans.py``, 2026-12-07), and (b) while it waited (up to its 2 s lock
timeout) queued every reader of ``grid``, ``device`` and ``elder`` behind it: ``/locate``,
tiles and ingest stalled once a day.

The four keys go, and what they did is done by statement-level triggers (transition
tables, so one statement per deleting statement, whatever its rows):

* a deleted ``elder`` or ``device`` deletes its fixes (was ``ON DELETE CASCADE``): a
  withdrawal of consent still leaves no fix behind, however the row is deleted;
* a deleted ``grid`` empties ``position.grid_id`` (was ``ON DELETE SET NULL``; grids are
  closed, not deleted, so this runs on restores and by hand only);
* a fix deleted through ``position`` empties the reference of the alerts raised at it (was
  ``ON DELETE SET NULL``). A fix's key is never updated (``ON UPDATE CASCADE`` had nothing
  to do). The partition maker moves fixes out of ``position_default`` by deleting from the
  partition itself, which the parent's trigger does not see, and re-inserts them with the
  same key: the alerts keep their references without being put back;
* a ``TRUNCATE`` of ``elder`` or ``device`` empties ``position``, of ``grid`` empties every
  fix's grid, of ``position`` every alert's reference (``TRUNCATE … CASCADE`` reached
  ``position`` through the keys).

What is given up: the database no longer refuses a fix for a device, elder or grid that does
not exist. Every fix is written by ingest, which holds the device's key and takes the elder's
ingest lock (``zone_state``) that a deletion takes first, so no fix is written for a
deleted elder; the grid is the one ``grid_covering()`` found. Ingest also no longer takes
a ``KEY SHARE`` row lock on the elder, device and grid of every fix it writes.

With no key on a partition, the purge drops a day partition without detaching it first: it
locks ``position`` and that partition, nothing else. The maker still builds a day apart and
attaches it (which locks the parent less than ``CREATE … PARTITION OF``). The downgrade
restores 0019's keys and both functions' bodies as 0019 wrote them.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table → (what a statement deleting its rows then does, with ``old_rows`` the rows it
#: deleted; what a ``TRUNCATE`` of it then does: a DELETE, since a TRUNCATE from the trigger
#: fails when the same statement truncates ``position`` too)
_ON_DELETE = {
    "elder": (
        "DELETE FROM public.position WHERE elder_id IN (SELECT id FROM old_rows)",
        "DELETE FROM public.position",
    ),
    "device": (
        "DELETE FROM public.position WHERE device_id IN (SELECT id FROM old_rows)",
        "DELETE FROM public.position",
    ),
    "grid": (
        "UPDATE public.position SET grid_id = NULL WHERE grid_id IN (SELECT id FROM old_rows)",
        "UPDATE public.position SET grid_id = NULL WHERE grid_id IS NOT NULL",
    ),
    "position": (
        "UPDATE public.alert a SET position_id = NULL, position_time = NULL "
        "FROM old_rows o WHERE a.position_id = o.id AND a.position_time = o.time",
        "UPDATE public.alert SET position_id = NULL, position_time = NULL "
        "WHERE position_id IS NOT NULL",
    ),
}

# EXECUTE, so that each run is planned for its own number of deleted rows (a cached plan
# made for one row would be kept for a day's purge, and the other way round).
_TRIGGER_FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE '{on_delete}';
    ELSE
        EXECUTE '{on_truncate}';
    END IF;
    RETURN NULL;
END $$;
"""

_MAKE = r"""
CREATE OR REPLACE FUNCTION make_position_partitions(first_day date, last_day date)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO'
AS $$
DECLARE
    made integer := 0;
    day date;
    part text;
    columns text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR last_day - first_day NOT BETWEEN 0 AND 400 THEN
        RAISE EXCEPTION 'make_position_partitions: from % to % is not 1 to 401 days',
            first_day, last_day USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
    FROM pg_attribute WHERE attrelid = 'public.position'::regclass AND attnum > 0
        AND NOT attisdropped;
    FOR day IN
        SELECT generate_series(first_day, last_day, interval '1 day')::date
        UNION
        SELECT DISTINCT (time AT TIME ZONE 'UTC')::date FROM public.position_default
        ORDER BY 1
    LOOP
        part := 'position_' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('public.' || part) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        -- Built apart, filled from the default partition (same keys: the alerts' references
        -- stay good), then attached, which locks the parent far less than CREATE …
        -- PARTITION OF; the default partition must hold no row of the day when it is.
        LOCK TABLE public.position_default IN ACCESS EXCLUSIVE MODE;
        EXECUTE format('CREATE TABLE public.%I (LIKE public.position INCLUDING DEFAULTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM public.position_default WHERE time >= $1 AND time < $2 '
            'RETURNING %2$s) INSERT INTO public.%1$I (%2$s) SELECT %2$s FROM moved',
            part, columns)
            USING lo, hi;
        EXECUTE format(
            'ALTER TABLE public.position ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
            part, lo, hi);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
"""

_DROP = r"""
CREATE OR REPLACE FUNCTION drop_position_partitions(cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO'
SET lock_timeout = '2s'
AS $$
DECLARE
    part record;
    n bigint;
    dropped bigint := 0;
BEGIN
    IF cutoff IS NULL THEN
        RAISE EXCEPTION 'drop_position_partitions: no cut-off'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR part IN
        SELECT c.relname, b.lo, b.hi
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (
            SELECT m[1]::timestamptz AS lo, m[2]::timestamptz AS hi
            FROM regexp_match(pg_get_expr(c.relpartbound, c.oid),
                              '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') m
        ) b
        WHERE i.inhparent = 'public.position'::regclass
          AND c.relname ~ '^position_[0-9]{8}$' AND b.hi <= cutoff
        ORDER BY b.lo
    LOOP
        -- What the delete trigger does for a fix deleted through the parent.
        UPDATE public.alert SET position_id = NULL, position_time = NULL
        WHERE position_time >= part.lo AND position_time < part.hi;
        EXECUTE format('SELECT count(*) FROM public.%I', part.relname) INTO n;
        EXECUTE format('DROP TABLE public.%I', part.relname);
        dropped := dropped + n;
    END LOOP;
    RETURN dropped;
END
$$;
"""

_KEYS = """
ALTER TABLE position
    ADD CONSTRAINT fk_position_device_id_device FOREIGN KEY (device_id)
        REFERENCES device (id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_position_elder_id_elder FOREIGN KEY (elder_id)
        REFERENCES elder (id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_position_grid_id_grid FOREIGN KEY (grid_id)
        REFERENCES grid (id) ON DELETE SET NULL;
ALTER TABLE alert
    ADD CONSTRAINT fk_alert_position_id_position FOREIGN KEY (position_id, position_time)
        REFERENCES position (id, time) ON DELETE SET NULL ON UPDATE CASCADE;
"""


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE alert DROP CONSTRAINT fk_alert_position_id_position;
        ALTER TABLE position DROP CONSTRAINT fk_position_device_id_device,
            DROP CONSTRAINT fk_position_elder_id_elder,
            DROP CONSTRAINT fk_position_grid_id_grid;
        """
    )
    for table, (on_delete, on_truncate) in _ON_DELETE.items():
        function = f"on_{table}_delete"
        op.execute(
            _TRIGGER_FUNCTION.format(name=function, on_delete=on_delete, on_truncate=on_truncate)
        )
        op.execute(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
        op.execute(
            f"CREATE TRIGGER {table}_delete_dependents AFTER DELETE ON {table} REFERENCING "
            f"OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_truncate_dependents AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    op.execute(_MAKE)
    op.execute(_DROP)


def _revision_0019() -> ModuleType:
    path = Path(__file__).with_name("0019_positions_partitioned_by_time.py")
    spec = importlib.util.spec_from_file_location("gridwork_migration_0019", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    for table in _ON_DELETE:
        op.execute(f"DROP TRIGGER {table}_delete_dependents ON {table}")
        op.execute(f"DROP TRIGGER {table}_truncate_dependents ON {table}")
        op.execute(f"DROP FUNCTION on_{table}_delete()")
    # Keys again: no fix may point at a device, elder or grid gone meanwhile.
    op.execute(
        """
        DELETE FROM position p WHERE NOT EXISTS (SELECT FROM device d WHERE d.id = p.device_id)
            OR NOT EXISTS (SELECT FROM elder e WHERE e.id = p.elder_id);
        UPDATE position p SET grid_id = NULL
            WHERE grid_id IS NOT NULL AND NOT EXISTS (SELECT FROM grid g WHERE g.id = p.grid_id);
        UPDATE alert a SET position_id = NULL, position_time = NULL
            WHERE position_id IS NOT NULL AND NOT EXISTS (
                SELECT FROM position p WHERE p.id = a.position_id AND p.time = a.position_time);
        """
    )
    op.execute(_KEYS)
    old = _revision_0019()
    for body in (old._MAKE, old._DROP):
        op.execute(body.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
