"""Prometheus metrics at ``/metrics``, and the one middleware that times every request.

What an operator needs to see before users call: how long each route takes, whether device
ingest keeps up (its queue, what it refuses and why), whether the change feed that keeps the
caches honest is listening, and what is waiting on people (open alerts) and on other systems
(undelivered webhooks).

* Per request, only :class:`RequestMetrics`: two clock reads and one histogram observation
  labelled by the route **template** (``/elders/{elder_id}``: no ids, no query string; an
  unmatched path is ``unmatched``), the method and the status class. ``bench/metrics.py``
  measures ``/locate`` with and without it.
* Everything else is read when Prometheus scrapes: the ingest queue of this process, the
  change feed, and the backlog in one statement of counts (``data.backlog``).
* With a standby (``GRIDWORK_READ_DATABASE_URL``): whether reads go to it now, its replay
  lag as last sampled, and how many reads went to the primary instead, by reason
  (:mod:`data.replica`).

The metrics are this process's (as with any Prometheus client): with several API processes,
scrape each. Nothing here names a person, a device or a place. Who may read them is
:attr:`~data.policy.Action.read_metrics` (admins), or a scraper sending
``GRIDWORK_METRICS_KEY`` as a bearer token, which opens this route and no other.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.logs import ACCESS, REQUEST_ID
from api.security import require
from api.state import app_state
from api.tile_cache import TileCache
from api.tile_seeder import TileSeeder
from data.backlog import Backlog, backlog
from data.policy import Action
from data.replica import ReadReplica

log = logging.getLogger(__name__)

#: This process's metrics (one registry per process, whatever number of apps it builds).
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

REQUEST_SECONDS = Histogram(
    "gridwork_http_request_duration_seconds",
    "Time from a request's arrival to its last byte, by route template, method and status "
    "class (event streams are left out: they last as long as the page is open)",
    ("route", "method", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
INGEST_REFUSED = Counter(
    "gridwork_ingest_refused_requests",
    "Device requests to /ingest/ answered 4xx/5xx, by reason: no_key (401), forbidden (403: "
    "a device the key may not report for, or no consent), too_large (413), unreadable (422), "
    "rate_limited (429), queue_full (503: GRIDWORK_INGEST_PENDING_MAX waiting), other",
    ("reason",),
    registry=REGISTRY,
)
INGEST_NOTES = Counter(
    "gridwork_ingest_report_notes",
    "Reports answered 200 but not stored, or stored differently, by the code of the answer's "
    "note: no_position (a keep-alive), too_old, before_consent, clock_ahead (stored at receipt)",
    ("code",),
    registry=REGISTRY,
)

_REFUSALS = {401: "no_key", 403: "forbidden", 413: "too_large", 422: "unreadable"}
_REFUSALS |= {429: "rate_limited", 503: "queue_full"}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_NOTE_CODES = frozenset({"no_position", "too_old", "before_consent", "clock_ahead"})


def route_template(scope: Scope, root_path: str = "") -> str:
    """The matched route's path template, prefixed by the mounts it is under (``/ogc/…``);
    a mounted app without routes of its own (static files) is ``<mount>/{path}``;
    ``unmatched`` when nothing matched, so a scanner's paths never become labels.
    ``root_path`` is the one the request arrived with (a mount appends to it)."""
    route = scope.get("route")
    root = scope.get("root_path", "")
    if route is None or isinstance(route, Mount):
        return f"{root}/{{path}}" if root != root_path else "unmatched"
    return f"{root}{getattr(route, 'path', '')}"


def count_notes(notes: Iterable[str]) -> None:
    """Count an ingest answer's notes (``[reports[j] ]code: text``) by their code."""
    for note in notes:
        code = note.split(": ", 1)[0].rsplit(" ", 1)[-1]
        INGEST_NOTES.labels(code if code in _NOTE_CODES else "other").inc()


class RequestMetrics:
    """Times every HTTP request into :data:`REQUEST_SECONDS`, counts /ingest/ refusals and,
    while ``gridwork.access`` logs at INFO, writes the access line (:mod:`api.logs`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # what the server answers when the app raises before answering
        stream = False
        request_id = _request_id(scope) if ACCESS.isEnabledFor(logging.INFO) else None
        token = REQUEST_ID.set(request_id) if request_id is not None else None

        async def send_and_note(message: Message) -> None:
            nonlocal status, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                for name, value in headers:
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        stream = True
                if request_id is not None:
                    message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope, root_path)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            if not stream:
                key = (route, method, status // 100)
                child = self._children.get(key)
                if child is None:
                    child = REQUEST_SECONDS.labels(route, method, f"{status // 100}xx")
                    self._children[key] = child
                child.observe(elapsed)
            if status >= 400 and route.startswith("/ingest/"):
                INGEST_REFUSED.labels(_REFUSALS.get(status, "other")).inc()
            if token is not None:
                ACCESS.info(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    elapsed * 1000,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
                REQUEST_ID.reset(token)


def _request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token (a proxy's), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if 0 < len(given) <= 64 and all(c.isalnum() or c in "-_.:" for c in given):
                return given
            break
    return os.urandom(8).hex()


# --- the route ----------------------------------------------------------------------------

_admin = require(Action.read_metrics)


async def metrics_reader(request: Request) -> None:
    """A scraper's ``GRIDWORK_METRICS_KEY`` as a bearer token, or an account the policy
    allows :attr:`~data.policy.Action.read_metrics` (401 signed out, 403 another role)."""
    key = app_state(request).settings.metrics_key
    if key:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), key):
            return
    await _admin(request)


metrics_reader.gridwork_action = Action.read_metrics  # type: ignore[attr-defined]

router = APIRouter(tags=["meta"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this API process (no personal data)",
    dependencies=[Depends(metrics_reader)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "text format"}},
)
async def metrics(request: Request) -> Response:
    """Request latency by route template, ingest queue and refusals, the change feed, the
    alert and webhook backlog (read now), and the process's own (CPU, memory, GC)."""
    state = app_state(request)
    queue = state.ingest_queue.peek()
    feed = state.changes
    now = _Gauges(
        ingest_pending=queue.pending if queue is not None else 0,
        ingest_pending_max=state.settings.ingest_pending_max,
        feed_live=feed is not None and feed.live,
        feed_generation=feed.generation if feed is not None else 0,
        backlog=await anyio.to_thread.run_sync(_read_backlog, state.engine),
    )
    body = generate_latest(REGISTRY) + generate_latest(now)
    tiles = getattr(state.ogc.state, "tiles", None)
    if isinstance(tiles, TileCache):
        body += generate_latest(_Tiles(tiles))
    seeder = getattr(state.ogc.state, "seeder", None)
    if isinstance(seeder, TileSeeder):
        body += generate_latest(_Seeder(seeder))
    if state.reads is not None:
        body += generate_latest(_Replica(state.reads))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _read_backlog(engine: Engine) -> Backlog | None:
    try:
        with engine.connect() as conn:
            return backlog(conn)
    except SQLAlchemyError as exc:  # the scrape still answers, saying the database did not
        log.warning("metrics: backlog not read: %s", type(exc).__name__)
        return None


class _Tiles(Collector):
    """The vector tiles this process served from memory or had drawn, and what it keeps."""

    def __init__(self, cache: TileCache) -> None:
        self.values = (
            cache.hits, cache.unchanged, cache.joined, cache.misses, len(cache), cache.size
        )  # fmt: skip

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hits, unchanged, joined, misses, tiles, size = self.values
        served = CounterMetricFamily(
            "gridwork_tile_cache_requests",
            "OGC vector tiles asked for while the cache was on: served from memory (hit; "
            "unchanged: after a change elsewhere, the grids under it checked; joined: after "
            "waiting for the same tile's drawing under way) or drawn by PostgreSQL (miss, as "
            "the first time and after what the tile shows changed)",
            labels=["result"],
        )
        served.add_metric(["hit"], hits)
        served.add_metric(["unchanged"], unchanged)
        served.add_metric(["joined"], joined)
        served.add_metric(["miss"], misses)
        yield served
        yield GaugeMetricFamily("gridwork_tile_cache_tiles", "Tiles kept in memory", value=tiles)
        yield GaugeMetricFamily(
            "gridwork_tile_cache_bytes", "Bytes of the tiles kept in memory", value=size
        )


class _Seeder(Collector):
    """The low-zoom grid tiles this process draws in the background (:mod:`api.tile_seeder`)."""

    def __init__(self, seeder: TileSeeder) -> None:
        self.values = (seeder.passes, seeder.drawn, seeder.failures, seeder.tiles,
                       seeder.last_pass_s, seeder.busy)  # fmt: skip

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        passes, drawn, failures, tiles, last_s, busy = self.values
        yield CounterMetricFamily(
            "gridwork_tile_seed_passes",
            "Passes of the tile seeder over the low-zoom grid tiles (one at start, one after "
            "each change of what grid tiles show)",
            value=passes,
        )
        yield CounterMetricFamily(
            "gridwork_tile_seed_drawn", "Grid tiles the seeder had PostgreSQL draw", value=drawn
        )
        yield CounterMetricFamily(
            "gridwork_tile_seed_failures",
            "Looks of the seeder that failed, and tiles a pass could not draw",
            value=failures,
        )
        yield GaugeMetricFamily(
            "gridwork_tile_seed_tiles", "Grid tiles the last pass looked after", value=tiles
        )
        yield GaugeMetricFamily(
            "gridwork_tile_seed_last_pass_seconds", "How long the last pass took", value=last_s
        )
        yield GaugeMetricFamily(
            "gridwork_tile_seed_busy", "1 while a pass runs", value=1.0 if busy else 0.0
        )


class _Gauges(Collector):
    """The values read at this scrape, as gauges."""

    def __init__(
        self,
        *,
        ingest_pending: int,
        ingest_pending_max: int,
        feed_live: bool,
        feed_generation: int,
        backlog: Backlog | None,
    ) -> None:
        self.values = (ingest_pending, ingest_pending_max, feed_live, feed_generation, backlog)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending, pending_max, live, generation, counts = self.values
        yield GaugeMetricFamily(
            "gridwork_ingest_queue_pending",
            "Device requests waiting for their group commit in this process",
            value=pending,
        )
        yield GaugeMetricFamily(
            "gridwork_ingest_queue_limit",
            "GRIDWORK_INGEST_PENDING_MAX: more waiting are answered 503",
            value=pending_max,
        )
        yield GaugeMetricFamily(
            "gridwork_change_feed_live",
            "1 while the LISTEN connection is up (caches of credentials and the grid index "
            "are used only then)",
            value=int(live),
        )
        yield GaugeMetricFamily(
            "gridwork_change_feed_generation",
            "Bumped by every change to users, keys, scopes or grids and every reconnection",
            value=generation,
        )
        yield GaugeMetricFamily(
            "gridwork_backlog_up",
            "1 when the backlog below was read now",
            value=int(counts is not None),
        )
        if counts is None:
            return
        alerts = GaugeMetricFamily(
            "gridwork_alerts", "Alerts not closed, by status", labels=["status"]
        )
        alerts.add_metric(["open"], counts.alerts_open)
        alerts.add_metric(["acknowledged"], counts.alerts_acknowledged)
        yield alerts
        webhooks = GaugeMetricFamily(
            "gridwork_webhook_outbox", "Webhook deliveries not done, by state", labels=["state"]
        )
        webhooks.add_metric(["waiting"], counts.webhooks_waiting)
        webhooks.add_metric(["failed"], counts.webhooks_failed)
        yield webhooks


class _Replica(Collector):
    """The standby reads go to (``GRIDWORK_READ_DATABASE_URL``), as sampled last."""

    def __init__(self, reads: ReadReplica) -> None:
        self.health = reads.health
        self.fallbacks = reads.fallbacks
        self.max_lag_s = reads.max_lag_s

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lag = self.health.lag_s
        yield GaugeMetricFamily(
            "gridwork_replica_up",
            "1 while non-personal reads go to the standby; 0 while they go to the primary "
            "(the standby down, lagging or not in recovery)",
            value=int(self.health.usable),
        )
        yield GaugeMetricFamily(
            "gridwork_replica_lag_seconds",
            "Age of the oldest primary WAL position the standby had not replayed at the last "
            "sample (0: caught up; NaN: it did not answer)",
            value=math.nan if lag is None else lag,
        )
        yield GaugeMetricFamily(
            "gridwork_replica_max_lag_seconds",
            "GRIDWORK_READ_MAX_LAG_S: a standby further behind is not read",
            value=self.max_lag_s,
        )
        fallbacks = CounterMetricFamily(
            "gridwork_replica_fallbacks",
            "Reads sent to the primary instead of the standby, by reason: down, lagging, "
            "not_standby, behind_change (a cache refill the standby had not replayed yet)",
            labels=["reason"],
        )
        for reason, count in sorted(self.fallbacks.items()):
            fallbacks.add_metric([reason], count)
        yield fallbacks
