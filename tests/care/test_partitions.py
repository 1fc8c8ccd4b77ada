"""Positions partitioned by day (migration 0019): the periodic task makes a week of partitions
ahead, a fix never waits in the default partition in normal running (and one that had to is
moved out), the purge drops whole days and deletes only within the day straddling the
cut-off, and a withdrawal of consent still deletes an elder's fixes from every day.

The boundary itself (what is kept and removed at 30 days) is tests/care/test_retention.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import care_tasks
from data.care import queries as q
from data.care import service as care_use
from tests.care.conftest import District, count, enrol, osmand

DAYS = 30  # the retention the app under test uses (the setting's default)


def _name(day: date) -> str:
    return f"position_{day:%Y%m%d}"


def _partitions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return q.position_partitions(conn)


def _today() -> date:
    return datetime.now(UTC).date()


def _add_fix(engine: Engine, at: datetime) -> int:
    """Another row of the one stored fix, dated ``at`` (ingest refuses old and future
    fixes); its id."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO position (device_id, elder_id, time, geom, raw_lon, raw_lat) "
                    "SELECT device_id, elder_id, :at, geom, raw_lon, raw_lat FROM position "
                    "LIMIT 1 RETURNING id"
                ),
                {"at": at},
            ).scalar_one()
        )


def _alert_at(engine: Engine, fix_id: int) -> int:
    """An alert raised at the fix ``fix_id``, as ingest raises one (the fix's whole key)."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO alert (elder_id, kind, status, event_time, position_id, "
                    "position_time) SELECT elder_id, 'sos', 'open', time, id, time "
                    "FROM position WHERE id = :p RETURNING id"
                ),
                {"p": fix_id},
            ).scalar_one()
        )


def _where(engine: Engine, fix_id: int) -> str | None:
    """The partition holding the fix, if it is stored."""
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT tableoid::regclass::text FROM position WHERE id = :p"), {"p": fix_id}
        ).scalar_one_or_none()
    return None if value is None else str(value)


def _reference(engine: Engine, alert_id: int) -> tuple[Any, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT position_id, position_time FROM alert WHERE id = :a"), {"a": alert_id}
        ).one()
    return row[0], row[1]


def _first_fix(client: TestClient, staff: dict[str, dict[str, str]], district: District) -> None:
    elder = enrol(client, staff["care_staff"], "watch-days")
    now = datetime.now(UTC).replace(microsecond=0)
    r = osmand(client, elder["api_key"], "watch-days", district.home_lon, district.home_lat, now)
    assert r.status_code == 200, r.text


def test_the_periodic_task_makes_a_week_of_partitions_ahead(care_app: Any, care: Engine) -> None:
    today = _today()
    ahead = [_name(today + timedelta(days=n)) for n in range(care_use.PARTITIONS_AHEAD + 1)]
    with care.begin() as conn:  # as if the task had not run for a while
        for name in set(ahead[1:]) & set(_partitions(care)):
            conn.execute(text(f"ALTER TABLE position DETACH PARTITION {name}"))
            conn.execute(text(f"DROP TABLE {name}"))
    assert not set(ahead[1:]) & set(_partitions(care))

    care_tasks.run_once(care_app, purge_now=True)
    made = _partitions(care)
    assert set(ahead) <= set(made)
    assert made[-1] == "position_default"
    assert _name(today + timedelta(days=care_use.PARTITIONS_AHEAD + 1)) not in made
    # Made once: running again changes nothing.
    assert care_use.make_partitions(care, now=datetime.now(UTC)) == 0


def test_fixes_sent_now_land_in_their_days_partition_never_the_default(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    care_use.make_partitions(care, now=datetime.now(UTC))  # the periodic task's work
    elder = enrol(client, staff["care_staff"], "watch-today")
    now = datetime.now(UTC).replace(microsecond=0)
    for seconds in (0, 60, 120):
        at = now - timedelta(seconds=seconds)
        r = osmand(
            client, elder["api_key"], "watch-today", district.home_lon, district.home_lat, at
        )
        assert r.status_code == 200, r.text
    with care.connect() as conn:
        where = conn.execute(
            text("SELECT tableoid::regclass::text, (time AT TIME ZONE 'UTC')::date FROM position")
        ).all()
    assert len(where) == 3
    assert all(partition == _name(day) for partition, day in where), where
    assert count(care, "SELECT count(*) FROM position_default") == 0


def test_a_fix_for_a_day_without_partition_waits_in_the_default_and_is_moved_out(
    client: TestClient,
    care_app: Any,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    _first_fix(client, staff, district)
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    assert _name(far.date()) not in _partitions(care)
    fix = _add_fix(care, far)  # it is not refused
    assert _where(care, fix) == "position_default"
    alert = _alert_at(care, fix)

    care_tasks.run_once(care_app, purge_now=True)
    assert _where(care, fix) == _name(far.date())
    assert count(care, "SELECT count(*) FROM position_default") == 0
    assert _reference(care, alert) == (fix, far)  # the alert still names its fix


def test_the_purge_drops_whole_days_and_deletes_only_in_the_day_straddling_the_cutoff(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    _first_fix(client, staff, district)
    now = datetime.now(UTC).replace(microsecond=0)
    cutoff = now - timedelta(days=DAYS)
    old = [cutoff.date() - timedelta(days=n) for n in (3, 2, 1)]
    with care.begin() as conn:  # (the app's role may call it too: tests/data)
        conn.execute(
            text("SELECT make_position_partitions(:a, :b)"), {"a": old[0], "b": cutoff.date()}
        )
    noon = [datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12) for day in old]
    dropped = [_add_fix(care, at) for at in (*noon, noon[0] + timedelta(hours=1))]
    straddling = cutoff.date()
    before_cut = _add_fix(care, cutoff - timedelta(microseconds=1))
    kept = _add_fix(care, cutoff)
    alert = _alert_at(care, dropped[0])
    assert _where(care, before_cut) == _name(straddling)
    stored = count(care, "SELECT count(*) FROM position")

    assert care_use.purge(care, now=now, retention=timedelta(days=DAYS)) == len(dropped) + 1
    remaining = _partitions(care)
    assert not {_name(day) for day in old} & set(remaining)  # dropped, not emptied
    assert _name(straddling) in remaining  # emptied only before the cut-off
    assert _where(care, kept) == _name(straddling)
    assert _where(care, before_cut) is None
    assert count(care, "SELECT count(*) FROM position") == stored - len(dropped) - 1
    assert _reference(care, alert) == (None, None)  # the alert stays, without its fix
    assert care_use.purge(care, now=now, retention=timedelta(days=DAYS)) == 0


def test_withdrawing_consent_deletes_the_elders_fixes_from_every_day(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-withdraw")
    now = datetime.now(UTC).replace(microsecond=0)
    r = osmand(
        client, elder["api_key"], "watch-withdraw", district.home_lon, district.home_lat, now
    )
    assert r.status_code == 200, r.text
    with care.begin() as conn:  # (an earlier test may have purged with a shorter retention)
        conn.execute(
            text("SELECT make_position_partitions(:a, :b)"),
            {"a": now.date() - timedelta(days=12), "b": now.date()},
        )
    fixes = [_add_fix(care, now - timedelta(days=n)) for n in (1, 5, 12)]
    fixes.append(_add_fix(care, now + timedelta(days=60)))  # the default partition
    alert = _alert_at(care, fixes[1])
    days = {_where(care, fix) for fix in fixes}
    assert len(days) == 4 and "position_default" in days

    r = client.delete(
        f"/elders/{elder['id']}/consent",
        params={"delete_positions": "true"},
        headers=staff["care_staff"],
    )
    assert r.status_code == 200, r.text
    assert count(care, "SELECT count(*) FROM position") == 0
    assert _reference(care, alert) == (None, None)


def test_the_daily_partition_work_waits_for_no_reader_of_grids_devices_elders_or_alerts(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """A plan's publication read the grids, the purge queued for an exclusive lock on them
    (a day partition's foreign keys), the publication went on to write a grid: deadlock.
    Now the purge and the maker lock ``position`` only, so a transaction that holds those
    tables goes on, and writes, while they run, and the day goes by drop, not by DELETE."""
    _first_fix(client, staff, district)
    now = datetime.now(UTC).replace(microsecond=0)
    old = (now - timedelta(days=DAYS + 2)).date()
    with care.begin() as conn:
        conn.execute(text("SELECT make_position_partitions(:d, :d)"), {"d": old})
    _alert_at(care, _add_fix(care, datetime.combine(old, datetime.min.time(), UTC)))
    ahead = (now + timedelta(days=90)).date()
    with care.connect() as reader:
        publication = reader.begin()  # e.g. a publication, before its UPDATE
        for table in ("grid", "device", "elder", "alert"):
            reader.execute(text(f"SELECT count(*) FROM {table}"))

        assert care_use.purge(care, now=now, retention=timedelta(days=DAYS)) == 1
        assert _name(old) not in _partitions(care)  # dropped within its 2 s, not deleted
        with care.begin() as conn:
            made = q.make_position_partitions(conn, first_day=ahead, last_day=ahead)
        assert made == 1
        reader.execute(text("UPDATE grid SET worker_id = worker_id"))  # and it goes on
        publication.rollback()


def test_deleting_an_elder_or_a_device_however_deletes_their_fixes(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """What the foreign keys' ON DELETE CASCADE did, the triggers of migration 0027 do: a
    DELETE by hand or a TRUNCATE leaves no fix behind, and an alert loses its reference."""
    _first_fix(client, staff, district)
    other = enrol(client, staff["care_staff"], "watch-other")
    now = datetime.now(UTC).replace(microsecond=0)
    r = osmand(client, other["api_key"], "watch-other", district.home_lon, district.home_lat, now)
    assert r.status_code == 200, r.text
    fixes = count(care, "SELECT count(*) FROM position")
    mine = count(care, "SELECT count(*) FROM position WHERE elder_id = :e", e=other["id"])
    assert mine >= 1
    assert fixes > mine
    with care.begin() as conn:
        conn.execute(text("DELETE FROM device WHERE elder_id = :e"), {"e": other["id"]})
    assert count(care, "SELECT count(*) FROM position") == fixes - mine

    fix = _add_fix(care, now - timedelta(hours=1))
    alert = _alert_at(care, fix)
    with care.begin() as conn:
        conn.execute(text("DELETE FROM position WHERE id = :p"), {"p": fix})
    assert _reference(care, alert) == (None, None)

    with care.connect() as conn:  # the district's grids are the module's: rolled back
        by_hand = conn.begin()
        conn.execute(text("UPDATE position SET grid_id = (SELECT min(id) FROM grid)"))
        conn.execute(text("DELETE FROM grid WHERE id = (SELECT min(id) FROM grid)"))
        left = conn.execute(text("SELECT count(grid_id), count(*) FROM position")).one()
        by_hand.rollback()
    assert tuple(left) == (0, fixes - mine)
    with care.begin() as conn:
        conn.execute(text("TRUNCATE elder CASCADE"))
    assert count(care, "SELECT count(*) FROM position") == 0
