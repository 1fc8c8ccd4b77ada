"""The private cluster: created with a secret, loopback only, restartable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from data.cluster import LocalCluster
from data.server_settings import machine_memory, sized
from data.settings import Settings


@pytest.fixture
def cluster(settings: Settings, server_url: str) -> LocalCluster:
    if settings.database_url:
        pytest.fail("these tests are about the private cluster; unset DATABASE_URL to run them")
    return LocalCluster(settings.state_path, settings.database_name)


def test_status_reports_a_running_cluster(cluster: LocalCluster) -> None:
    status = cluster.status()
    assert status.initialised and status.running and status.port
    assert status.url and "***" in status.url and cluster.password not in status.url


def test_password_file_is_private(cluster: LocalCluster) -> None:
    mode = stat.S_IMODE(os.stat(cluster.home / "password").st_mode)
    assert mode == 0o600


def test_wrong_password_is_refused(cluster: LocalCluster) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            f"postgresql://gridwork:wrong@127.0.0.1:{cluster.port}/postgres", connect_timeout=5
        )


def test_server_listens_on_loopback_only(cluster: LocalCluster) -> None:
    url = cluster.url("postgres").replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()
    assert listen == ("127.0.0.1",)


def test_settings_are_sized_from_the_memory_within_bounds() -> None:
    small, usual, huge = (sized(n << 30) for n in (2, 24, 512))
    assert (small["shared_buffers"], small["max_wal_size"], small["work_mem"]) == (
        "512MB",
        "1024MB",
        "8MB",
    )
    assert (usual["shared_buffers"], usual["effective_cache_size"]) == ("6144MB", "12288MB")
    assert (usual["maintenance_work_mem"], usual["max_wal_size"]) == ("1536MB", "6144MB")
    assert (huge["shared_buffers"], huge["maintenance_work_mem"], huge["work_mem"]) == (
        "8192MB",
        "2048MB",
        "64MB",
    )
    assert sized(64 << 20)["shared_buffers"] == "128MB"  # never below initdb's own
    assert 0 < machine_memory() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_a_started_cluster_runs_with_its_sizing_and_alter_system_still_wins(
    tmp_path: Path,
) -> None:
    """The private cluster starts with the sizing for this machine (not initdb's 128 MB of
    buffers), a cluster made unsized keeps initdb's, and an operator's ALTER SYSTEM is kept
    across the restarts that write the sizing again."""
    expected = sized(machine_memory())
    made: list[LocalCluster] = []

    def show(cluster: LocalCluster, *names: str) -> list[str]:
        with psycopg.connect(cluster.url("postgres").replace("+psycopg", "")) as conn:
            return [str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names]  # type: ignore[index]

    try:
        for name, is_sized in (("sized", True), ("plain", False)):
            cluster = LocalCluster(tmp_path / name, sized=is_sized)
            made.append(cluster)
            cluster.init(sync=False)
            cluster.start()
        sized_cluster, plain = made
        assert show(plain, "shared_buffers", "max_wal_size") == ["128MB", "1GB"]
        buffers, wal = show(sized_cluster, "shared_buffers", "max_wal_size")
        assert (_mb(buffers), _mb(wal)) == (
            _mb(expected["shared_buffers"]),
            _mb(expected["max_wal_size"]),
        )
        url = sized_cluster.url("postgres").replace("+psycopg", "")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET work_mem = '7MB'")
        sized_cluster.stop()
        sized_cluster.start()
        assert show(sized_cluster, "work_mem", "shared_buffers") == ["7MB", buffers]
    finally:
        for cluster in made:
            cluster.remove()


def _mb(setting: str) -> int:
    """A size as SHOW prints it (``6GB``, ``512MB``) in MB."""
    units = {"kB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024}
    for unit, factor in units.items():
        if setting.endswith(unit):
            return round(float(setting[: -len(unit)]) * factor)
    raise ValueError(setting)
