"""``GET /locate`` over HTTP on loopback, next to the framework's floor and a raw PostGIS query.

The app runs under uvicorn in a subprocess on 127.0.0.1 (a free port, one worker, access
log off) against the benchmark database. The load comes from another process: an asyncio
client keeping one HTTP/1.1 keep-alive connection per simulated client, each sending its
next request as soon as the previous answer is in (closed loop), so ``clients`` is the
concurrency. Every measured request must answer 200.

Compared, at the same concurrency and with the same bearer token:

* ``/locate`` — the endpoint under test (caller and grid index from memory while nothing
  changed, see ``api.principals`` and ``api.grid_index``);
* ``/bench/ping`` — added by :func:`http_app` only: the same router-level sign-in and role
  check as ``/locate``, an empty answer, ``async`` and first in the route table: the
  framework's own floor for an authenticated call;
* raw PostGIS — one psycopg connection per client running a prepared
  ``ST_Covers`` point-in-polygon query with the lowest-code rule, no HTTP at all.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from fastapi import APIRouter, Depends, FastAPI

from api.app import create_app
from api.security import authenticated, hash_password, require
from bench.http_client import Connection
from data.access.queries import create_user
from data.db import make_engine, transaction
from data.models import Role
from data.policy import Action
from data.settings import Settings

USER = "bench-admin"


def http_app() -> FastAPI:
    """The gridwork app plus ``/bench/ping`` (uvicorn ``--factory`` target)."""
    app = create_app(Settings())
    bench = APIRouter()

    @bench.get("/bench/ping", dependencies=[Depends(require(Action.view_district))])
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    # Declared as the app declares its own routes (a router behind the deny-by-default
    # sign-in, a role check on the route) and first in the route table, like /locate, so
    # neither pays for the other's routing or for a different dependency chain.
    app.include_router(bench, dependencies=[Depends(authenticated)])
    app.router.routes.insert(0, app.router.routes.pop())
    return app


@dataclass(frozen=True)
class Latencies:
    target: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn in a subprocess (``env``: more settings for it); stopped (by its own pid)
    when the block ends."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.password = secrets.token_urlsafe(16)
        engine = make_engine(url)
        with transaction(engine) as session:
            create_user(session, USER, hash_password(self.password), Role.admin)
        engine.dispose()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "GRIDWORK_SECRET_KEY": secrets.token_urlsafe(48),
            "GRIDWORK_LOGIN_PER_MINUTE": "1000",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.http_locate:http_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.2)
        form = urllib.parse.urlencode({"username": USER, "password": self.password}).encode()
        with urllib.request.urlopen(self.url("/token"), data=form, timeout=10) as r:
            self.token = json.loads(r.read())["access_token"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def _http_client(
    port: int, token: str, paths: Sequence[str], deadline: float, out: list[float]
) -> None:
    connection = Connection(port, f"Authorization: Bearer {token}\r\n")
    i = 0
    try:
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += 1
            start = time.perf_counter()
            status = await connection.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}")
            out.append(time.perf_counter() - start)
    finally:
        connection.close()


async def _pg_client(
    dsn: str, points: np.ndarray, offset: int, deadline: float, out: list[float]
) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        sql = (
            "SELECT code FROM grid WHERE valid_to IS NULL AND ST_Covers(geom, "
            'ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code COLLATE "C" LIMIT 1'
        )
        i = offset
        while time.perf_counter() < deadline:
            x, y = points[i % len(points)]
            i += 1
            start = time.perf_counter()
            cur = await conn.execute(sql, (float(x), float(y)), prepare=True)
            await cur.fetchone()
            out.append(time.perf_counter() - start)


def _drive(kind: str, clients: int, seconds: float, args: dict[str, Any], pipe: Any) -> None:
    async def main() -> list[float]:
        out: list[float] = []
        deadline = time.perf_counter() + seconds
        if kind == "http":
            paths = args["paths"]
            step = max(1, len(paths) // clients)
            tasks = [
                _http_client(
                    args["port"],
                    args["token"],
                    paths[c * step :] + paths[: c * step],
                    deadline,
                    out,
                )
                for c in range(clients)
            ]
        else:
            tasks = [
                _pg_client(args["dsn"], args["points"], c * 997, deadline, out)
                for c in range(clients)
            ]
        await asyncio.gather(*tasks)
        return out

    start = time.perf_counter()
    latencies = asyncio.run(main())
    pipe.send((latencies, time.perf_counter() - start))
    pipe.close()


def _load(
    kind: str, clients: int, seconds: float, args: dict[str, Any]
) -> tuple[list[float], float]:
    """Closed-loop load from a separate process for ``seconds``: latencies and wall time."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_drive, args=(kind, clients, seconds, args, child))
    proc.start()
    child.close()
    latencies, elapsed = parent.recv()
    proc.join()
    return latencies, elapsed


def _summary(target: str, clients: int, latencies: list[float], elapsed: float) -> Latencies:
    ms = np.asarray(latencies) * 1000
    return Latencies(
        target,
        clients,
        len(ms),
        elapsed,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
    )


def run(
    url: str,
    points: np.ndarray,
    *,
    clients: Sequence[int],
    seconds: float,
    rounds: int = 3,
) -> list[Latencies]:
    """Every target at every concurrency, after a short warm-up of each."""
    paths = [f"/locate?lon={float(x)!r}&lat={float(y)!r}" for x, y in points]
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    results: list[Latencies] = []
    with Server(url) as server:
        http = {"port": server.port, "token": server.token}
        targets: list[tuple[str, str, dict[str, Any]]] = [
            ("GET /locate", "http", {**http, "paths": paths}),
            ("GET /bench/ping (floor)", "http", {**http, "paths": ["/bench/ping"]}),
            ("raw PostGIS prepared ST_Covers", "pg", {"dsn": dsn, "points": points}),
        ]
        for _, kind, args in targets:
            _load(kind, 2, 1.0, args)  # warm-up: index built, plans prepared, pools filled
        # Targets take turns in short rounds, so a burst of load elsewhere on the machine
        # cannot favour one of them.
        for n in clients:
            latencies: dict[str, list[float]] = {name: [] for name, _, _ in targets}
            elapsed = dict.fromkeys(latencies, 0.0)
            for _ in range(rounds):
                for name, kind, args in targets:
                    got, took = _load(kind, n, seconds / rounds, args)
                    latencies[name] += got
                    elapsed[name] += took
            results += [_summary(name, n, latencies[name], elapsed[name]) for name in latencies]
    return results
