"""The demo's simulated watches: walks along the stored roads, replayed over HTTP as OsmAnd
reports while ``gridwork demo`` serves, so positions and alerts arrive live.

An adapter, like a real watch: it knows nothing of the database once started. Each watch
posts one report every ``interval_s`` to ``/ingest/osmand`` with its own key (``X-API-Key``),
stamped with the time it is sent. The walks come from :mod:`geo.care.walks` on the road
graph of the stored roads: the wanderer (the first demo elder, whose safe zone is a 150 m
circle) stands at home a minute, walks out of the zone (a ``left_zone`` alert), waits and
comes back (``returned``), again and again; the others stroll inside their zones. A watch
enrolled in GCJ-02 (the synthetic district is in China) sends its positions shifted into
GCJ-02, as such a watch would.

The watches' keys are kept in ``<state>/demo-devices.txt`` (mode 600), so that a second
``gridwork demo`` reuses them (only digests are stored in the database).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from pyproj import Transformer
from sqlalchemy import Engine

from data.care import queries as care_q
from data.coverage.service import NetworkCache
from data.crs import metric_epsg
from data.db import transaction
from data.importing.loading import DemoElder
from data.settings import Settings
from geo.care.datum import Datum, from_wgs84
from geo.care.safezone import SafeZone
from geo.care.walks import WalkFix, excursion, on_road, stroll
from geo.coverage.road_graph import RoadGraph
from geo.errors import GridworkError

log = logging.getLogger("gridwork.demo")

INTERVAL_S = 10.0
STROLL_FIXES = 60  # ten minutes of strolling per walk
AT_HOME_FIXES = 6  # a minute at home between the wanderer's outings

#: Sends one OsmAnd report (its parameters) with a device key; the HTTP status.
Send = Callable[[Mapping[str, str], str], int]


def read_keys(path: Path) -> dict[str, str]:
    """Device code → key, from the demo's keys file (empty when there is none)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        code, _, key = line.partition(": ")
        if code and key:
            out[code] = key.strip()
    return out


def write_keys(path: Path, elders: Iterable[DemoElder]) -> None:
    """The watches' keys, readable by the owner only (the file is made mode 600 first)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{e.device_code}: {e.key}\n" for e in elders))


@dataclass
class Watch:
    """One demo watch and the walk it is replaying (metric CRS)."""

    device_code: str
    key: str
    datum: str
    wanders: bool
    home: tuple[float, float]  # on the road nearest home
    zone: SafeZone
    seed: int
    battery: float = 95.0
    cycle: int = 0
    pending: deque[WalkFix] = field(default_factory=deque)
    last: tuple[float, float] | None = None  # where the last stroll ended

    def next_fix(self, graph: RoadGraph, now: datetime) -> WalkFix:
        if not self.pending:
            self.pending.extend(self._walk(graph, now))
            self.cycle += 1
        return self.pending.popleft()

    def _walk(self, graph: RoadGraph, now: datetime) -> list[WalkFix]:
        seed = self.seed * 1000 + self.cycle
        if self.wanders:
            rest = [WalkFix(*self.home, now) for _ in range(AT_HOME_FIXES)]
            out = excursion(graph, self.home, self.zone, seed=seed, start_time=now)
            return rest + out
        start = self.last or self.home
        walk = stroll(graph, start, seed=seed, fixes=STROLL_FIXES, start_time=now, within=self.zone)
        self.last = (walk[-1].x, walk[-1].y)
        return walk


class Replay:
    """The watches' walks, one report per watch per :meth:`step`."""

    def __init__(self, graph: RoadGraph, watches: Sequence[Watch], *, epsg: int) -> None:
        self.graph = graph
        self.watches = list(watches)
        self._to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)

    def report(self, watch: Watch, now: datetime) -> dict[str, str]:
        """The OsmAnd parameters of the watch's next position, sent at ``now``."""
        fix = watch.next_fix(self.graph, now)
        lon, lat = self._to_wgs84.transform(fix.x, fix.y)
        if watch.datum != "wgs84":
            lon, lat = from_wgs84(lon, lat, cast("Datum", watch.datum))
        watch.battery = 95.0 if watch.battery <= 40 else watch.battery - 0.1
        return {
            "id": watch.device_code,
            "lat": f"{lat:.7f}",
            "lon": f"{lon:.7f}",
            "timestamp": now.astimezone(UTC).isoformat(timespec="seconds"),
            "accuracy": "8",
            "batt": f"{watch.battery:.0f}",
            "speed": "0.6",
            "speed_unit": "mps",
        }

    def step(self, send: Send, now: datetime) -> list[int]:
        """One report from every watch, all stamped ``now``; their HTTP statuses."""
        return [send(self.report(w, now), w.key) for w in self.watches]

    def run(
        self,
        base_url: str,
        stop: threading.Event,
        *,
        interval_s: float = INTERVAL_S,
        wait_s: float = 120.0,
    ) -> None:
        """Wait for ``/health``, then send until ``stop`` is set, spreading the watches'
        reports over each interval."""
        if not _wait_for_health(base_url, stop, wait_s):
            log.warning("demo watches: %s never answered /health; not replaying", base_url)
            return
        send = http_sender(base_url)
        complained = 0.0
        while not stop.is_set():
            for watch in list(self.watches):
                status = 0
                try:
                    params = self.report(watch, datetime.now(UTC))
                except GridworkError as exc:  # no walk from this home: the others go on
                    log.warning("demo watch %s stops: %s", watch.device_code, exc)
                    self.watches.remove(watch)
                    continue
                try:
                    status = send(params, watch.key)
                except (OSError, ValueError) as exc:
                    log.debug("demo watch %s: %s", watch.device_code, exc)
                if status != 200 and time.monotonic() - complained > 60:
                    complained = time.monotonic()
                    log.warning("demo watch %s: HTTP %s", watch.device_code, status or "error")
                if stop.wait(interval_s / max(1, len(self.watches))):
                    return


def http_sender(base_url: str, *, timeout_s: float = 10.0) -> Send:
    """Posts reports to ``<base_url>/ingest/osmand`` (url-encoded, key in ``X-API-Key``)."""
    url = base_url.rstrip("/") + "/ingest/osmand"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url[:40]!r}")

    def send(params: Mapping[str, str], key: str) -> int:
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-API-Key": key, "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    return send


def _wait_for_health(base_url: str, stop: threading.Event, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    url = base_url.rstrip("/") + "/health"
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http URL
                if response.status == 200:
                    return True
        except (OSError, ValueError):
            pass
        stop.wait(0.5)
    return False


def prepare(engine: Engine, settings: Settings, elders: Sequence[DemoElder]) -> Replay | None:
    """The replay of the demo elders' watches over the stored roads, or None without roads
    or elders."""
    if not elders:
        return None
    with transaction(engine) as session:
        epsg = metric_epsg(session, settings.metric_epsg)
        if epsg is None:
            return None
        graph = NetworkCache().graph(session.connection(), epsg)
        contexts = care_q.lock_zones(session, [e.elder_id for e in elders], epsg=epsg)
    to_metric = Transformer.from_crs(4326, epsg, always_xy=True)
    watches = []
    for elder in elders:
        ctx = contexts.get(elder.elder_id)
        if ctx is None:
            continue
        x, y = to_metric.transform(elder.home_lon, elder.home_lat)
        watches.append(
            Watch(
                device_code=elder.device_code,
                key=elder.key,
                datum=elder.datum,
                wanders=elder.wanders,
                home=on_road(graph, x, y),
                zone=ctx.zone,
                seed=elder.elder_id,
            )
        )
    return Replay(graph, watches, epsg=epsg)


def start(replay: Replay, port: int, *, interval_s: float = INTERVAL_S) -> threading.Event:
    """Replay in a daemon thread against the local server on ``port``; set the returned
    event to stop it (the process ending stops it too)."""
    stop = threading.Event()
    threading.Thread(
        target=replay.run,
        args=(f"http://127.0.0.1:{port}", stop),
        kwargs={"interval_s": interval_s},
        name="gridwork-demo-watches",
        daemon=True,
    ).start()
    return stop
