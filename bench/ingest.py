"""Benchmark: 1,000 wearables posting OsmAnd fixes at once to a real gridwork server.

Run ``python -m bench.ingest`` (loopback only; bounded by ``--rounds`` and ``--max-seconds``).

What it does, all on 127.0.0.1:

1. a fresh private database ``gridwork_bench_ingest`` in gridwork's own PostGIS cluster, with
   the synthetic district's streets, communities, workers and grids (Karamay, so GCJ-02
   applies), and ``--devices`` elders enrolled with consent, each device with its own API
   key; a third of the devices report GCJ-02 and a third BD-09;
2. ``uvicorn api.app:create_app --factory`` in a subprocess (``--workers`` processes);
3. ``--rounds`` rounds in which every device posts one fix at the same moment (GET
   ``/ingest/osmand?key=…``, as Traccar Client does), through an httpx client holding at most
   ``--concurrency`` requests in flight; in the last round a tenth of the devices step far
   outside their safe zone, which must raise one ``left_zone`` alert each.

It reports throughput, p50/p99 latency of the answers, and checks that the fixes stored equal
the 200 answers (an answer is sent only after the fix is committed). Fix → alert: the time
from sending an exit fix to the alert row's ``clock_timestamp()`` (same host, same clock),
and the answer's latency, by which the alert is committed.

The client, the server and PostgreSQL share the machine's cores: on 2 cores the numbers are
those of all three together, not of the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from data import care
from data.cluster import LocalCluster, ensure_database
from data.db import make_engine, migrate, transaction
from data.loading import import_file
from data.models_care import DeviceDatum
from data.queries.access import AreaScope
from data.settings import Settings
from geo.datum import from_wgs84

ROOT = Path(__file__).resolve().parent.parent
DISTRICT = ROOT / "data" / "samples" / "synthetic-district" / "synthetic-district.gpkg"
DATABASE = "gridwork_bench_ingest"
HOME_GRID = "S01-C01-G05"
MAX_FIXES = 200_000
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class Device:
    code: str
    key: str
    datum: DeviceDatum
    lon: float  # home, WGS-84
    lat: float


def _fresh_database(settings: Settings) -> str:
    """A new bench database in the private cluster (or next to DATABASE_URL's)."""
    server = settings.database_url or LocalCluster(settings.state_path, settings.database_name).up()
    base = server.rsplit("/", 1)[0]
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    url = f"{base}/{DATABASE}"
    ensure_database(url, DATABASE)
    migrate(url)
    return url


def prepare(url: str, n_devices: int) -> list[Device]:
    engine = make_engine(url)
    try:
        for kind in ("streets", "communities", "workers", "grids"):
            import_file(engine, kind, DISTRICT, layer=kind)
        with transaction(engine) as session:
            home = session.execute(
                text(
                    "INSERT INTO household (code, size, lives_alone, estimated, geom) "
                    "SELECT 'H-BENCH', 1, true, false, ST_PointOnSurface(geom) FROM grid "
                    "WHERE code = :g RETURNING ST_X(geom), ST_Y(geom)"
                ),
                {"g": HOME_GRID},
            ).one()
            epsg = care.require_epsg(
                int(
                    session.execute(
                        text("SELECT value FROM deployment_setting WHERE key = 'metric_epsg'")
                    ).scalar_one()
                )
            )
            consent = care.ConsentRecord("bench", date.today(), "benchmark")
            datums = (DeviceDatum.wgs84, DeviceDatum.gcj02, DeviceDatum.bd09)
            devices = []
            for i in range(n_devices):
                code = f"bench-{i:05d}"
                enrolled = care.enrol(
                    session,
                    display_name=f"Bench elder {i}",
                    household_code="H-BENCH",
                    emergency_contact=None,
                    device_code=code,
                    datum=datums[i % 3],
                    consent=consent,
                    by="bench",
                    scope=AreaScope.everywhere(),
                    epsg=epsg,
                )
                devices.append(Device(code, enrolled.api_key, datums[i % 3], home[0], home[1]))
    finally:
        engine.dispose()
    return devices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GRIDWORK_SECRET_KEY": secrets.token_urlsafe(48),
        "GRIDWORK_INGEST_PER_MINUTE": str(10**9),
        "GRIDWORK_CARE_TICK_SECONDS": "0",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not answer /health within 60 s")


@dataclass
class Outcome:
    latencies: list[float]
    statuses: dict[int, int]
    exit_sent: dict[str, float]  # device code → wall-clock send time of its exit fix
    exit_latency: list[float]
    seconds: float


async def run_load(
    base_url: str,
    devices: list[Device],
    *,
    rounds: int,
    concurrency: int,
    max_seconds: float,
    exit_share: float,
    per_request: int = 1,
) -> Outcome:
    rng = np.random.default_rng(20261126)
    start_fix = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=rounds + 60)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    outcome = Outcome([], {}, {}, [], 0.0)
    n_exit = int(len(devices) * exit_share)
    began = time.perf_counter()

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        def fix(device: Device, round_no: int, leave: bool) -> dict[str, str]:
            # Near home (within ~30 m), or ~2.3 km east in the exit round.
            lon = device.lon + (0.03 if leave else rng.uniform(-3e-4, 3e-4))
            lat = device.lat + rng.uniform(-2e-4, 2e-4)
            x, y = from_wgs84(lon, lat, device.datum.value)
            when = start_fix + timedelta(seconds=round_no)
            return {
                "id": device.code,
                "lat": f"{y:.7f}",
                "lon": f"{x:.7f}",
                "timestamp": str(int(when.timestamp())),
                "accuracy": "10",
                "batt": "80",
            }

        async def post(device: Device, group: list[int], leave: bool) -> None:
            fixes = [fix(device, r, leave and r == rounds - 1) for r in group]
            async with gate:
                sent_wall = time.time()
                t0 = time.perf_counter()
                if per_request == 1:
                    params = {**fixes[0], "key": device.key}
                    response = await client.get("/ingest/osmand", params=params)
                else:
                    response = await client.post(
                        "/ingest/batch", json={"fixes": fixes}, headers={"X-API-Key": device.key}
                    )
                elapsed = time.perf_counter() - t0
            outcome.latencies.append(elapsed)
            status = response.status_code
            outcome.statuses[status] = outcome.statuses.get(status, 0) + len(fixes)
            if leave and status == 200 and rounds - 1 in group:
                outcome.exit_sent[device.code] = sent_wall
                outcome.exit_latency.append(elapsed)

        for first in range(0, rounds, per_request):
            if time.perf_counter() - began > max_seconds:
                console.print(f"[yellow]stopping after {first} rounds: --max-seconds reached")
                break
            group = list(range(first, min(first + per_request, rounds)))
            await asyncio.gather(*(post(d, group, i < n_exit) for i, d in enumerate(devices)))
    outcome.seconds = time.perf_counter() - began
    return outcome


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1000 if values else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="fixes per device")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--exit-share", type=float, default=0.1)
    parser.add_argument(
        "--per-request",
        type=int,
        default=1,
        help="fixes per request: 1 = OsmAnd GET; more = a device's buffer via /ingest/batch",
    )
    args = parser.parse_args(argv)
    if args.devices * args.rounds > MAX_FIXES:
        parser.error(f"at most {MAX_FIXES} fixes per run")

    settings = Settings()
    console.print("preparing the bench database …")
    url = _fresh_database(settings)
    t0 = time.perf_counter()
    devices = prepare(url, args.devices)
    console.print(f"enrolled {len(devices)} devices in {time.perf_counter() - t0:.1f} s")
    port = _free_port()
    server = start_server(url, port, args.workers)
    try:
        outcome = asyncio.run(
            run_load(
                f"http://127.0.0.1:{port}",
                devices,
                rounds=args.rounds,
                concurrency=args.concurrency,
                max_seconds=args.max_seconds,
                exit_share=args.exit_share,
                per_request=args.per_request,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    engine = make_engine(url)
    with engine.connect() as conn:
        stored = int(conn.execute(text("SELECT count(*) FROM position")).scalar_one())
        alerts = conn.execute(
            text(
                "SELECT d.device_code, extract(epoch FROM a.raised_at) FROM alert a "
                "JOIN device d ON d.elder_id = a.elder_id WHERE a.kind = 'left_zone'"
            )
        ).all()
    engine.dispose()
    ok = outcome.statuses.get(200, 0)
    to_alert = [float(t) - outcome.exit_sent[c] for c, t in alerts if c in outcome.exit_sent]

    table = Table(title=f"OsmAnd ingest, {platform.node()} ({os.cpu_count()} CPUs)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("devices × rounds", f"{len(devices)} × {args.rounds}"),
        ("server workers / client concurrency", f"{args.workers} / {args.concurrency}"),
        ("requests (fixes each)", f"{len(outcome.latencies):,} ({args.per_request})"),
        ("fixes by answer", ", ".join(f"{k}: {v:,}" for k, v in sorted(outcome.statuses.items()))),
        ("throughput (fixes/s)", f"{ok / outcome.seconds:,.0f}"),
        (
            "latency p50 / p99 (ms)",
            f"{_pct(outcome.latencies, 50):.1f} / {_pct(outcome.latencies, 99):.1f}",
        ),
        ("stored fixes == fixes answered 200", f"{stored:,} == {ok:,}: {stored == ok}"),
        ("exit fixes → left_zone alerts", f"{len(outcome.exit_sent)} → {len(alerts)}"),
        (
            "fix sent → alert row p50 / p99 (ms)",
            f"{_pct(to_alert, 50):.1f} / {_pct(to_alert, 99):.1f}",
        ),
        (
            "fix → alert committed (answer) p50 / p99 (ms)",
            f"{_pct(outcome.exit_latency, 50):.1f} / {_pct(outcome.exit_latency, 99):.1f}",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if stored != ok or len(alerts) != len(outcome.exit_sent):
        console.print("[red]MISMATCH: a stored count or an alert count is wrong")
        sys.exit(1)


if __name__ == "__main__":
    main()
