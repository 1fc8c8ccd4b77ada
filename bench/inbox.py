"""Benchmark: how soon an alert reaches 100 open inboxes while a thousand watches report.

Run ``python -m bench.inbox`` (loopback only; bounded by ``--rounds`` and ``--max-seconds``).

The issue's promise (#17): an alert reaches an open inbox within 1 s p99 of its fix being
answered, with 100 inboxes open and the ingest bench's load running. Three ways, each on a
fresh database and server, in the same run:

1. **SSE, woken by NOTIFY** (gridwork's way): ``/app/alerts/stream``; the transaction that
   raises an alert sends ``NOTIFY gridwork_alert`` and every stream looks at once;
2. **SSE, polling the table**: the same stream with ``GRIDWORK_ALERT_STREAM_WAKE=poll``,
   each stream looking at the alert table every 0.5 s (how the inbox first worked);
3. **clients polling** ``GET /alerts`` every ``--poll-every`` seconds (the obvious way).

Each run: ``bench.ingest``'s database (the synthetic district, ``--devices`` enrolled with
consent, a third each WGS-84, GCJ-02, BD-09) plus a care staff account of street S01 (the
elders' home), ``uvicorn --workers 2``, then ``--inboxes`` inboxes opened by that account in a
process of their own (so that the load generator's loop does not delay their clocks), then
``bench.ingest.run_load``: every round every device sends one fix at once; ``--exits``
devices, spread over the rounds, step ~2.3 km out of their safe zone (and back the next
round). Latency is measured per inbox per ``left_zone`` alert: from the moment its exit fix
was *answered* (the alert is committed by then) to the moment the alert was read off that
inbox's connection; same machine, same wall clock. Every inbox must receive every alert.

The client processes, the server and PostgreSQL share the machine's cores: on 2 cores the
numbers are those of all of them together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from api.security import hash_password
from bench.bench_db import fresh_database
from bench.ingest import _free_port, prepare, run_load, start_server
from data.access.queries import add_scope, create_user
from data.db import make_engine, transaction
from data.models import Role, ScopeLevel

DATABASE = "gridwork_bench_inbox"
STAFF = "bench-care"
PASSWORD = "bench inbox password"  # a scratch database on loopback, dropped every run
TARGET_P99_S = 1.0
console = Console(width=None if sys.stdout.isatty() else 160)

# (name, GRIDWORK_ALERT_STREAM_WAKE, inbox kind)
MODES = (
    ("SSE, woken by NOTIFY", "notify", "sse"),
    ("SSE, polling the table every 0.5 s", "poll", "sse"),
    ("clients polling GET /alerts", "notify", "poll"),
)


# --- the inboxes (a process of their own) ---------------------------------------------------


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def _sse_inbox(
    no: int,
    port: int,
    auth: str,
    arrivals: list[tuple[int, int, float]],
    opened: Callable[[], None],
) -> None:
    """One browser tab's EventSource: reads ``data:`` lines as they come; when the server
    ends the stream (its lifetime), connects again from the last alert seen."""
    after: int | None = None
    first = True
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        query = "" if after is None else f"?after={after}"
        writer.write(
            f"GET /app/alerts/stream{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        status, _ = await _read_head(reader)
        if status != 200:
            raise RuntimeError(f"inbox {no}: the stream answered {status}")
        kind = "message"  # an event's type, until the blank line that ends it
        while (line := await reader.readline()) not in (b"", b"0\r\n"):  # end of the chunks
            if line.startswith(b"retry:") and first:
                first = False
                opened()
            elif line.startswith(b"event: "):
                kind = line[len(b"event: ") :].strip().decode()
            elif line.startswith(b"data: ") and kind == "alert":  # not a card's new status
                seen = time.time()
                alert = json.loads(line[len(b"data: ") :])
                arrivals.append((no, int(alert["id"]), seen))
                after = int(alert["id"])
            elif line.strip() == b"":
                kind = "message"
        writer.close()


async def _polling_inbox(
    no: int,
    port: int,
    auth: str,
    every_s: float,
    arrivals: list[tuple[int, int, float]],
    counts: dict[str, int],
) -> None:
    """A page that asks ``GET /alerts`` every ``every_s`` seconds (random phase, fixed
    cadence) and notes each alert the first time it appears."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seen: set[int] = set()
    await asyncio.sleep(random.uniform(0, every_s))
    next_at = time.monotonic()
    while True:
        writer.write(
            f"GET /alerts?status=open&limit=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()
        )
        await writer.drain()
        status, headers = await _read_head(reader)
        body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        now = time.time()
        counts["requests"] += 1
        if status != 200:
            raise RuntimeError(f"inbox {no}: /alerts answered {status}")
        for alert in json.loads(body)["alerts"]:
            if alert["id"] not in seen:
                seen.add(alert["id"])
                arrivals.append((no, int(alert["id"]), now))
        next_at += every_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def inbox_process(
    port: int,
    token: str,
    kind: str,
    count: int,
    every_s: float,
    ready: Event,
    stop: Event,
    out: Queue[dict[str, Any]],
) -> None:
    """``count`` inboxes until ``stop``; then what arrived when, on ``out``."""
    auth = f"Authorization: Bearer {token}\r\n"
    arrivals: list[tuple[int, int, float]] = []
    counts = {"requests": 0}
    errors: list[str] = []

    async def main() -> None:
        opened = 0

        def one_opened() -> None:
            nonlocal opened
            opened += 1
            if opened == count:
                ready.set()

        if kind == "sse":
            tasks = [
                asyncio.create_task(_sse_inbox(i, port, auth, arrivals, one_opened))
                for i in range(count)
            ]
        else:
            tasks = [
                asyncio.create_task(_polling_inbox(i, port, auth, every_s, arrivals, counts))
                for i in range(count)
            ]
            ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            errors.extend(repr(t.exception()) for t in tasks if t.done() and t.exception())
            if errors:
                ready.set()  # let the parent see the failure instead of waiting
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    out.put({"arrivals": arrivals, "requests": counts["requests"], "errors": errors[:3]})


# --- one way, measured --------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its direct children (uvicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1000 if values else float("nan")


def run_once(args: argparse.Namespace, wake: str, kind: str) -> dict[str, Any]:
    console.print(f"preparing: {args.devices} devices, inboxes {kind}, stream wake {wake} …")
    url = fresh_database(DATABASE)
    devices = prepare(url, args.devices)
    engine = make_engine(url)
    with transaction(engine) as session:
        create_user(session, STAFF, hash_password(PASSWORD), Role.care_staff)
        add_scope(session, STAFF, ScopeLevel.street, "S01")  # the elders' home street
    port = _free_port()
    server = start_server(
        url,
        port,
        args.workers,
        env={"GRIDWORK_ALERT_STREAM_WAKE": wake, "GRIDWORK_LOGIN_PER_MINUTE": "100000"},
    )
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    out: Queue[dict[str, Any]] = ctx.Queue()
    inboxes = None
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/token", data={"username": STAFF, "password": PASSWORD}
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        inboxes = ctx.Process(
            target=inbox_process,
            args=(port, token, kind, args.inboxes, args.poll_every, ready, stop, out),
        )
        inboxes.start()
        if not ready.wait(120):
            raise RuntimeError("the inboxes did not open within 120 s")
        rounds = args.rounds
        per_round = max(1, -(-args.exits // max(1, rounds - 2)))

        def leaves(i: int, round_no: int) -> bool:
            return i < args.exits and round_no == 1 + i // per_round

        cpu0, t0 = _cpu_s(server.pid), time.perf_counter()
        outcome = asyncio.run(
            run_load(
                port,
                devices,
                rounds=rounds,
                concurrency=args.concurrency,
                max_seconds=args.max_seconds,
                exit_share=0.0,
                leaves=leaves,
            )
        )
        time.sleep(args.poll_every + 2.0)  # the last alerts reach the slowest inbox
        cpu = _cpu_s(server.pid) - cpu0
        elapsed = time.perf_counter() - t0
        stop.set()
        result = out.get(timeout=60)
    finally:
        stop.set()
        if inboxes is not None:
            inboxes.join(timeout=30)
        server.terminate()
        server.wait(timeout=30)

    with engine.connect() as conn:
        left: dict[int, str] = dict(
            conn.execute(
                text(
                    "SELECT a.id, d.device_code FROM alert a JOIN device d "
                    "ON d.elder_id = a.elder_id WHERE a.kind = 'left_zone'"
                )
            ).all()
        )
        audit_rows = int(
            conn.execute(
                text("SELECT count(*) FROM audit_log WHERE route LIKE '%alerts%'")
            ).scalar_one()
        )
    engine.dispose()
    latencies = [
        t - outcome.exit_answered[left[alert_id]]
        for _, alert_id, t in result["arrivals"]
        if alert_id in left and left[alert_id] in outcome.exit_answered
    ]
    return {
        "latencies": latencies,
        "expected": len(left) * args.inboxes,
        "exits": len(outcome.exit_answered),
        "alerts": len(left),
        "fixes_s": len(outcome.acked) / outcome.seconds,
        "cpu_s": cpu,
        "elapsed_s": elapsed,
        "requests": result["requests"],
        "audit_rows": audit_rows,
        "errors": result["errors"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--inboxes", type=int, default=100, help="inboxes open at once")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40, help="fixes per device")
    parser.add_argument("--exits", type=int, default=100, help="devices that step out, spread")
    parser.add_argument("--concurrency", type=int, default=64, help="device requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--poll-every", type=float, default=2.0, help="seconds, polling clients")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not 1 <= args.inboxes <= 1000 or not 1 <= args.exits <= args.devices:
        parser.error("--inboxes must be 1–1000 and --exits 1–--devices")
    if args.rounds < 3 or args.devices * args.rounds > 200_000:
        parser.error("--rounds must be at least 3, and at most 200,000 fixes per run")

    results = {name: run_once(args, wake, kind) for name, wake, kind in MODES}
    names = [name.replace("clients polling", f"clients polling every {args.poll_every:g} s")
             for name, _, _ in MODES]  # fmt: skip
    table = Table(
        title=f"Alert → {args.inboxes} open inboxes under the ingest load, "
        f"{platform.node()} ({os.cpu_count()} CPUs), same run"
    )
    table.add_column("measure")
    for name in names:
        table.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("exit fixes answered → left_zone alerts", lambda r: f"{r['exits']} → {r['alerts']}"),
        ("alerts delivered / expected (alerts × inboxes)",
         lambda r: f"{len(r['latencies']):,} / {r['expected']:,}"),
        ("fix answered → in the inbox, p50 (ms)", lambda r: f"{_pct(r['latencies'], 50):.0f}"),
        ("fix answered → in the inbox, p99 (ms)", lambda r: f"{_pct(r['latencies'], 99):.0f}"),
        ("fix answered → in the inbox, max (ms)", lambda r: f"{_pct(r['latencies'], 100):.0f}"),
        ("ingest during the run (fixes acknowledged / s)", lambda r: f"{r['fixes_s']:,.0f}"),
        ("inbox requests (polls of GET /alerts)", lambda r: f"{r['requests']:,}"),
        ("audit rows written by the inboxes", lambda r: f"{r['audit_rows']:,}"),
        ("server CPU (s, all workers) / wall (s)",
         lambda r: f"{r['cpu_s']:.1f} / {r['elapsed_s']:.1f}"),
    ]  # fmt: skip
    for label, show in rows:
        table.add_row(label, *(show(results[name]) for name, _, _ in MODES))
    console.print(table)

    ours = results[MODES[0][0]]
    for (name, _, _), shown in zip(MODES[1:], names[1:], strict=True):
        other = results[name]
        console.print(
            f"{shown} ÷ SSE woken by NOTIFY: p50 "
            f"{_pct(other['latencies'], 50) / _pct(ours['latencies'], 50):.1f}×, p99 "
            f"{_pct(other['latencies'], 99) / _pct(ours['latencies'], 99):.1f}×, server CPU "
            f"{other['cpu_s'] / max(ours['cpu_s'], 1e-9):.2f}×"
        )
    failed = [name for name, _, _ in MODES if results[name]["errors"]]
    for name in failed:
        console.print(f"[red]{name}: an inbox failed: {results[name]['errors']}")
    missing = [
        name for name, _, _ in MODES if len(results[name]["latencies"]) < results[name]["expected"]
    ]
    for name in missing:
        console.print(f"[red]{name}: some inboxes missed some alerts")
    p99 = _pct(ours["latencies"], 99) / 1000
    verdict = "met" if p99 <= TARGET_P99_S else "MISSED"
    console.print(f"target p99 ≤ {TARGET_P99_S:g} s with NOTIFY: {verdict} ({p99:.2f} s)")
    if failed or missing or p99 > TARGET_P99_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
