"""Cases (issue 18): a report posted and routed over HTTP, and the deadline sweep at city size.

A fresh database ``gridwork_bench_incidents`` holds the synthetic district (783 grids, one
worker each). Compared in the same run:

* **a report posted and routed** — ``POST /cases`` under uvicorn on loopback (one worker,
  access log off; the server of :mod:`bench.http_locate`), a point inside a random grid, closed
  loop from hand-written keep-alive connections (:mod:`bench.http_client`) at 8 clients, next
  to 1 client (what concurrency costs). Each answer must be 201: the incident, its case, the
  history entry and the worker's notice are committed, routed by ``grid_covering()`` in
  PostGIS. Also the routing step alone, next to the obvious alternative: a Python loop over
  every grid polygon (shapely ``covers``), per point; and storing one report in process
  (committed, one connection): the service's one statement (``queries.REPORT_SQL``: category,
  grid, area check, the four rows and the answer) next to the same work step by step (the
  category, the grid, four inserts, the case and its history read back: eight round trips);
* **the deadline sweep** over 100,000 open cases: with 1,000 of them overdue (what falls due
  between two ticks), and all overdue (the worst case, a backlog: every one escalated, with
  its history entry and notice, in one statement; then with the case webhook set, 100,000
  outbox rows more), next to the obvious alternative: row by row in Python with
  the service's own helpers (``SELECT … FOR UPDATE``, then per case an ``UPDATE``, the
  incident's status, a history entry and a notice), on the first 10,000 (the same 10,000 for
  both). Each run is rolled back and the tables vacuumed, so every run starts alike.

  Two more rows for the backlog: the periodic task's own path (``service.sweep``, batches of
  20,000 committed, one worker and two), each on freshly made cases; and **the writes alone**
  that any sweep keeping a history entry and a notice per case must make (the 100,000 case
  rows updated, 100,000 entries and 100,000 notices inserted into copies of the tables without
  foreign keys or triggers, one connection, rolled back): the floor under the one-statement
  figure on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import shapely
from sqlalchemy import Connection, Engine, text

from bench.bench_db import fresh_database, load_city
from bench.http_client import Connection as HttpConnection
from bench.http_locate import Server
from bench.synthetic_city import build_city
from data.access.queries import AreaScope
from data.db import make_engine
from data.incidents import queries as q
from data.incidents import service
from geo.incidents import rules

DATABASE = "gridwork_bench_incidents"
CASES = 100_000
ROW_BY_ROW = 10_000
TICK_DUE = 1_000  # cases falling due between two ticks of the periodic task, say
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/never-posted-in-this-bench"


def report_points(engine: Engine, per_grid: int = 4) -> np.ndarray:
    """Points inside the grids (lon, lat), shuffled with a fixed seed."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(p.geom), ST_Y(p.geom) FROM grid g, "
                "ST_Dump(ST_GeneratePoints(g.geom, :n, 18)) p ORDER BY g.code, p.path"
            ),
            {"n": per_grid},
        ).all()
    points = np.asarray(rows, dtype=float)
    np.random.default_rng(18).shuffle(points)
    return points


# --- (a) a report over HTTP ------------------------------------------------------------------


async def _client(
    port: int, token: str, bodies: list[bytes], deadline: float, out: list[float]
) -> None:
    connection = HttpConnection(port, f"Authorization: Bearer {token}\r\n")
    i = 0
    try:
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            i += 1
            start = time.perf_counter()
            status = await connection.post_json("/cases", body)
            if status != 201:
                raise RuntimeError(f"POST /cases: HTTP {status}")
            out.append(time.perf_counter() - start)
    finally:
        connection.close()


def post_reports(
    port: int, token: str, bodies: list[bytes], clients: int, seconds: float
) -> list[float]:
    """Closed loop: each client posts its next report as soon as the last is answered."""

    async def main() -> list[float]:
        out: list[float] = []
        deadline = time.perf_counter() + seconds
        step = len(bodies) // clients
        await asyncio.gather(
            *(_client(port, token, bodies[c * step :] + bodies[: c * step], deadline, out)
              for c in range(clients))
        )  # fmt: skip
        return out

    return asyncio.run(main())


def route_in_postgis(dsn: str, points: np.ndarray) -> list[float]:
    """``grid_covering()`` per point, prepared, as the report's ``place`` asks it."""
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql = "SELECT grid_covering(ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
        for x, y in points:
            start = time.perf_counter()
            conn.execute(sql, (float(x), float(y)), prepare=True).fetchone()
            out.append(time.perf_counter() - start)
    return out


def route_in_python(engine: Engine, points: np.ndarray) -> tuple[list[float], float]:
    """The obvious alternative: every grid polygon in memory, tried in code order."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, ST_AsBinary(geom) FROM grid WHERE valid_to IS NULL "
                'ORDER BY code COLLATE "C"'
            )
        ).all()
    grids = [(gid, shapely.from_wkb(bytes(wkb))) for gid, wkb in rows]
    out = []
    misses = 0
    for x, y in points:
        start = time.perf_counter()
        point = shapely.Point(float(x), float(y))
        found = next((gid for gid, poly in grids if poly.covers(point)), None)
        out.append(time.perf_counter() - start)
        misses += found is None
    return out, misses / len(points)


def store_step_by_step(db: Connection, lon: float, lat: float, now: datetime) -> int:
    """The obvious alternative to ``REPORT_SQL``: one statement per step, as the service did
    before, the case and its history read back for the answer."""
    kind = q.category(db, "street_light")
    where = q.place(db, lon, lat)
    assert where is not None
    due = q.deadlines(kind).due("grid", now)
    case_id = int(
        db.execute(
            text(
                "INSERT INTO incident (category, status, summary, reported_at, geom, grid_id, "
                "snapped, assign_distance_m) VALUES (:cat, 'open', 'bench', :now, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :grid, false, 0) RETURNING id"
            ),
            {"cat": kind["code"], "now": now, "lon": lon, "lat": lat, "grid": where["grid_id"]},
        ).scalar_one()
    )
    db.execute(
        text(
            "INSERT INTO incident_case (id, category_id, status, level, top_level, community_id, "
            "street_id, assignee_id, description, source, opened_at, due_at) VALUES (:id, :cat, "
            "'new', 'grid', 'grid', :community, :street, :assignee, 'bench', 'app', :now, :due)"
        ),
        {"id": case_id, "cat": kind["id"], "community": where["community_id"],
         "street": where["street_id"], "assignee": where["worker_user_id"], "now": now,
         "due": due},
    )  # fmt: skip
    q.add_event(db, case_id, at=now, actor="bench", kind="reported", to_status="new",
                to_level="grid", note="app")  # fmt: skip
    q.add_notice(db, case_id, at=now, level="grid", kind="new", user_id=where["worker_user_id"])
    q.case(db, case_id, q.Viewer(AreaScope.everywhere(), None, None, "bench"))
    q.history(db, case_id)
    return case_id


def store_one_statement(db: Connection, lon: float, lat: float, now: datetime) -> int:
    """The service's path: ``REPORT_SQL``, its answer included."""
    row = q.store_report(db, {
        "cat": "street_light", "lon": lon, "lat": lat, "grid_ids": None, "summary": "bench",
        "body": "bench", "name": None, "contact": None, "source": "app", "client": None,
        "now": now, "actor": "bench", "note": "app"})  # fmt: skip
    return int(row["id"])


def time_storing(engine: Engine, points: np.ndarray, store: object) -> list[float]:
    """Seconds per report stored and committed, one connection, one after another."""
    out = []
    with engine.connect() as conn:
        for x, y in points:
            start = time.perf_counter()
            store(conn, float(x), float(y), datetime.now(UTC))  # type: ignore[operator]
            conn.commit()
            out.append(time.perf_counter() - start)
    return out


# --- (b) the sweep ---------------------------------------------------------------------------


def add_open_cases(engine: Engine, n: int) -> None:
    """``n`` open cases at grid level spread over every grid and category; the i-th falls due
    at T0 + i seconds, so a sweep at T0 + k s escalates exactly the first k."""
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                WITH g AS (SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, community_id,
                                  ST_PointOnSurface(geom) AS p FROM grid),
                     s AS (SELECT i, (SELECT count(*) FROM grid) AS ng
                           FROM generate_series(1, :n) i)
                INSERT INTO incident (id, category, status, summary, reported_at, geom, grid_id,
                                      snapped, assign_distance_m)
                SELECT s.i, 'bench', 'open', 'bench', :t0 - interval '3 days', g.p, g.id, false, 0
                FROM s JOIN g ON g.k = s.i % s.ng
                """
            ),
            {"n": n, "t0": T0},
        )
        conn.execute(
            text(
                """
                WITH k AS (SELECT row_number() OVER (ORDER BY id) - 1 AS j, id
                           FROM incident_category),
                     nk AS (SELECT count(*) AS n FROM incident_category)
                INSERT INTO incident_case (id, category_id, status, level, top_level, community_id,
                                           street_id, description, opened_at, due_at)
                SELECT i.id, k.id,
                       (ARRAY['new', 'accepted', 'in_progress'])[1 + i.id % 3]::case_status,
                       'grid', 'grid', m.id, m.street_id, 'bench', i.reported_at,
                       :t0 + make_interval(secs => i.id)
                FROM incident i JOIN grid g ON g.id = i.grid_id
                JOIN community m ON m.id = g.community_id
                CROSS JOIN nk JOIN k ON k.j = i.id % nk.n
                """
            ),
            {"t0": T0},
        )
        conn.execute(text("SELECT setval(pg_get_serial_sequence('incident', 'id'), :n)"), {"n": n})


def _vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE incident, incident_case, case_event, case_notice, "
                          "webhook_outbox"))  # fmt: skip


def timed_rolled_back(
    engine: Engine, run: object, now: datetime, **kw: object
) -> tuple[float, int]:
    """Seconds one sweep takes in its transaction, and how many it escalated; rolled back."""
    _vacuum(engine)
    with engine.connect() as conn:
        trans = conn.begin()
        start = time.perf_counter()
        moved = run(conn, now, **kw)  # type: ignore[operator]
        took = time.perf_counter() - start
        trans.rollback()
    return took, len(moved)


def sweep_row_by_row(conn: Connection, now: datetime) -> list[int]:
    """The obvious alternative: find the due cases, then escalate each with the helpers
    a handler's escalation uses."""
    due = conn.execute(
        text(
            "SELECT c.id, c.level::text, c.status::text, k.hours_grid, k.hours_community, "
            "k.hours_street, k.hours_district FROM incident_case c "
            "JOIN incident_category k ON k.id = c.category_id "
            "WHERE c.status IN ('new', 'accepted', 'in_progress') AND c.due_at <= :now "
            "AND c.level <> 'district' ORDER BY c.due_at FOR UPDATE OF c"
        ),
        {"now": now},
    ).all()
    for case_id, level, status, *hours in due:
        up = rules.escalation(status, level)
        conn.execute(
            text(
                "UPDATE incident_case SET level = CAST(:up AS case_level), "
                "top_level = GREATEST(top_level, CAST(:up AS case_level)), status = 'new', "
                "assignee_id = NULL, escalations = escalations + 1, due_at = :due WHERE id = :id"
            ),
            {"id": case_id, "up": up, "due": rules.Deadlines(*hours).due(up, now)},
        )
        q.set_incident_status(conn, case_id, "new", now)
        moved = {"from_status": status, "to_status": "new", "from_level": level, "to_level": up}
        q.add_event(conn, case_id, at=now, actor="system", kind="escalated", **moved,
                    note="deadline passed")  # fmt: skip
        q.add_notice(conn, case_id, at=now, level=up, kind="escalated")
    return [row[0] for row in due]


def explain_sweep(engine: Engine, now: datetime) -> str:
    """The sweep's plan with timings (rolled back), for when the target is missed."""
    with engine.connect() as conn:
        trans = conn.begin()
        plan = conn.execute(
            text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + q.SWEEP_SQL),
            {"now": now, "limit": 200_000, "hook_url": None},
        ).scalars()
        out = "\n".join(plan)
        trans.rollback()
    return out


def _ms(values: list[float], pct: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, pct))


def bench_reports(url: str, engine: Engine, seconds: float) -> list[tuple[str, ...]]:
    """(a) reports over HTTP at 1 and 8 clients, then routing and storing alone."""
    points = report_points(engine)
    print(f"{len(points)} report points in 783 grids")
    bodies = [
        json.dumps({"category": "street_light", "lon": float(x), "lat": float(y),
                    "description": "lamp out (bench)"}).encode()
        for x, y in points
    ]  # fmt: skip
    http: dict[int, list[float]] = {}
    with Server(url) as server:
        post_reports(server.port, server.token, bodies, 2, 2.0)  # warm-up
        for clients in (1, 8):
            http[clients] = post_reports(server.port, server.token, bodies, clients, seconds)
            print(f"  {clients} client(s): load average {_load()}")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    sample = points[:500]
    in_pg = route_in_postgis(dsn, sample)
    in_py, missed = route_in_python(engine, sample)
    assert missed == 0, "a generated point fell outside every grid"
    time_storing(engine, sample[:50], store_one_statement)  # warm-up (prepared statements)
    time_storing(engine, sample[:50], store_step_by_step)
    stored = (time_storing(engine, sample, store_one_statement),
              time_storing(engine, sample, store_step_by_step))  # fmt: skip

    p50 = {n: _ms(v, 50) for n, v in http.items()}
    p99 = {n: _ms(v, 99) for n, v in http.items()}
    rps = {n: len(v) / seconds for n, v in http.items()}
    routed = (_ms(in_pg, 50), _ms(in_py, 50))
    return [
        (f"POST /cases, routed, {len(http[8])} reports: 8 clients vs 1, p50",
         f"{p50[8]:.1f} ms", f"{p50[1]:.1f} ms", f"{p50[8] / p50[1]:.1f}×", ""),
        ("  p99", f"{p99[8]:.1f} ms", f"{p99[1]:.1f} ms", f"{p99[8] / p99[1]:.1f}×",
         "≤ 50 ms " + ("✔" if p99[8] <= 50 else "✘")),
        ("  reports/s", f"{rps[8]:.0f}", f"{rps[1]:.0f}", f"{rps[8] / rps[1]:.1f}×", ""),
        ("routing a point: grid_covering() vs a Python loop, p50",
         f"{routed[0]:.2f} ms", f"{routed[1]:.2f} ms", f"{routed[1] / routed[0]:.1f}×", ""),
        ("storing a report: one statement vs step by step, committed, p50",
         f"{_ms(stored[0], 50):.2f} ms", f"{_ms(stored[1], 50):.2f} ms",
         f"{_ms(stored[1], 50) / _ms(stored[0], 50):.1f}×", ""),
        ("  p99", f"{_ms(stored[0], 99):.2f} ms", f"{_ms(stored[1], 99):.2f} ms",
         f"{_ms(stored[1], 99) / _ms(stored[0], 99):.1f}×", ""),
    ]  # fmt: skip


WRITES_ALONE = (
    "CREATE TEMP TABLE ev_floor (LIKE case_event INCLUDING DEFAULTS INCLUDING INDEXES) "
    "ON COMMIT DROP",
    "CREATE TEMP TABLE no_floor (LIKE case_notice INCLUDING DEFAULTS INCLUDING INDEXES) "
    "ON COMMIT DROP",
    "UPDATE incident_case c SET level = 'community', top_level = 'community', status = 'new', "
    "assignee_id = NULL, escalations = c.escalations + 1, due_at = :now + interval '1 day' "
    "WHERE c.status IN ('new', 'accepted', 'in_progress') AND c.due_at <= :now",
    "INSERT INTO ev_floor (case_id, at, actor, kind, from_status, to_status, from_level, "
    "to_level, note) SELECT id, :now, 'system', 'escalated', 'accepted', 'new', 'grid', "
    "'community', 'deadline passed' FROM incident_case",
    "INSERT INTO no_floor (case_id, at, level, grid_id, community_id, street_id, kind) "
    "SELECT id, :now, 'community', NULL, community_id, street_id, 'escalated' "
    "FROM incident_case",
)


def writes_alone(conn: Connection, now: datetime) -> list[int]:
    """Only the rows a per-case sweep must write, into tables without keys or triggers."""
    for sql in WRITES_ALONE:
        conn.execute(text(sql), {"now": now})
    return [0] * int(conn.execute(text("SELECT count(*) FROM ev_floor")).scalar_one())


def timed_committed(engine: Engine, cases: int, now: datetime, workers: int) -> tuple[float, int]:
    """The periodic task's sweep, committed, over ``cases`` freshly made open cases."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE incident CASCADE"))
    add_open_cases(engine, cases)
    _vacuum(engine)
    start = time.perf_counter()
    moved = service.sweep(engine, now=now, workers=workers)
    return time.perf_counter() - start, moved


def bench_sweep(engine: Engine, cases: int, explain: bool) -> list[tuple[str, ...]]:
    """(b) the deadline sweep over ``cases`` open cases, next to row by row."""
    with engine.begin() as conn:  # the reports of (a) out of the way
        conn.execute(text("TRUNCATE incident CASCADE"))
    add_open_cases(engine, cases)
    every, first = T0 + timedelta(seconds=cases), T0 + timedelta(seconds=ROW_BY_ROW)
    ours_tick = timed_rolled_back(engine, q.sweep, T0 + timedelta(seconds=TICK_DUE))
    ours_all = timed_rolled_back(engine, q.sweep, every)
    ours_hooked = timed_rolled_back(engine, q.sweep, every, hook_url=HOOK)
    floor = timed_rolled_back(engine, writes_alone, every)
    ours_first = timed_rolled_back(engine, q.sweep, first)
    rows_first = timed_rolled_back(engine, sweep_row_by_row, first)
    assert ours_all[1] == cases, ours_all
    assert ours_tick[1] == TICK_DUE, ours_tick
    assert floor[1] == cases, floor
    assert ours_first[1] == rows_first[1] == ROW_BY_ROW, (ours_first, rows_first)
    if explain or ours_all[0] > 1:
        print(explain_sweep(engine, every))
    one = timed_committed(engine, cases, every, workers=1)
    two = timed_committed(engine, cases, every, workers=2)
    assert one[1] == two[1] == cases, (one, two)
    print(f"  sweep: load average {_load()}")
    rows_all = rows_first[0] * cases / ROW_BY_ROW
    return [
        (f"sweep over {cases:,} open cases, {TICK_DUE:,} of them overdue",
         f"{ours_tick[0]:.2f} s", "", "", "≤ 1 s " + ("✔" if ours_tick[0] <= 1 else "✘")),
        (f"sweep, {cases:,} open cases all overdue (one statement)",
         f"{ours_all[0]:.2f} s", "", "", "(backlog) " + ("✔" if ours_all[0] <= 1 else "✘")),
        ("  the same with the case webhook set (+ outbox rows)",
         f"{ours_hooked[0]:.2f} s", "", "", ""),
        ("  the writes alone (no keys, no triggers): the floor",
         f"{floor[0]:.2f} s", f"{ours_all[0]:.2f} s", f"{ours_all[0] / floor[0]:.1f}×", ""),
        ("  the periodic task's sweep, batches of 20,000: 2 workers vs 1",
         f"{two[0]:.2f} s", f"{one[0]:.2f} s", f"{one[0] / two[0]:.1f}×", ""),
        (f"sweep of {ROW_BY_ROW:,}: one statement vs row by row in Python",
         f"{ours_first[0]:.2f} s", f"{rows_first[0]:.2f} s",
         f"{rows_first[0] / ours_first[0]:.0f}×", ""),
        (f"  row by row, {cases:,} (linear from {ROW_BY_ROW:,})", "", f"≈ {rows_all:.0f} s",
         f"{rows_all / ours_all[0]:.0f}×", ""),
    ]  # fmt: skip


def _load() -> str:
    """The load average (1, 5, 15 min): the machine is shared, so every figure carries it."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.incidents", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per client count")
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--explain", action="store_true", help="print the sweep's plan")
    parser.add_argument(
        "--only",
        choices=("reports", "sweep"),
        help="one section: the reports (HTTP, routing, storing) or the sweep",
    )
    args = parser.parse_args(argv)

    url = fresh_database(DATABASE)
    engine = make_engine(url)
    load_city(engine, build_city())
    print(f"{len(os.sched_getaffinity(0))} core(s); load average {_load()}")
    table: list[tuple[str, ...]] = [("what", "gridwork", "alternative", "ratio", "target")]
    if args.only != "sweep":
        table += bench_reports(url, engine, args.seconds)
    if args.only != "reports":
        table += bench_sweep(engine, args.cases, args.explain)
    print("\nissue 18 targets, one run")
    for what, ours, alt, ratio, target in table:
        print(f"{what:<64} {ours:>10} {alt:>12} {ratio:>7}  {target}")
    engine.dispose()


if __name__ == "__main__":
    main()
