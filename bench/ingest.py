"""Benchmark: 1,000 wearables posting OsmAnd fixes at once to a real gridwork server.

Run ``python -m bench.ingest`` (loopback only; bounded by ``--rounds`` and ``--max-seconds``).

What it does, all on 127.0.0.1:

1. a fresh private database ``gridwork_bench_ingest`` in gridwork's own PostGIS cluster, with
   the synthetic district's streets, communities, workers and grids (Karamay, so GCJ-02
   applies), and ``--devices`` elders enrolled with consent, each device with its own API
   key; a third of the devices report GCJ-02 and a third BD-09;
2. ``uvicorn api.app:create_app --factory`` in a subprocess (``--workers`` processes);
3. ``--rounds`` rounds in which every device sends one fix at the same moment (GET
   ``/ingest/osmand?key=…``, as Traccar Client does) over ``--concurrency`` keep-alive
   connections; in the last round a tenth of the devices step far outside their safe zone,
   which must raise one ``left_zone`` alert each;
4. unless ``--no-restart-postgis``, the private PostGIS is restarted (``pg_ctl stop -m fast``,
   then start) at the start of the middle round. Fixes answered 503, or whose connection
   was cut, are sent again 0.2 s later, as Traccar Client retries its buffer.

It reports throughput, p50/p99 latency of the answers, and checks that every fix answered 200
is stored (an answer is sent only after the fix is committed): "acknowledged fixes lost"
must be 0. Fixes stored whose answer the restart cut are counted apart (their retry is a
duplicate, dropped). Fix → alert: the time
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
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.bench_db import fresh_database
from bench.http_client import Connection
from data.access.queries import AreaScope
from data.care import service as care
from data.cluster import LocalCluster
from data.crs import require_epsg
from data.db import make_engine, transaction
from data.importing.loading import import_file
from data.models.care import DeviceDatum
from data.settings import Settings
from geo.care.datum import from_wgs84

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
            epsg = require_epsg(
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
                    today=consent.given_on,
                )
                devices.append(Device(code, enrolled.api_key, datums[i % 3], home[0], home[1]))
    finally:
        engine.dispose()
    return devices


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    url: str, port: int, workers: int, batch_max: int = 500, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``env``: more settings for the server (``GRIDWORK_…``), as ``bench.inbox`` gives."""
    env = {
        **(env or {}),
        **os.environ,
        "GRIDWORK_INGEST_BATCH_MAX": str(batch_max),
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
    latencies: list[float]  # of every answered request, any status
    statuses: dict[int | str, int]  # answer status (or "connection") → fixes
    acked: set[tuple[str, int]]  # (device, epoch seconds) answered 200
    exit_sent: dict[str, float]  # device code → wall-clock send time of its exit fix
    exit_latency: list[float]
    retries: int
    seconds: float
    round_seconds: list[float]
    restart_seconds: float | None  # how long PostGIS was down, when it was restarted
    exit_answered: dict[str, float] = field(default_factory=dict)  # device → wall-clock answer


@dataclass(frozen=True)
class Send:
    device: Device
    round_no: int
    leave: bool
    query: str  # the OsmAnd query string, key included
    epoch: int
    attempt: int = 0


def restart_postgis(settings: Settings) -> float:
    """Stop the private cluster (fast: in-flight transactions are cut) and start it again."""
    cluster = LocalCluster(settings.state_path, settings.database_name)
    t0 = time.perf_counter()
    cluster.stop()
    cluster.start()
    return time.perf_counter() - t0


async def run_load(
    port: int,
    devices: list[Device],
    *,
    rounds: int,
    concurrency: int,
    max_seconds: float,
    exit_share: float,
    restart: Callable[[], float] | None = None,
    retry_s: float = 0.2,
    leaves: Callable[[int, int], bool] | None = None,
) -> Outcome:
    """Every round, every device sends one fix at the same moment; ``concurrency``
    connections carry them. A fix answered 503 or cut by a dropped connection is sent again
    after ``retry_s`` (Traccar Client keeps unsent fixes and retries); other answers are
    final. With ``restart``, PostGIS is restarted in the middle round. ``leaves(i, round)``:
    whether device ``i`` steps out in that round (default: the first ``exit_share`` of them,
    in the last round)."""
    rng = np.random.default_rng(20261126)
    start_fix = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=rounds + 60)
    outcome = Outcome([], {}, set(), {}, [], 0, 0.0, [], None)
    n_exit = int(len(devices) * exit_share)
    queue: asyncio.Queue[Send] = asyncio.Queue()
    pending = 0
    round_done = asyncio.Event()
    began = time.perf_counter()

    def make(device: Device, round_no: int, leave: bool) -> Send:
        # Near home (within ~30 m), or ~2.3 km east in the exit round.
        lon = device.lon + (0.03 if leave else rng.uniform(-3e-4, 3e-4))
        lat = device.lat + rng.uniform(-2e-4, 2e-4)
        x, y = from_wgs84(lon, lat, device.datum.value)
        epoch = int((start_fix + timedelta(seconds=round_no)).timestamp())
        query = urllib.parse.urlencode(
            {
                "id": device.code,
                "lat": f"{y:.7f}",
                "lon": f"{x:.7f}",
                "timestamp": str(epoch),
                "accuracy": "10",
                "batt": "80",
                "key": device.key,
            }
        )
        return Send(device, round_no, leave, query, epoch)

    def finished() -> None:
        nonlocal pending
        pending -= 1
        if pending == 0:
            round_done.set()

    async def later(item: Send) -> None:
        await asyncio.sleep(retry_s)
        queue.put_nowait(item)

    async def worker() -> None:
        connection = Connection(port)
        retrying: set[asyncio.Task[None]] = set()
        while True:
            item = await queue.get()
            sent_wall = time.time()
            t0 = time.perf_counter()
            try:
                status: int | str = await connection.get(f"/ingest/osmand?{item.query}")
            except ConnectionError:
                status = "connection"
            elapsed = time.perf_counter() - t0
            outcome.latencies.append(elapsed)
            if status in (503, "connection") and time.perf_counter() - began < max_seconds:
                outcome.retries += 1
                task = asyncio.create_task(
                    later(Send(**{**item.__dict__, "attempt": item.attempt + 1}))
                )
                retrying.add(task)
                task.add_done_callback(retrying.discard)
                continue
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            if status == 200:
                outcome.acked.add((item.device.code, item.epoch))
                if item.leave:
                    outcome.exit_sent[item.device.code] = sent_wall
                    outcome.exit_answered[item.device.code] = time.time()
                    outcome.exit_latency.append(elapsed)
            finished()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    restarter: asyncio.Task[float] | None = None
    try:
        for round_no in range(rounds):
            if time.perf_counter() - began > max_seconds:
                console.print(f"[yellow]stopping after {round_no} rounds: --max-seconds reached")
                break
            round_done.clear()
            round_began = time.perf_counter()
            pending = len(devices)
            for i, device in enumerate(devices):
                if leaves is None:
                    leave = i < n_exit and round_no == rounds - 1
                else:
                    leave = leaves(i, round_no)
                queue.put_nowait(make(device, round_no, leave))
            if restart is not None and round_no == rounds // 2:
                restarter = asyncio.create_task(asyncio.to_thread(restart))
            await round_done.wait()
            outcome.round_seconds.append(time.perf_counter() - round_began)
        if restarter is not None:
            outcome.restart_seconds = await restarter
    finally:
        for task in workers:
            task.cancel()
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
        "--restart-postgis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restart the private PostGIS in the middle round (not with DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if args.devices * args.rounds > MAX_FIXES:
        parser.error(f"at most {MAX_FIXES} fixes per run")

    settings = Settings()
    restart = args.restart_postgis
    if restart and settings.database_url:
        console.print("[yellow]DATABASE_URL is set: not restarting someone else's server")
        restart = False
    modes = {"group commit": 500, "one commit per request": 1}
    results = {
        name: run_once(settings, args, batch_max, restart) for name, batch_max in modes.items()
    }

    table = Table(title=f"OsmAnd ingest, {platform.node()} ({os.cpu_count()} CPUs), same run")
    table.add_column("measure")
    for name in modes:
        table.add_column(name, justify="right")
    for measure in results["group commit"]:
        table.add_row(measure, *(results[name][measure] for name in modes))
    console.print(table)
    grouped, single = (
        float(results[n]["throughput (fixes acknowledged / s)"].replace(",", "")) for n in modes
    )
    console.print(f"group commit ÷ one commit per request, throughput: {grouped / single:.2f}×")
    failed = [
        n
        for n in modes
        if results[n]["acknowledged fixes lost"] != "0" or results[n]["alerts ok"] != "yes"
    ]
    if failed:
        console.print(
            f"[red]FAILED ({', '.join(failed)}): an acknowledged fix was lost, "
            "or an alert count is wrong"
        )
        sys.exit(1)


def run_once(
    settings: Settings, args: argparse.Namespace, batch_max: int, restart: bool
) -> dict[str, str]:
    """A fresh database and server, the load, and what was stored; measures as strings."""
    console.print(f"preparing the bench database (group commit of up to {batch_max}) …")
    url = fresh_database(DATABASE)
    t0 = time.perf_counter()
    devices = prepare(url, args.devices)
    console.print(f"enrolled {len(devices)} devices in {time.perf_counter() - t0:.1f} s")
    port = _free_port()
    server = start_server(url, port, args.workers, batch_max)
    try:
        outcome = asyncio.run(
            run_load(
                port,
                devices,
                rounds=args.rounds,
                concurrency=args.concurrency,
                max_seconds=args.max_seconds,
                exit_share=args.exit_share,
                restart=(lambda: restart_postgis(settings)) if restart else None,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    engine = make_engine(url)
    with engine.connect() as conn:
        stored = {
            (str(code), int(epoch))
            for code, epoch in conn.execute(
                text(
                    "SELECT d.device_code, extract(epoch FROM p.time)::bigint "
                    "FROM position p JOIN device d ON d.id = p.device_id"
                )
            )
        }
        alerts = conn.execute(
            text(
                "SELECT d.device_code, extract(epoch FROM a.raised_at) FROM alert a "
                "JOIN device d ON d.elder_id = a.elder_id WHERE a.kind = 'left_zone'"
            )
        ).all()
    engine.dispose()
    ok = len(outcome.acked)
    lost = outcome.acked - stored
    unanswered = stored - outcome.acked
    to_alert = [float(t) - outcome.exit_sent[c] for c, t in alerts if c in outcome.exit_sent]
    answered = outcome.latencies
    warm = sorted(len(devices) / t for t in outcome.round_seconds[1:])
    restart_note = (
        "no"
        if outcome.restart_seconds is None
        else f"round {args.rounds // 2 + 1}, down {outcome.restart_seconds:.1f} s"
    )
    return {
        "devices × rounds": f"{len(devices)} × {args.rounds}",
        "server workers / client connections": f"{args.workers} / {args.concurrency}",
        "PostGIS restarted during the run": restart_note,
        "requests sent (retries after 503 / cut connection)": (
            f"{len(answered):,} ({outcome.retries:,})"
        ),
        "final answers": ", ".join(
            f"{k}: {v:,}" for k, v in sorted(outcome.statuses.items(), key=str)
        ),
        "throughput (fixes acknowledged / s)": f"{ok / outcome.seconds:,.0f}",
        "fixes / s, first round (server just started)": (
            f"{len(devices) / outcome.round_seconds[0]:,.0f}" if outcome.round_seconds else "-"
        ),
        "fixes / s, later rounds (median)": f"{warm[len(warm) // 2]:,.0f}" if warm else "-",
        "latency p50 / p99 (ms, every request)": (
            f"{_pct(answered, 50):.1f} / {_pct(answered, 99):.1f}"
        ),
        "acknowledged fixes lost": f"{len(lost):,}",
        "stored but unacknowledged (answer cut by the restart)": f"{len(unanswered):,}",
        "exit fixes → left_zone alerts": f"{len(outcome.exit_sent)} → {len(alerts)}",
        "alerts ok": "yes" if len(alerts) == len(outcome.exit_sent) else "no",
        "fix sent → alert row p50 / p99 (ms)": (
            f"{_pct(to_alert, 50):.1f} / {_pct(to_alert, 99):.1f}"
        ),
        "fix → alert committed (answer) p50 / p99 (ms)": (
            f"{_pct(outcome.exit_latency, 50):.1f} / {_pct(outcome.exit_latency, 99):.1f}"
        ),
    }


if __name__ == "__main__":
    main()
