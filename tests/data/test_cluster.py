"""The private cluster: created with a secret, loopback only, restartable."""

from __future__ import annotations

import os
import stat

import psycopg
import pytest

from data.cluster import LocalCluster
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
