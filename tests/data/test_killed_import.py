"""A bulk import killed midway leaves no partial rows (one transaction, nothing committed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, own_database

ROWS = 300_000
GRIDWORK = Path(sys.executable).with_name("gridwork")


def _points_csv(path: Path) -> Path:
    """300,000 clinics on a 1,000 × 300 lattice in Porto (CSV lon/lat, EPSG:4326 by name)."""
    with path.open("w") as f:
        f.write("source_id,kind,name,lon,lat\n")
        f.writelines(
            f"k{i},clinic,Clinic {i},{-8.62 + (i % 1000) * 1e-5:.6f},"
            f"{41.14 + (i // 1000) * 1e-5:.6f}\n"
            for i in range(ROWS)
        )
    return path


def _copy_backends(conn: psycopg.Connection, database: str) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND query ILIKE 'COPY _stage%%'",
        (database,),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.timeout(90)
def test_import_killed_during_copy_leaves_no_rows(server_url: str, tmp_path: Path) -> None:
    url = own_database(server_url, "gridwork_test_killed_import")
    database = url.rsplit("/", 1)[1]
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    csv = _points_csv(tmp_path / "clinics.csv")
    env = {**os.environ, "DATABASE_URL": url}
    log = (tmp_path / "import.log").open("w")
    proc = subprocess.Popen(
        [str(GRIDWORK), "import", "facilities", str(csv)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    with psycopg.connect(libpq, autocommit=True) as watcher:
        try:
            deadline = time.monotonic() + 60
            copying: list[int] = []
            while not copying and proc.poll() is None and time.monotonic() < deadline:
                copying = _copy_backends(watcher, database)
                time.sleep(0.01)
            assert copying, f"the COPY was never seen; import log: {log.name}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
            log.close()
        assert proc.returncode == -signal.SIGKILL, "the import finished before it was killed"

        # The server notices the dead client and rolls its transaction back.
        deadline = time.monotonic() + 20
        while _backend_alive(watcher, copying) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _backend_alive(watcher, copying)
        assert watcher.execute("SELECT count(*) FROM facility").fetchone() == (0,)
        held = watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = 'facility'::regclass"
        ).fetchone()
        assert held == (0,)


def _backend_alive(conn: psycopg.Connection, pids: list[int]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
    ).fetchone()
    return bool(row and row[0])
