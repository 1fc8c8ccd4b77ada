"""A draft plan for every oversized community, one split per task.

The oversize report (:func:`data.planning.service.oversize_report`) names the communities;
this process reads each one's outline, roads, buildings and household points from the store
(plain frames), a task cuts them into units (blocks, lots, entrances) and splits those
(:func:`geo.planning.split.split_community`, pure, seeded, so a worker anywhere gives the
same grids), and this process keeps each result as a draft through
:func:`data.planning.service.save_draft`, one transaction per community. A community that
cannot be planned (no buildings, say) is reported with its reason; the others still are.
Reading and writing stay serial on the one store; only the splitting is spread out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
import shapely
from sqlalchemy import Engine

from data.batch.clock import BatchTimes, Stopwatch
from data.batch.runner import Runner
from data.crs import metric_epsg
from data.db import transaction
from data.planning.service import (
    CommunityRef,
    UnitInputs,
    community_ref,
    community_unit_inputs,
    oversize_report,
    save_draft,
)
from data.settings import Settings
from geo.errors import GridworkError, InvalidInput
from geo.planning.metrics import check_band
from geo.planning.split import Budget, SplitResult, split_community
from geo.planning.units import Units


@dataclass(frozen=True)
class CommunityPlan:
    """One community's outcome: its draft (``plan_id``) and unit → grid code, or ``error``."""

    community: str
    households: int
    plan_id: int | None
    assignment: pd.Series | None
    grids: int
    in_band_share: float | None
    issues: tuple[str, ...]
    split_s: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlanBatch(BatchTimes):
    """Every oversized community's outcome in code order, and where the time went."""

    communities: tuple[CommunityPlan, ...]

    @property
    def planned(self) -> int:
        return sum(1 for c in self.communities if c.error is None)


@dataclass(frozen=True)
class _Job:
    community: CommunityRef
    households: int
    inputs: UnitInputs | None
    error: str | None = None


def split_task(
    job: _Job, *, min_households: int, max_households: int, seed: int, budget: Budget | None
) -> tuple[Units, SplitResult] | GridworkError:
    """One community cut into units and split, on a worker; a refusal comes back as a
    value, not a crash. So does the geometry engine giving up on this community's data
    (GEOS on odd footprints): the batch goes on with the other communities and reports
    this one with the reason."""
    assert job.inputs is not None
    try:
        units = job.inputs.build()
        return units, split_community(
            units,
            min_households=min_households,
            max_households=max_households,
            seed=seed,
            code_prefix=f"{job.community.code}-G",
            budget=budget,
        )
    except GridworkError as exc:
        return exc
    except shapely.errors.GEOSException as exc:
        return GridworkError(f"the geometry engine could not cut this community: {exc}")


def plan_oversized(
    engine: Engine,
    runner: Runner,
    *,
    settings: Settings,
    seed: int = 1,
    min_households: int | None = None,
    max_households: int | None = None,
    communities: Sequence[str] | None = None,
    author: str = "gridwork batch",
    write: bool = True,
    budget: Budget | None = None,
) -> PlanBatch:
    """Draft a plan for every community outside the band (or those of ``communities``
    among them); ``write=False`` splits without keeping drafts. ``budget`` is the
    splitter's (:class:`~geo.planning.split.Budget`; the default is the planner's)."""
    clock = Stopwatch()
    lo = settings.household_min if min_households is None else min_households
    hi = settings.household_max if max_households is None else max_households
    check_band(lo, hi)
    outcomes: list[CommunityPlan] = []
    with transaction(engine) as db:
        ids = None
        if communities is not None:
            ids = [community_ref(db, code).id for code in communities]
        rows = oversize_report(db, min_households=lo, max_households=hi, community_ids=ids)
        epsg = metric_epsg(db, settings.metric_epsg)
        if epsg is None:
            raise InvalidInput("no data yet: import communities first", field="community")

        def jobs() -> Iterator[_Job]:
            for row in rows:
                with clock.phase("read"):
                    ref = community_ref(db, str(row["code"]))
                    try:
                        inputs = community_unit_inputs(
                            db, ref, epsg=epsg, snap_m=settings.snap_tolerance_m
                        )
                        job = _Job(ref, int(row["households"]), inputs)
                    except GridworkError as exc:
                        job = _Job(ref, int(row["households"]), None, str(exc))
                yield job

        def failed(job: _Job, reason: str) -> CommunityPlan:
            return CommunityPlan(
                job.community.code, job.households, None, None, 0, None, (), 0, reason
            )

        def planned() -> Iterator[_Job]:
            for job in jobs():
                if job.inputs is None:
                    outcomes.append(failed(job, job.error or ""))
                else:
                    yield job

        results = runner.imap(
            split_task,
            planned(),
            shared={"min_households": lo, "max_households": hi, "seed": seed, "budget": budget},
            label="split",
        )
        for job, done in results:
            if isinstance(done, GridworkError):
                outcomes.append(failed(job, str(done)))
                continue
            units, result = done
            plan_id = None
            if write:
                with clock.phase("write"), transaction(engine) as own:
                    plan_id = save_draft(own, job.community, units, result, author=author)
            summary = result.metrics.summary()
            outcomes.append(
                CommunityPlan(
                    community=job.community.code,
                    households=job.households,
                    plan_id=plan_id,
                    assignment=result.assignment,
                    grids=int(summary["n_grids"]),
                    in_band_share=float(summary["in_band_share"]),
                    issues=tuple(f"{i.kind}: {i.detail}" for i in result.issues),
                    split_s=result.seconds,
                )
            )
    return PlanBatch(
        communities=tuple(sorted(outcomes, key=lambda c: c.community)),
        **clock.times(runner.name),
    )
