"""Plans: drafts splitting a community into grids, their metrics, edits, publishing, lineage.

A plan's ``metrics``, ``issues`` and ``params`` are the planner's own records (JSON columns,
keys added as metrics are): they stay free-form objects here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas import Answer, Timestamp
from api.schemas.geojson import FeatureCollection


class PlanGrid(Answer):
    code: str
    households: int
    locked: bool
    flagged: bool
    metrics: dict[str, Any] | None
    published_code: str | None = Field(description="the grid's code once published")


class Plan(Answer):
    id: int
    community: str
    status: str = Field(description="draft or published")
    min_households: int
    max_households: int
    seed: int | None
    author: str | None
    metrics: dict[str, Any] | None
    issues: list[Any] | dict[str, Any] | None
    seconds: float | None = Field(description="how long the split took")
    created_at: Timestamp
    published_at: Timestamp | None
    params: dict[str, Any] | None
    effective: str | None = Field(description="the day its grids take effect (ISO date)")
    switched_at: Timestamp | None
    published_by: str | None
    scheduled: bool = Field(description="published, waiting for its effective date")
    stale: bool = Field(description="the community changed since it was drafted")
    grids: list[PlanGrid]


class Resplit(Plan):
    moved_units: int


class PlanRow(Answer):
    id: int
    community: str
    community_name: str | None = None
    status: str
    author: str | None
    created_at: Timestamp
    grids: int | None
    in_band: int | float | None
    effective: str | None
    switched_at: Timestamp | None
    seed: int | None
    min_households: int
    max_households: int


class Plans(Answer):
    plans: list[PlanRow]


class ComparedMetric(Answer):
    metric: str
    a: Any
    b: Any
    better: int | None = Field(description="the plan that does better, where it is clear")


class Comparison(Answer):
    a: int
    b: int
    rows: list[ComparedMetric]


class Published(Answer):
    plan: int
    community: str
    effective: str
    scheduled: bool = Field(description="true: the switch waits for the effective date")
    grids_closed: int
    grids_created: int
    reassigned: dict[str, int] = Field(description="rows reassigned, per table")
    cases_handed_over: int = Field(
        0, description="open grid cases handed to the worker their new grid has (at the switch)"
    )
    zones_redrawn: int = Field(
        0, description="elders' 'home grid' safe zones redrawn from their new home grid"
    )


class Step(Answer):
    seq: int
    kind: str
    summary: str | None
    author: str | None
    at: Timestamp
    state: str = Field(description="done or undone")
    state_at: Timestamp | None
    state_by: str | None
    units: int | None
    forced: bool = Field(False, description="a move made despite the band and contiguity checks")


class Steps(Answer):
    steps: list[Step] = Field(description="newest first")
    can_undo: bool
    can_redo: bool


class Undone(Answer):
    undone: int
    summary: str | None


class Redone(Answer):
    redone: int
    summary: str | None


class LineageRow(Answer):
    old: str
    new: str
    shared_m2: float
    share: float | None


class Lineage(Answer):
    lineage: list[LineageRow]


class WorkerOption(Answer):
    id: int
    name: str


class GridWorkers(Answer):
    grid_id: int
    code: str
    households: int
    worker_id: int | None
    worker: str | None
    suggested_id: int | None
    suggested: str | None
    options: list[WorkerOption]
    grids_of_worker: int
    needs_attention: bool


class WorkerStep(Answer):
    grids: list[GridWorkers]


class GridOn(Answer):
    grid: str
    community: str
    valid_from: str
    valid_to: str | None


class OutOfBand(Answer):
    code: str
    households: int


class OversizeCommunity(Answer):
    code: str
    name: str | None
    households: int
    grids: int
    grids_over: int
    grids_under: int
    out_of_band: list[OutOfBand]


class Oversize(Answer):
    min: int
    max: int
    communities: list[OversizeCommunity]


class Moved(Answer):
    """200 when the units moved (or, with ``check_only``, would move freely); 409 otherwise."""

    moved: bool
    problems: list[str] = Field(description="every rule the move breaks")


class UnitGraph(FeatureCollection):
    """A plan's units (features) and which touch which (``edges``: pairs of unit ids)."""

    plan: int
    min_households: int
    max_households: int
    edges: list[tuple[int, int]]
