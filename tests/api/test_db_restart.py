"""PostGIS restarts under a serving API: 503 while it is down, answers again on its own.

The API runs as a real server (``gridwork serve``) in a subprocess, against a private cluster
of its own in a temporary state folder, so stopping PostgreSQL disturbs no other test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from data.cluster import LocalCluster, _free_port
from tests.conftest import ROOT

GRIDWORK = Path(sys.executable).with_name("gridwork")


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "state", "gridwork")
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.stop()
        # As root the server's files live outside tmp_path (postgres cannot enter it).
        if not cluster.server_dir.is_relative_to(tmp_path):
            shutil.rmtree(cluster.server_dir, ignore_errors=True)


@pytest.fixture
def server(own_cluster: LocalCluster, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": own_cluster.url(),
        "GRIDWORK_STATE_DIR": str(tmp_path / "state"),
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(GRIDWORK), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_for(base, 200, within=60), f"the server did not start; see {log.name}"
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _status(base: str) -> int | None:
    try:
        return httpx.get(f"{base}/health", timeout=5).status_code
    except httpx.TransportError:
        return None


def _wait_for(base: str, status: int, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _status(base) == status:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.timeout(120)
def test_api_answers_again_after_postgis_restarts(
    own_cluster: LocalCluster, server: str, tmp_path: Path
) -> None:
    assert httpx.get(f"{server}/health", timeout=5).json()["status"] == "ok"

    own_cluster.stop()
    started = time.monotonic()
    down = httpx.get(f"{server}/health", timeout=5)  # a timeout here would be a hang
    assert down.status_code == 503
    assert down.json()["title"] == "Unavailable"
    assert time.monotonic() - started < 5
    # Every refused request is answered, but the log says so once, not once per request.
    assert {httpx.get(f"{server}/health", timeout=5).status_code for _ in range(20)} == {503}
    logged = (tmp_path / "serve.log").read_text().count("database unavailable")
    assert 1 <= logged <= 2, f"{logged} warnings for 21 refused requests"

    own_cluster.start()
    started = time.monotonic()
    assert _wait_for(server, 200, within=10), "the API did not reconnect on its own"
    assert time.monotonic() - started < 10
    # Every pooled connection died with the server; pre-ping replaces each one, so a burst
    # of requests all succeed.
    assert {httpx.get(f"{server}/health", timeout=5).status_code for _ in range(15)} == {200}
