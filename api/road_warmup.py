"""The walking graph, built in the background as the app starts.

The first coverage request used to build the road graph and snap every household onto it
(seconds on a large district) while the user waited. The app starts a thread that does it
at once instead (:class:`RoadWarmup`), so the first coverage page is as fast as the next;
the coverage page shows its progress sign only while that thread is still at work, or
while no graph was ever built (an app that was not warmed builds on first use).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data.coverage.service import NetworkCache
from data.crs import metric_epsg
from geo.errors import GridworkError

log = logging.getLogger(__name__)


class RoadWarmup:
    """One background build of the app's road graph and its snapped households."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def start(self, engine: Engine, cache: NetworkCache) -> None:
        """Build in a daemon thread (start-up does not wait; shutdown does not either)."""
        self._thread = threading.Thread(
            target=_build,
            args=(engine, cache),
            name="gridwork-road-graph",
            daemon=True,
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float) -> bool:
        """Whether the build is over (or never started) within ``timeout_s``."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.running


def _build(engine: Engine, cache: NetworkCache) -> None:
    """The graph and the households on it, in the stored metric CRS, as the first coverage
    request would build them (:func:`data.coverage.service.coverage`). Nothing stored yet
    (no CRS chosen, no roads) is no error: the first request says so."""
    try:
        with engine.connect() as conn:
            epsg = metric_epsg(conn)
            if epsg is None:
                return
            graph = cache.graph(conn, epsg)
            cache.households(conn, graph, epsg)
    except GridworkError as exc:
        log.info("road graph not built at start-up: %s", exc)
    except SQLAlchemyError as exc:  # the first coverage request builds it instead
        log.warning("road graph not built at start-up: %s", exc)


def still_building(warmup: RoadWarmup, cache: NetworkCache) -> bool:
    """Whether a coverage request now would wait for the graph: show the progress sign."""
    return warmup.running or cache.builds == 0
