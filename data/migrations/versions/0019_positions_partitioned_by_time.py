"""positions partitioned by day: retention drops whole days instead of deleting row by row

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 14:00:00.000000

At 20,000 watches reporting every minute a day is 28.8 M fixes. Deleting a day of them row by
row (the purge until now) writes every row and index entry once more and leaves the space to
vacuum; dropping a table that holds exactly that day costs a catalogue change. So
``position`` becomes ``PARTITION BY RANGE (time)``, one partition per UTC day
(``position_YYYYMMDD``, bounds are instants, independent of the server's time zone), and a
``position_default`` partition so that a fix is never refused for want of a partition. A day,
not a week: the purge still deletes the part of the one partition that straddles the
30-day cut-off (the answer at the boundary must not change), and that part is at most a
day, not a week, when the purge has not run for a while. The price is paid by the reads
that have no time bound (an elder's newest fix): they look into each of the ~38 partitions'
indexes (the default partition rules out PostgreSQL's ordered partition scan); on 20 M fixes
that was 1.4–3.5 ms against 0.16 ms on the plain table (bench/positions.py), which a week per
partition would divide by about 5 at the cost of a week-long straddling DELETE.

What a partitioned table requires, and what was chosen:

* the primary key must hold the partition key: it is ``(id, time)`` (``id`` stays the one
  sequence, so an id alone still names one fix); ``uq_position_device_time`` already does;
* ``alert.position_id`` referenced ``position(id)``. A foreign key must now name the whole
  key, so the alert also keeps its fix's time, ``alert.position_time``, and the reference is
  ``(position_id, position_time)`` with ``ON DELETE SET NULL`` as before: an alert outlives
  its fix, and a purge or a withdrawal of consent empties the reference (both columns, which
  a check keeps paired); ``ON UPDATE CASCADE``, because a fix whose time is corrected now
  changes its key (the id alone did not). PostgreSQL refuses to detach a partition that
  alerts still point into, so the dropping function first empties those references itself
  (found by ``ix_alert_position_time``);
* creating and dropping partitions needs the table's owner, and the API's role owns nothing
  (0009). Two ``SECURITY DEFINER`` functions, owned by the migrating role, with a fixed
  ``search_path`` and every name qualified, do exactly that and nothing else; only
  ``gridwork_app`` (and the owner) may call them:

  - ``make_position_partitions(first_day, last_day)``: the partitions of those UTC days and
    of every day that has rows in ``position_default`` (moved into their new partition), so
    the default partition empties itself whenever the periodic task runs; at most 400 days;
  - ``drop_position_partitions(cutoff)``: detaches and drops every day partition that ends at
    or before ``cutoff``; returns the number of fixes dropped. It waits at most 2 s for its
    lock (the periodic task then deletes instead, and tries again next time).

The existing rows are copied into the new table (partitions made first for every day that
has a fix, and for the 31 days past and 7 ahead); names, indexes, comments and the app
role's rights stay as they were. The downgrade copies them back into a plain table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = """
    device_id integer NOT NULL,
    elder_id integer NOT NULL,
    time timestamptz NOT NULL,
    geom geometry(Point, 4326) NOT NULL,
    raw_lon double precision NOT NULL,
    raw_lat double precision NOT NULL,
    grid_id integer,
    accuracy_m double precision,
    speed_mps double precision,
    bearing double precision,
    altitude double precision,
    battery double precision,
    charging boolean,
    alarm varchar(64),
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    valid boolean NOT NULL DEFAULT true,
    CONSTRAINT fk_position_device_id_device FOREIGN KEY (device_id)
        REFERENCES device (id) ON DELETE CASCADE,
    CONSTRAINT fk_position_elder_id_elder FOREIGN KEY (elder_id)
        REFERENCES elder (id) ON DELETE CASCADE,
    CONSTRAINT fk_position_grid_id_grid FOREIGN KEY (grid_id)
        REFERENCES grid (id) ON DELETE SET NULL,
    CONSTRAINT uq_position_device_time UNIQUE (device_id, time)
"""

_NAMES = (
    "id, device_id, elder_id, time, geom, raw_lon, raw_lat, grid_id, accuracy_m, speed_mps, "
    "bearing, altitude, battery, charging, alarm, attributes, received_at, valid"
)

_COMMENTS = """
    COMMENT ON COLUMN position.grid_id IS 'the grid covering the fix';
    COMMENT ON COLUMN position.valid IS
        'false: the device marked it invalid; it does not move the zone state';
    CREATE INDEX ix_position_elder_time ON position (elder_id, time);
    CREATE INDEX ix_position_time ON position (time);
    ALTER SEQUENCE position_id_seq OWNED BY position.id;
    GRANT SELECT, INSERT, UPDATE, DELETE ON position TO gridwork_app;
"""

_MAKE = r"""
CREATE FUNCTION make_position_partitions(first_day date, last_day date) RETURNS integer
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
    alert_ids integer[];
    fix_ids bigint[];
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
        -- Built apart, filled from the default partition, then attached: attaching locks
        -- the table far less than CREATE … PARTITION OF, and the default partition must
        -- hold no row of the new day when it is attached. Moving a fix deletes it, which
        -- empties the references of its alerts (ON DELETE SET NULL): they are put back.
        LOCK TABLE public.position_default IN ACCESS EXCLUSIVE MODE;
        SELECT array_agg(id), array_agg(position_id) INTO alert_ids, fix_ids
        FROM public.alert WHERE position_time >= lo AND position_time < hi;
        EXECUTE format('CREATE TABLE public.%I (LIKE public.position INCLUDING DEFAULTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM public.position_default WHERE time >= $1 AND time < $2 '
            'RETURNING %2$s) INSERT INTO public.%1$I (%2$s) SELECT %2$s FROM moved',
            part, columns)
            USING lo, hi;
        EXECUTE format(
            'ALTER TABLE public.position ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
            part, lo, hi);
        UPDATE public.alert a SET position_id = r.fix_id, position_time = p.time
        FROM unnest(alert_ids, fix_ids) AS r(alert_id, fix_id)
        JOIN public.position p ON p.id = r.fix_id AND p.time >= lo AND p.time < hi
        WHERE a.id = r.alert_id;
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
"""

_DROP = r"""
CREATE FUNCTION drop_position_partitions(cutoff timestamptz) RETURNS bigint
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
        -- What ON DELETE SET NULL would have done; PostgreSQL refuses to detach a partition
        -- that alerts still point into.
        UPDATE public.alert SET position_id = NULL, position_time = NULL
        WHERE position_time >= part.lo AND position_time < part.hi;
        EXECUTE format('SELECT count(*) FROM public.%I', part.relname) INTO n;
        EXECUTE format('ALTER TABLE public.position DETACH PARTITION public.%I', part.relname);
        EXECUTE format('DROP TABLE public.%I', part.relname);
        dropped := dropped + n;
    END LOOP;
    RETURN dropped;
END
$$;
"""

_FUNCTIONS = "make_position_partitions(date, date)", "drop_position_partitions(timestamptz)"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE alert DROP CONSTRAINT fk_alert_position_id_position,
            ADD COLUMN position_time timestamptz;
        UPDATE alert a SET position_time = p.time FROM position p WHERE p.id = a.position_id;
        ALTER TABLE position RENAME TO position_plain;
        ALTER TABLE position_plain RENAME CONSTRAINT pk_position TO pk_position_plain;
        ALTER TABLE position_plain
            RENAME CONSTRAINT uq_position_device_time TO uq_position_plain_device_time;
        ALTER INDEX ix_position_elder_time RENAME TO ix_position_plain_elder_time;
        ALTER INDEX ix_position_time RENAME TO ix_position_plain_time;
        ALTER SEQUENCE position_id_seq OWNED BY NONE;
        CREATE TABLE position (
            id bigint NOT NULL DEFAULT nextval('position_id_seq'),
            {_COLUMNS},
            CONSTRAINT pk_position PRIMARY KEY (id, time)
        ) PARTITION BY RANGE (time);
        {_COMMENTS}
        CREATE TABLE position_default PARTITION OF position DEFAULT;
        """  # noqa: S608
    )
    op.execute(_MAKE)
    op.execute(_DROP)
    for function in _FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO gridwork_app")
    op.execute(
        f"""
        SELECT make_position_partitions(today - 31, today + 7)
        FROM (SELECT (now() AT TIME ZONE 'UTC')::date AS today) t;
        SELECT make_position_partitions(day, day)
        FROM (SELECT DISTINCT (time AT TIME ZONE 'UTC')::date AS day FROM position_plain) d;
        INSERT INTO position ({_NAMES}) SELECT {_NAMES} FROM position_plain;
        DROP TABLE position_plain;
        ALTER TABLE alert
            ADD CONSTRAINT fk_alert_position_id_position FOREIGN KEY (position_id, position_time)
                REFERENCES position (id, time) ON DELETE SET NULL ON UPDATE CASCADE,
            ADD CONSTRAINT ck_alert_position_ref
                CHECK ((position_id IS NULL) = (position_time IS NULL));
        CREATE INDEX ix_alert_position_time ON alert (position_time);
        ANALYZE position;
        """  # noqa: S608
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE alert DROP CONSTRAINT fk_alert_position_id_position,
            DROP CONSTRAINT ck_alert_position_ref;
        DROP INDEX ix_alert_position_time;
        ALTER TABLE alert DROP COLUMN position_time;
        DROP FUNCTION make_position_partitions(date, date);
        DROP FUNCTION drop_position_partitions(timestamptz);
        ALTER TABLE position RENAME TO position_parted;
        ALTER TABLE position_parted RENAME CONSTRAINT pk_position TO pk_position_parted;
        ALTER TABLE position_parted
            RENAME CONSTRAINT uq_position_device_time TO uq_position_parted_device_time;
        ALTER INDEX ix_position_elder_time RENAME TO ix_position_parted_elder_time;
        ALTER INDEX ix_position_time RENAME TO ix_position_parted_time;
        ALTER SEQUENCE position_id_seq OWNED BY NONE;
        CREATE TABLE position (
            id bigint NOT NULL DEFAULT nextval('position_id_seq'),
            {_COLUMNS},
            CONSTRAINT pk_position PRIMARY KEY (id)
        );
        {_COMMENTS}
        INSERT INTO position ({_NAMES}) SELECT {_NAMES} FROM position_parted;
        DROP TABLE position_parted;
        ALTER TABLE alert ADD CONSTRAINT fk_alert_position_id_position FOREIGN KEY (position_id)
            REFERENCES position (id) ON DELETE SET NULL;
        ANALYZE position;
        """  # noqa: S608
    )
