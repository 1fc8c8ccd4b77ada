"""City-wide walking coverage for every facility kind, one task per kind.

This process reads what :func:`data.coverage.service.coverage` reads for an admin (every
grid, or every community where there are no grids yet; the road graph; every household
snapped onto it) once, ships it to each worker once, and sends each worker only a kind's
facilities. A task runs the walk a request runs (:func:`data.coverage.service.walk_kind`) and
returns the numbers per area, the very numbers ``GET /coverage`` answers for that kind;
nothing is drawn and no household leaves as a point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine

from data.batch.clock import BatchTimes, Stopwatch
from data.batch.runner import Runner
from data.coverage.service import Level, NetworkCache, checked_kinds, walk_kind
from geo.coverage.walk import DEFAULT_SPEED_KMH, RoadGraph, Snap, facilities_of_kind


@dataclass(frozen=True)
class KindCoverage:
    """One kind's numbers per area (indexed by code): ``data.coverage.service.NUMBERS``,
    and ``score`` when every facility of the kind has a capacity."""

    kind: str
    areas: pd.DataFrame

    @property
    def household_share(self) -> float | None:
        households = int(self.areas["households"].sum())
        return int(self.areas["covered_households"].sum()) / households if households else None


@dataclass(frozen=True, kw_only=True)
class CoverageBatch(BatchTimes):
    """Every kind's numbers in kind order; nothing is written (``write_s`` 0)."""

    minutes: float
    level: Level
    kinds: tuple[KindCoverage, ...]


@dataclass(frozen=True)
class _Kind:
    kind: str
    facilities: gpd.GeoDataFrame  # metric CRS


def coverage_task(
    item: _Kind,
    *,
    graph: RoadGraph,
    areas: gpd.GeoDataFrame,
    homes_xy: np.ndarray,
    crs: str,
    household_grid: np.ndarray | None,
    snap: Snap,
    minutes: float,
    speed_kmh: float,
) -> pd.DataFrame:
    """One kind's walk over every area, on a worker: the numbers per area code."""
    # Coordinates travel (16 bytes a household), the points are made here.
    homes = gpd.GeoDataFrame(geometry=shapely.points(homes_xy), crs=crs)
    _, numbers = walk_kind(
        graph,
        item.facilities,
        areas,
        homes,
        minutes=minutes,
        speed_kmh=speed_kmh,
        household_grid=household_grid,
        household_snap=snap,
        straight_line=False,
    )
    numbers.index = pd.Index(areas["code"].astype(str).to_numpy(), name="code")
    return numbers


def cover_every_kind(
    engine: Engine,
    runner: Runner,
    *,
    minutes: float = 15.0,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    kinds: list[str] | None = None,
    metric_override: int | None = None,
) -> CoverageBatch:
    """Coverage of every facility kind (or of ``kinds``) over the whole city."""
    clock = Stopwatch()
    with clock.phase("read"):
        with engine.connect() as conn:
            wanted = checked_kinds(conn, kinds, minutes=minutes, speed_kmh=speed_kmh)
            epsg, level, areas, graph, homes, facilities = NetworkCache().walk_inputs(
                conn, None, kind=None, override=metric_override
            )
        metric = f"EPSG:{epsg}"
        mask, household_grid = homes.in_areas(level, areas)  # as data.coverage.service.coverage
        shared = runner.share(
            graph=graph,
            areas=areas.to_crs(metric),
            homes_xy=homes.xy[mask],
            household_grid=household_grid,
            snap=homes.snap_of(mask),
        )

    def items() -> list[_Kind]:
        return [_Kind(k, facilities_of_kind(facilities, k).to_crs(metric)) for k in wanted]

    constants: dict[str, Any] = {
        "minutes": float(minutes),
        "speed_kmh": float(speed_kmh),
        "crs": metric,
    }
    done = runner.imap(coverage_task, items(), shared={**shared, **constants}, label="coverage")
    results = {item.kind: KindCoverage(item.kind, table) for item, table in done}
    return CoverageBatch(
        minutes=float(minutes),
        level=level,
        kinds=tuple(results[k] for k in sorted(results)),
        **clock.times(runner.name),
    )
