"""``GET /locate`` over HTTP with the metrics middleware (``api.metrics``) and without it.

The request histogram is the only per-request cost of ``/metrics``; ``/locate`` is the
cheapest route there is (an in-memory lookup), so it shows that cost at its largest. Two
uvicorn servers on the same benchmark database, one with ``GRIDWORK_METRICS=false``; the
load alternates between them in short rounds (:mod:`bench.http_locate`'s client, another
process, closed loop), so a burst elsewhere on the machine cannot favour either.

    python -m bench.metrics [--clients 1 8] [--seconds 6]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.http_locate import USER, Latencies, Server, _load, _summary

console = Console(width=140)


class _Variant(Server):
    """:class:`bench.http_locate.Server` with a setting of its own, sharing one account."""

    def __init__(self, url: str, password: str, *, metrics: bool) -> None:
        self.port = self._port()
        self.password = password
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "GRIDWORK_SECRET_KEY": secrets.token_urlsafe(48),
            "GRIDWORK_LOGIN_PER_MINUTE": "1000",
            "GRIDWORK_METRICS": "true" if metrics else "false",
        }
        args = ["bench.http_locate:http_app", "--factory", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", *args], env=env)

    @staticmethod
    def _port() -> int:
        from bench.http_locate import _free_port

        return _free_port()


def run(url: str, points: np.ndarray, *, clients: Sequence[int], seconds: float) -> list[Latencies]:
    from api.security import hash_password
    from data.access.queries import create_user
    from data.db import make_engine, transaction
    from data.models import Role

    password = secrets.token_urlsafe(16)
    engine = make_engine(url)
    with transaction(engine) as session:
        create_user(session, USER, hash_password(password), Role.admin)
    engine.dispose()
    paths = [f"/locate?lon={float(x)!r}&lat={float(y)!r}" for x, y in points]
    results: list[Latencies] = []
    with (
        _Variant(url, password, metrics=True) as on,
        _Variant(url, password, metrics=False) as off,
    ):
        targets = {
            "GET /locate, metrics on": {"port": on.port, "token": on.token, "paths": paths},
            "GET /locate, metrics off": {"port": off.port, "token": off.token, "paths": paths},
        }
        for args in targets.values():
            _load("http", 2, 1.0, args)  # warm-up: index built, pools filled
        for n in clients:
            got: dict[str, list[float]] = {name: [] for name in targets}
            took = dict.fromkeys(targets, 0.0)
            for _ in range(6):
                for name, args in targets.items():
                    latencies, elapsed = _load("http", n, seconds / 6, args)
                    got[name] += latencies
                    took[name] += elapsed
            results += [_summary(name, n, got[name], took[name]) for name in targets]
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics", description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=6.0, help="per target and concurrency")
    args = parser.parse_args(argv)

    from bench.assign import _bench_database
    from bench.synthetic_city import build_city

    url = _bench_database()
    city = build_city()
    grids = city.grids.to_crs(4326)
    rng = np.random.default_rng(19)
    inner = grids.geometry.representative_point()  # one point inside each grid
    pick = rng.choice(len(inner), size=2000)
    points = np.column_stack([inner.x.to_numpy()[pick], inner.y.to_numpy()[pick]])
    results = run(url, points, clients=args.clients, seconds=args.seconds)
    table = Table(title="GET /locate with and without the metrics middleware")
    for col in ("target", "clients", "requests", "p50 ms", "p99 ms", "req/s", "on ÷ off p50"):
        table.add_column(col, justify="right", no_wrap=True)
    off = {r.clients: r for r in results if r.target.endswith("off")}
    for r in results:
        table.add_row(
            r.target,
            str(r.clients),
            f"{r.requests:,}",
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}",
            f"{r.rps:,.0f}",
            f"{r.p50_ms / off[r.clients].p50_ms:.3f}",
        )
    console.print(table)
    load = os.getloadavg()
    console.print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
