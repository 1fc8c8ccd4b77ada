"""Split an oversized community into grids of 150-180 households: contiguous, compact, on roads.

The rules a plan must follow, in order of strength:

1. Every grid is **contiguous** (its units joined by shared edges in the unit graph).
2. Every grid holds ``[min_households, max_households]`` households (150-180 by default).
   The number of grids ``k`` is not fixed: any ``k`` the band allows will do.
3. **Locks** hold: a locked grid keeps exactly its units; a locked unit stays in the grid
   named for it (units locked to one code end up together, to different codes apart).
4. Boundaries **follow roads** where they can, cut blocks where they must, and share a
   building between two grids (along its entrances) only as a last resort.
5. Grids are **compact** (Polsby-Popper).

How (:mod:`geo.planning.partition.search`):
where no block holds more households than a grid may, the plan
is first sought on whole blocks by exhaustive search, so that every boundary lies on a road.
Otherwise, or if that fails, recursive bisection along random spanning trees cuts roads
first, blocks next and buildings last, accepting a cut only if each side's households can be
divided into grids with room to spare. Grids left outside the band are repaired (pair
re-splits, chains of them, exact re-solving of rings of grids), then pairs of neighbouring
grids are re-split and single units moved while compactness and road alignment improve.
This runs from several seeds and the best plan is kept. Then, for roundness (Reock), pairs
of grids are cut anew (:func:`~geo.planning.partition.roundness.reshape_pairs`), regions of
a grid and its neighbours are built again from nothing
(:mod:`geo.planning.partition.rebuild`) and single units moved
(:func:`~geo.planning.partition.roundness.polish_reock`), each kept only where the plan's
cost falls. Everything is counted, not timed, so a ``seed`` always gives the same plan.

What cannot be done is reported, never hidden (:class:`SplitIssue`): a community (or a part of
it cut off from the rest) with fewer households than the minimum becomes one flagged grid; a
total that no number of grids can divide inside the band (say 200: one grid is too many
households, two are too few) is split into the closest possible grids, flagged; a unit over the
maximum that cannot be split further is a grid of its own, flagged; a locked grid out of the
band is kept and flagged.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InvalidInput
from geo.planning.metrics import PlanMetrics, check_band, plan_metrics
from geo.planning.partition.problem import Budget, Problem
from geo.planning.partition.rebuild import rebuild_regions
from geo.planning.partition.roundness import (
    polish_reock,
    reock_loss,
    reshape_pairs,
    unit_hulls,
)
from geo.planning.partition.search import Partitioner, split_units
from geo.planning.units import ENTRANCE, Units

__all__ = [
    "OFFROAD_COST_PER_M",
    "SHARED_BUILDING_COST",
    "Budget",
    "SplitIssue",
    "SplitResult",
    "split_community",
]

OFFROAD_COST_PER_M = 0.005
"""Cost of a metre of boundary between grids that is not on a road, against a cost of
``1 − Polsby-Popper`` per grid: 100 m off road weigh as much as half a grid's compactness.
Tuned on the five oversized synthetic communities: four times this keeps 0.3 % more of the
boundary on roads and costs 0.003 of mean Polsby-Popper; zero gains 0.03 and loses 8 % of the
boundary to cuts through blocks. Where whole blocks can make the band, the plan is found on
whole blocks first (:func:`geo.planning.partition.search.split_units`),
so this weight never trades a road
boundary away there."""

SHARED_BUILDING_COST = 0.5
"""Extra cost for each entrance edge cut, i.e. for sharing a building between two grids
(about 100 m of off-road boundary)."""

IssueKind = Literal[
    "below_min", "not_divisible", "unit_over_max", "no_solution", "locked_out_of_band", "lock"
]


@dataclass(frozen=True)
class SplitIssue:
    """One thing the plan could not do, where, and why, in words for the planner."""

    kind: IssueKind
    detail: str
    grids: tuple[str, ...] = ()
    units: tuple[int, ...] = ()


@dataclass(frozen=True)
class SplitResult:
    """A plan: ``assignment`` maps each unit to a grid code; ``grids`` and ``metrics`` say
    how good it is; ``issues`` what it could not do. ``flagged`` grids break a rule."""

    assignment: pd.Series
    metrics: PlanMetrics
    issues: tuple[SplitIssue, ...]
    flagged: frozenset[str]
    seconds: float
    seed: int
    min_households: int
    max_households: int
    locked_grids: frozenset[str] = field(default_factory=frozenset)

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """One row per grid: metrics, ``locked`` and ``flagged``, geometry."""
        out = self.metrics.grids.copy()
        out["locked"] = out.index.isin(sorted(self.locked_grids))
        out["flagged"] = out.index.isin(sorted(self.flagged))
        return out


#: The largest seed ("variant number" on the pages): a plan keeps it in a 32-bit column.
SEED_MAX = 2**31 - 1


def split_community(
    units: Units,
    *,
    min_households: int = 150,
    max_households: int = 180,
    seed: int = 1,
    locked: Mapping[int, str] | None = None,
    locked_grids: Collection[str] = (),
    code_prefix: str = "G",
    budget: Budget | None = None,
    polish: bool = True,
) -> SplitResult:
    """Partition a community's units into grids inside the household band (see module doc).

    ``polish`` runs the last passes for Reock (:mod:`geo.planning.partition.roundness`,
    :mod:`geo.planning.partition.rebuild`); ``False`` gives the search's plan as it was
    before them (for the benchmark).

    ``locked`` maps unit positions to the grid code they must stay in; the codes listed in
    ``locked_grids`` are frozen: exactly the units locked to them, nothing added or taken.
    New grids are named ``{code_prefix}01``, ``{code_prefix}02`` … in reading order (north to
    south, then west to east), skipping codes already locked.
    """
    start = time.perf_counter()
    check_band(min_households, max_households)
    if len(units) == 0:
        raise InvalidInput("the community has no units", field="units")
    locked = dict(locked or {})
    _check_locks(units, locked, locked_grids)
    lo, hi = int(min_households), int(max_households)
    labels = sorted(set(locked.values()))
    label_id = {code: i for i, code in enumerate(labels)}
    frozen_codes = set(locked_grids)

    problem = _problem(units, {u: label_id[c] for u, c in locked.items()})
    issues: list[SplitIssue] = []
    grids: list[tuple[list[int], str | None, bool]] = []  # units, locked code, flagged

    # 1. Frozen grids stay as they are.
    frozen_units: set[int] = set()
    for code in sorted(frozen_codes):
        members = sorted(u for u, c in locked.items() if c == code)
        frozen_units.update(members)
        total = sum(problem.w[u] for u in members)
        bad_band = not lo <= total <= hi
        if bad_band:
            issues.append(
                SplitIssue(
                    "locked_out_of_band",
                    f"locked grid {code} holds {total} households, outside {lo}-{hi}; kept",
                    (code,),
                )
            )
        grids.append((members, code, bad_band))

    # 2. Units over the maximum cannot be split: each is a grid of its own.
    free = [u for u in range(problem.n) if u not in frozen_units]
    over = [u for u in free if problem.w[u] > hi]
    for u in over:
        issues.append(
            SplitIssue(
                "unit_over_max",
                f"unit {u} holds {problem.w[u]} households, over {hi}, and cannot be split",
                units=(u,),
            )
        )
        grids.append(([u], _claim_label(problem, u, labels, issues), True))
    taken = frozen_units | set(over)

    # 3. Each connected part of the rest is split on its own, then all are repaired and
    #    improved together.
    part = Partitioner(problem, lo, hi, seed, budget)
    todo: list[list[int]] = []
    for comp in problem.components({u for u in range(problem.n) if u not in taken}):
        _drop_split_labels(problem, comp, labels, issues)
        total = sum(problem.w[u] for u in comp)
        if total < lo:
            issues.append(
                SplitIssue(
                    "below_min",
                    f"{total} households in a connected part of {len(comp)} unit(s), under "
                    f"the minimum {lo}: kept as one grid",
                    units=tuple(comp[:20]),
                )
            )
            grids.append((comp, _label_of(problem, comp, labels), True))
            continue
        if not part.divisible(total):
            k = part.best_k(total)
            issues.append(
                SplitIssue(
                    "not_divisible",
                    f"{total} households cannot be divided into grids of {lo}-{hi}: "
                    f"{total // hi} grid(s) hold at most {total // hi * hi}, "
                    f"{total // hi + 1} need at least {(total // hi + 1) * lo}; "
                    f"split into {k} grid(s) as close to the band as possible",
                    units=tuple(comp[:20]),
                )
            )
        todo.append(comp)
    if todo:
        missed: list[int] = []
        geoms = np.asarray(units.frame.geometry.values, dtype=object)
        hulls = unit_hulls(geoms)
        shape = reock_loss(problem, hulls)
        found = split_units(problem, todo, lo, hi, seed, budget, shape if polish else None)
        if polish:
            found = reshape_pairs(
                problem, found, hulls, lo=lo, hi=hi, seed=seed, budget=budget or Budget()
            )
            found = rebuild_regions(
                problem, found, lo=lo, hi=hi, seed=seed, budget=budget or Budget(), shape=shape
            )
            found = polish_reock(problem, found, hulls, lo=lo, hi=hi)
        for g in found:
            bad = not lo <= sum(problem.w[u] for u in g) <= hi
            if bad:
                missed.append(g[0])
            grids.append((g, _label_of(problem, g, labels), bad))
        if missed and not any(i.kind == "not_divisible" for i in issues):
            issues.append(
                SplitIssue(
                    "no_solution",
                    f"{len(missed)} grid(s) could not be brought into {lo}-{hi}; flagged",
                    units=tuple(missed[:20]),
                )
            )

    assignment, flagged_codes = _name_grids(units, grids, code_prefix, issues)
    metrics = plan_metrics(units, assignment, min_households=lo, max_households=hi)
    return SplitResult(
        assignment=assignment,
        metrics=metrics,
        issues=tuple(issues),
        flagged=frozenset(flagged_codes),
        seconds=time.perf_counter() - start,
        seed=seed,
        min_households=lo,
        max_households=hi,
        locked_grids=frozenset(frozen_codes),
    )


# --- helpers ---------------------------------------------------------------------------------


def _problem(units: Units, label: Mapping[int, int]) -> Problem:
    frame = units.frame
    g = units.graph
    pts = shapely.point_on_surface(np.asarray(frame.geometry.values, dtype=object))
    offroad = g.length_m - g.road_m
    cost = OFFROAD_COST_PER_M * offroad + SHARED_BUILDING_COST * (g.kind == ENTRANCE)
    labels = [-1] * len(frame)
    for u, lab in label.items():
        labels[u] = lab
    return Problem(
        w=frame["households"].astype(int).tolist(),
        area=frame["area_m2"].astype(float).tolist(),
        perim=frame["perimeter_m"].astype(float).tolist(),
        eu=g.u.tolist(),
        ev=g.v.tolist(),
        elen=g.length_m.tolist(),
        ecost=cost.tolist(),
        ekind=g.kind.astype(int).tolist(),
        label=labels,
        block=frame["block"].astype(int).tolist(),
        x=shapely.get_x(pts).tolist(),
        y=shapely.get_y(pts).tolist(),
    )


def _label_of(problem: Problem, units: list[int], labels: list[str]) -> str | None:
    """The locked code a grid carries, if any of its units is locked."""
    found = sorted({labels[problem.label[u]] for u in units if problem.label[u] >= 0})
    return found[0] if found else None


def _claim_label(
    problem: Problem, unit: int, labels: list[str], issues: list[SplitIssue]
) -> str | None:
    """An over-maximum unit is a grid of its own: it keeps its locked code, and other units
    locked to that code lose the lock (reported), since they cannot join it."""
    lab = problem.label[unit]
    if lab < 0:
        return None
    others = [u for u in range(problem.n) if problem.label[u] == lab and u != unit]
    if others:
        _drop_lock(
            problem,
            others,
            labels[lab],
            f"unit {unit}, locked to {labels[lab]}, is a grid on its own (over the "
            f"maximum); the lock on {len(others)} other unit(s) was dropped",
            issues,
        )
    return labels[lab]


def _drop_split_labels(
    problem: Problem, comp: list[int], labels: list[str], issues: list[SplitIssue]
) -> None:
    """A code locked on units in two disconnected parts cannot be one grid: keep the part
    holding most of them and drop the lock elsewhere (reported)."""
    in_comp = set(comp)
    for lab in sorted({problem.label[u] for u in comp if problem.label[u] >= 0}):
        everywhere = [u for u in range(problem.n) if problem.label[u] == lab]
        here = [u for u in everywhere if u in in_comp]
        if len(here) == len(everywhere):
            continue
        if 2 * len(here) < len(everywhere) or (
            2 * len(here) == len(everywhere) and min(here) > min(everywhere)
        ):
            _drop_lock(
                problem,
                here,
                labels[lab],
                f"units locked to {labels[lab]} lie in parts that do not touch; "
                f"the lock on {len(here)} of them was dropped",
                issues,
            )


def _drop_lock(
    problem: Problem, units: list[int], code: str, detail: str, issues: list[SplitIssue]
) -> None:
    """Unlock ``units``, which cannot be in the grid locked as ``code``, and say why."""
    for u in units:
        problem.label[u] = -1
    issues.append(SplitIssue("lock", detail, (code,), tuple(units[:20])))


def _name_grids(
    units: Units,
    grids: list[tuple[list[int], str | None, bool]],
    prefix: str,
    issues: list[SplitIssue],
) -> tuple[pd.Series, set[str]]:
    pts = shapely.point_on_surface(np.asarray(units.frame.geometry.values, dtype=object))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    w = units.frame["households"].to_numpy()
    keys = []
    for members, _, _ in grids:
        m = np.asarray(members)
        weight = w[m] + 1e-9
        keys.append(
            (-float(np.average(y[m], weights=weight)), float(np.average(x[m], weights=weight)))
        )
    order = sorted(range(len(grids)), key=lambda i: keys[i])
    used = {code for _, code, _ in grids if code is not None}
    codes: list[str | None] = [code for _, code, _ in grids]
    counter = 0
    for i in order:
        if codes[i] is None:
            while True:
                counter += 1
                candidate = f"{prefix}{counter:02d}"
                if candidate not in used:
                    break
            codes[i] = candidate
            used.add(candidate)
    assignment = np.empty(len(units), dtype=object)
    flagged: set[str] = set()
    for (members, _, bad), code in zip(grids, codes, strict=True):
        assignment[members] = code
        if bad:
            flagged.add(str(code))
    # Issues found before naming refer to units; name their grids now.
    for k, issue in enumerate(issues):
        if issue.units and not issue.grids:
            named = tuple(sorted({str(assignment[u]) for u in issue.units}))
            issues[k] = SplitIssue(issue.kind, issue.detail, named, issue.units)
    return pd.Series(assignment, index=units.frame.index, name="grid"), flagged


def _check_locks(units: Units, locked: Mapping[int, str], locked_grids: Collection[str]) -> None:
    n = len(units)
    for u, code in locked.items():
        if not isinstance(u, int | np.integer) or not 0 <= int(u) < n:
            raise InvalidInput(f"no unit {u!r} in this community", field="locked")
        if not isinstance(code, str) or not code:
            raise InvalidInput(
                f"grid code must be a non-empty string, got {code!r}", field="locked"
            )
    missing = sorted(set(locked_grids) - set(locked.values()))
    if missing:
        raise InvalidInput(
            f"locked grid(s) {', '.join(missing)} have no locked units", field="locked_grids"
        )
