"""Every stored point reassigned to its grid, in chunks of points as tasks.

The rule is :mod:`data.assignment.service`'s (``ST_Covers`` on the stored coordinates, lowest
code on a shared edge, a snap within the tolerance). This process reads the grids and the
points (binary ``COPY``), ships the grid index to every worker once (``Client.scatter``),
sends each task a chunk of coordinates, and writes back the rows whose grid changed, all in
one transaction: the whole run is stored or none of it. A point's grid does not depend on
the chunk it travelled in, so the answer is the serial one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine

from data.assignment.service import (
    POINT_TABLES,
    GridIndex,
    Placed,
    TableResult,
    assigned_grid_ids,
    load_grid_index,
    read_points,
    write_changes,
)
from data.batch.clock import BatchTimes, Stopwatch
from data.batch.runner import Runner
from data.db import transaction
from data.settings import Settings
from geo.errors import InvalidInput

CHUNK = 20_000


@dataclass(frozen=True)
class TableAssignment:
    """One table's outcome: what was written, and each row's new grid id (-1: none), by id."""

    result: TableResult
    ids: NDArray[np.int64]
    grid: NDArray[np.int64]
    snapped: NDArray[np.bool_]
    distance_m: NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class AssignBatch(BatchTimes):
    """Every table's outcome, in the order asked, and the seconds spent placing points."""

    tables: tuple[TableAssignment, ...]
    place_s: float


@dataclass(frozen=True)
class _Chunk:
    start: int
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]


def place_task(chunk: _Chunk, *, index: GridIndex) -> Placed:
    """One chunk of WGS-84 points placed in the grids, on a worker."""
    return index.assign(chunk.lon, chunk.lat)


def assign_everything(
    engine: Engine,
    runner: Runner,
    *,
    settings: Settings,
    tables: Iterable[str] = POINT_TABLES.values(),
    chunk: int = CHUNK,
) -> AssignBatch:
    """Reassign every row of ``tables`` (households, facilities, incidents by default)."""
    if chunk <= 0:
        raise InvalidInput("must be > 0", field="chunk")
    clock = Stopwatch()
    outcomes = []
    with transaction(engine) as db:
        with clock.phase("read"):
            index = load_grid_index(db, settings=settings)
            shared = runner.share(index=index)
        for table in tables:
            with clock.phase("read"):
                points = read_points(db, table)

            def chunks(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> Iterator[_Chunk]:
                for start in range(0, len(lon), chunk):
                    yield _Chunk(start, lon[start : start + chunk], lat[start : start + chunk])

            with clock.phase("place"):
                parts = {
                    part.start: placed
                    for part, placed in runner.imap(
                        place_task, chunks(points.lon, points.lat), shared=shared, label="place"
                    )
                }
                placed = _joined([parts[s] for s in sorted(parts)], len(points.id))
            with clock.phase("write"):
                result = write_changes(db, table, index, points, placed)
            order = np.argsort(points.id)  # COPY gives heap order, which an UPDATE changes
            outcomes.append(
                TableAssignment(
                    result=result,
                    ids=points.id[order],
                    grid=assigned_grid_ids(index, placed)[order],
                    snapped=placed.snapped[order],
                    distance_m=placed.distance_m[order],
                )
            )
    return AssignBatch(
        tables=tuple(outcomes), place_s=clock.seconds["place"], **clock.times(runner.name)
    )


def _joined(parts: list[Placed], n: int) -> Placed:
    if not parts:
        empty = np.empty(0, dtype=np.intp)
        return Placed(empty, np.empty(0, dtype=bool), np.empty(0), empty.copy())
    placed = Placed(
        area=np.concatenate([p.area for p in parts]),
        snapped=np.concatenate([p.snapped for p in parts]),
        distance_m=np.concatenate([p.distance_m for p in parts]),
        nearest=np.concatenate([p.nearest for p in parts]),
    )
    assert len(placed.area) == n
    return placed
