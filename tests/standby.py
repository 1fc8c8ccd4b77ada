"""A primary and its hot standby, two private clusters of their own, for the replica tests.

The suite's shared cluster is not copied: ``pg_basebackup`` would copy every worker's test
databases and stream their writes. Here a fresh primary is made (``initdb``, PostGIS, and
the migrations when asked), then its standby by ``pg_basebackup -R``
(:func:`data.replica.make_standby`), both in a temporary folder of their own with ports of
their own, so pytest-xdist workers never meet, and both are removed at the end.
Missing server binaries (``pg_basebackup`` included) fail the test with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from data.cluster import LocalCluster
from data.db import migrate
from data.replica import make_standby


@dataclass(frozen=True)
class Pair:
    primary: LocalCluster
    standby: LocalCluster

    def superuser(self, cluster: LocalCluster) -> psycopg.Connection:
        """A superuser's connection (replay control, LSNs), autocommit."""
        url = cluster.url().replace("postgresql+psycopg://", "postgresql://")
        return psycopg.connect(url, autocommit=True, connect_timeout=5)

    def pause_replay(self) -> None:
        with self.superuser(self.standby) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self.superuser(self.standby) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def wait_for_replay(self, within_s: float = 15.0) -> None:
        """Until the standby has replayed everything the primary has written by now."""
        with self.superuser(self.primary) as conn, conn.transaction():
            # A commit flushes what is before it (data.replica._PRIMARY_LSN says why).
            found = conn.execute(
                "SELECT pg_current_xact_id(), pg_current_wal_insert_lsn()"
            ).fetchone()
        assert found is not None
        target = found[1]
        deadline = time.monotonic() + within_s
        with self.superuser(self.standby) as conn:
            while True:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()[0]  # type: ignore[index]
                if done:
                    return
                assert time.monotonic() < deadline, f"the standby did not reach {target}"
                time.sleep(0.02)


@contextmanager
def primary_and_standby(*, migrated: bool) -> Iterator[Pair]:
    """Both clusters running, the standby streaming from the primary; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="gridwork-replica-"))
    os.chmod(root, 0o711)  # run as root, the postgres user passes through
    primary = LocalCluster(root / "primary", "gridwork")
    standby = LocalCluster(root / "standby", "gridwork")
    try:
        primary.init(sync=False)  # a throw-away cluster: no fsync of initdb's files
        url = primary.up()
        pair = Pair(primary, standby)
        with pair.superuser(primary) as conn:  # ... nor of anything else (the copy too)
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("SELECT pg_reload_conf()")
        if migrated:
            migrate(url)
        make_standby(primary, root / "standby", sync=False)
        standby.start()
        yield pair
    finally:
        try:
            standby.remove()
        finally:
            primary.remove()
            shutil.rmtree(root, ignore_errors=True)
