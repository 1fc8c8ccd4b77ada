"""The planner's workspace on a draft: units as GeoJSON, edits kept as steps (undo and redo
survive a reload and can be audited), re-splitting around locked grids; after publishing, the
lineage of old and new grids and the workers' step; exports.

Every edit is a ``plan_step`` row: the units it moved (``[unit, from, to]``) and the grids it
locked or unlocked (``[code, before, after]``). Undo applies the latest ``done`` step
backwards and marks it ``undone``; redo applies the earliest ``undone`` step again; a new edit
drops the ``undone`` ones (kept as ``dropped``, never deleted).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text

from data.incidents.service import follow_grid_workers
from data.planning.service import (
    Db,
    MoveOutcome,
    _epsg,
    _locked_grids,
    _remeasure,
    _require_draft,
    get_plan,
    load_units,
)
from data.settings import Settings
from geo.errors import Conflict, InvalidInput
from geo.planning.metrics import move_unit
from geo.planning.split import split_community
from geo.planning.units import UnitGraph, Units

# --- units as data --------------------------------------------------------------------------


def units_geojson(db: Db, plan_id: int) -> dict[str, Any]:
    """The plan's units (blocks, lots, entrances) with households, grid, lock and the grid
    each lies in today, and the unit graph (pairs of units sharing an edge)."""
    plan = get_plan(db, plan_id)
    rows = db.execute(
        text(
            "SELECT u.unit, u.grid_code, u.households, u.block, u.level, u.locked, "
            "ST_AsGeoJSON(u.geom, 7) AS geometry, "
            "(SELECT g.code FROM grid g WHERE g.community_id = :c AND g.valid_to IS NULL "
            " AND ST_Intersects(g.geom, ST_PointOnSurface(u.geom)) ORDER BY g.code LIMIT 1) "
            "AS current_grid FROM plan_unit u WHERE u.plan_id = :p ORDER BY u.unit"
        ),
        {"p": plan_id, "c": plan.community_id},
    ).mappings()
    features = [
        {
            "type": "Feature",
            "id": int(r["unit"]),
            "geometry": json.loads(r["geometry"]),
            "properties": {
                "unit": int(r["unit"]),
                "grid": r["grid_code"],
                "households": int(r["households"]),
                "block": int(r["block"]),
                "level": r["level"],
                "locked": bool(r["locked"]),
                "current_grid": r["current_grid"],
            },
        }
        for r in rows
    ]
    edges = db.execute(
        text("SELECT u, v FROM plan_unit_edge WHERE plan_id = :p ORDER BY edge"), {"p": plan_id}
    ).all()
    return {
        "type": "FeatureCollection",
        "plan": plan_id,
        "min_households": plan.min_households,
        "max_households": plan.max_households,
        "features": features,
        "edges": [[int(u), int(v)] for u, v in edges],
    }


# --- steps ------------------------------------------------------------------------------------


def _record(
    db: Db,
    plan_id: int,
    *,
    kind: str,
    summary: str,
    author: str,
    changes: list[list[Any]] = (),  # type: ignore[assignment]
    locks: list[list[Any]] = (),  # type: ignore[assignment]
    forced: bool = False,
) -> int:
    db.execute(
        text(
            "UPDATE plan_step SET state = 'dropped', state_at = now(), state_by = :a "
            "WHERE plan_id = :p AND state = 'undone'"
        ),
        {"p": plan_id, "a": author},
    )
    return int(
        db.execute(
            text(
                "INSERT INTO plan_step (plan_id, seq, kind, summary, changes, locks, author, "
                "forced) SELECT :p, coalesce(max(seq), 0) + 1, :k, :s, CAST(:c AS jsonb), "
                "CAST(:l AS jsonb), :a, :f FROM plan_step WHERE plan_id = :p RETURNING seq"
            ),
            {
                "p": plan_id,
                "k": kind,
                "s": summary[:200],
                "c": json.dumps(list(changes)),
                "l": json.dumps(list(locks)),
                "a": author,
                "f": forced,
            },
        ).scalar_one()
    )


def steps(db: Db, plan_id: int) -> dict[str, Any]:
    """The plan's edits, newest first, and whether undo and redo are possible. Each says
    what it did as data, for a page to say in its language: ``units`` moved, the grid a
    move went into (``target``), whether it was made despite the checks (``forced``), the
    grids a lock or unlock changed (``grids``); ``summary`` is the English line kept with
    the step."""
    get_plan(db, plan_id)
    rows = (
        db.execute(
            text(
                "SELECT seq, kind, summary, forced, author, at, state, state_at, state_by, "
                "jsonb_array_length(changes) AS units, changes -> 0 ->> 2 AS target, "
                "ARRAY(SELECT x ->> 0 FROM jsonb_array_elements(locks) x) AS grids "
                "FROM plan_step WHERE plan_id = :p ORDER BY seq DESC"
            ),
            {"p": plan_id},
        )
        .mappings()
        .all()
    )
    out = [
        {
            **r,
            "at": r["at"].isoformat(),
            "state_at": r["state_at"].isoformat() if r["state_at"] else None,
        }
        for r in rows
    ]
    return {
        "steps": out,
        "can_undo": any(r["state"] == "done" for r in out),
        "can_redo": any(r["state"] == "undone" for r in out),
    }


def _apply(
    db: Db, plan_id: int, changes: list[list[Any]], locks: list[list[Any]], *, forward: bool
) -> None:
    by_target: dict[str, list[int]] = {}
    for unit, before, after in changes:
        by_target.setdefault(str(after if forward else before), []).append(int(unit))
    for code in sorted(by_target):
        db.execute(
            text("UPDATE plan_unit SET grid_code = :g WHERE plan_id = :p AND unit = ANY(:u)"),
            {"g": code, "p": plan_id, "u": by_target[code]},
        )
    for code, before, after in locks:
        state = bool(after if forward else before)
        db.execute(
            text("UPDATE plan_grid SET locked = :l WHERE plan_id = :p AND code = :c"),
            {"l": state, "p": plan_id, "c": code},
        )
    _sync_locks(db, plan_id)


def _sync_locks(db: Db, plan_id: int) -> None:
    db.execute(
        text(
            "UPDATE plan_unit u SET locked = coalesce((SELECT g.locked FROM plan_grid g "
            "WHERE g.plan_id = u.plan_id AND g.code = u.grid_code), false) WHERE u.plan_id = :p"
        ),
        {"p": plan_id},
    )


def _remeasure_plan(db: Db, plan_id: int, settings: Settings) -> None:
    plan = get_plan(db, plan_id)
    units, assignment, _ = load_units(db, plan_id, epsg=_epsg(db, settings))
    _remeasure(db, plan, units, assignment, _locked_grids(db, plan_id))
    _sync_locks(db, plan_id)


def _load_for_check(db: Db, plan_id: int) -> tuple[Units, Any, set[int]]:
    """What a move's check reads: households, grid and lock per unit and the unit graph,
    without geometry (a brush stroke is checked while the planner paints), as arrays."""
    unit, grid, households, locked = db.execute(
        text(
            "SELECT array_agg(unit ORDER BY unit), array_agg(grid_code ORDER BY unit), "
            "array_agg(households ORDER BY unit), array_agg(locked ORDER BY unit) "
            "FROM plan_unit WHERE plan_id = :p"
        ),
        {"p": plan_id},
    ).one()
    u, v = db.execute(
        text(
            "SELECT array_agg(u ORDER BY edge), array_agg(v ORDER BY edge) "
            "FROM plan_unit_edge WHERE plan_id = :p"
        ),
        {"p": plan_id},
    ).one()
    index = pd.Index(unit or [], name="unit")
    frame = gpd.GeoDataFrame(
        {"households": np.asarray(households or [], dtype=np.int64)}, index=index
    )
    zeros = np.zeros(len(u or []))
    graph = UnitGraph(
        len(index),
        np.asarray(u or [], dtype=np.intp),
        np.asarray(v or [], dtype=np.intp),
        zeros,
        zeros.copy(),
        zeros.astype(np.int8),
    )
    assignment = pd.Series([str(g) for g in grid or []], index=index, name="grid")
    return (
        Units(frame, graph),
        assignment,
        {int(x) for x, k in zip(unit or [], locked or [], strict=True) if k},
    )


def move(
    db: Db,
    plan_id: int,
    *,
    units_to_move: list[int],
    to_grid: str,
    force: bool,
    check_only: bool,
    author: str,
    settings: Settings,
) -> MoveOutcome:
    """Move units into a neighbouring grid (one step); refused with every reason unless
    forced; ``check_only`` answers the same reasons without changing anything."""
    plan = get_plan(db, plan_id)
    _require_draft(plan)
    if check_only:
        units, assignment, locked_units = _load_for_check(db, plan_id)
    else:
        units, assignment, locked_units = load_units(db, plan_id, epsg=_epsg(db, settings))
    unknown = [u for u in units_to_move if u not in assignment.index]
    if unknown:
        raise InvalidInput(f"no unit {unknown[0]} in plan {plan_id}", field="units")
    locked_grids = _locked_grids(db, plan_id)
    result = move_unit(
        units,
        assignment,
        units_to_move,
        to_grid,
        min_households=plan.min_households,
        max_households=plan.max_households,
        locked_units=locked_units,
        locked_grids=locked_grids,
        force=force and not check_only,
    )
    # What the touched grids hold after the move (or would, had it been made).
    would = assignment.copy()
    would.loc[units_to_move] = to_grid
    hh = units.frame["households"].groupby(would.to_numpy()).sum()
    touched = sorted({to_grid} | {str(assignment.loc[u]) for u in units_to_move})
    households = {g: int(hh.get(g, 0)) for g in touched}
    if check_only or not result.moved:
        return MoveOutcome(False, result.problems, households)
    changes = [
        [int(u), str(assignment.loc[u]), to_grid]
        for u in sorted(set(units_to_move))
        if str(assignment.loc[u]) != to_grid
    ]
    db.execute(
        text("UPDATE plan_unit SET grid_code = :g WHERE plan_id = :p AND unit = ANY(:u)"),
        {"g": to_grid, "p": plan_id, "u": [c[0] for c in changes]},
    )
    _remeasure(db, plan, units, result.assignment, locked_grids)
    _record(
        db,
        plan_id,
        kind="move",
        summary=f"{len(changes)} unit(s) into {to_grid}" + (" (forced)" if force else ""),
        author=author,
        changes=changes,
        forced=force,
    )
    return MoveOutcome(True, result.problems, households)


def lock(db: Db, plan_id: int, codes: list[str], *, locked: bool, author: str) -> None:
    plan = get_plan(db, plan_id)
    _require_draft(plan)
    current: dict[str, bool] = dict(
        db.execute(
            text("SELECT code, locked FROM plan_grid WHERE plan_id = :p"), {"p": plan_id}
        ).all()
    )
    unknown = [c for c in codes if c not in current]
    if unknown:
        raise InvalidInput(f"no grid {unknown[0]!r} in plan {plan_id}", field="grids")
    locks = [[c, bool(current[c]), locked] for c in sorted(set(codes)) if current[c] != locked]
    if not locks:
        return
    _apply(db, plan_id, [], locks, forward=True)
    _record(
        db,
        plan_id,
        kind="lock" if locked else "unlock",
        summary=", ".join(str(c) for c, _, _ in locks),
        author=author,
        locks=locks,
    )


def resplit(db: Db, plan_id: int, *, seed: int, author: str, settings: Settings) -> int:
    """Re-cut every grid that is not locked; locked grids keep exactly their units."""
    plan = get_plan(db, plan_id)
    _require_draft(plan)
    units, assignment, locked_units = load_units(db, plan_id, epsg=_epsg(db, settings))
    locked_grids = _locked_grids(db, plan_id)
    positions = {u: i for i, u in enumerate(assignment.index)}
    locked = {positions[u]: str(assignment.loc[u]) for u in sorted(locked_units)}
    result = split_community(
        units,
        min_households=plan.min_households,
        max_households=plan.max_households,
        seed=seed,
        locked=locked,
        locked_grids=sorted(locked_grids),
        code_prefix=f"{plan.community_code}-G",
    )
    new = result.assignment
    changes = [
        [int(u), str(assignment.loc[u]), str(new.iloc[i])]
        for i, u in enumerate(assignment.index)
        if str(assignment.loc[u]) != str(new.iloc[i])
    ]
    _apply(db, plan_id, changes, [], forward=True)
    _remeasure(db, plan, units, new.set_axis(assignment.index), locked_grids)
    _sync_locks(db, plan_id)
    _record(
        db,
        plan_id,
        kind="resplit",
        summary=f"re-split the unlocked grids (seed {seed}); {len(changes)} unit(s) moved",
        author=author,
        changes=changes,
    )
    return len(changes)


def undo(db: Db, plan_id: int, *, author: str, settings: Settings) -> dict[str, Any]:
    """Apply the latest ``done`` step backwards and mark it ``undone``."""
    return _replay(db, plan_id, forward=False, author=author, settings=settings)


def redo(db: Db, plan_id: int, *, author: str, settings: Settings) -> dict[str, Any]:
    """Apply the earliest ``undone`` step again and mark it ``done``."""
    return _replay(db, plan_id, forward=True, author=author, settings=settings)


def _replay(
    db: Db, plan_id: int, *, forward: bool, author: str, settings: Settings
) -> dict[str, Any]:
    _require_draft(get_plan(db, plan_id))
    before, after, order, answer = (
        ("undone", "done", "seq", "redone") if forward else ("done", "undone", "seq DESC", "undone")
    )
    row = db.execute(
        text(
            "SELECT seq, changes, locks, summary FROM plan_step WHERE plan_id = :p "  # noqa: S608
            f"AND state = :state ORDER BY {order} LIMIT 1 FOR UPDATE"
        ),
        {"p": plan_id, "state": before},
    ).first()
    if row is None:
        raise Conflict(f"nothing to {'redo' if forward else 'undo'}", field="plan")
    _apply(db, plan_id, row[1], row[2], forward=forward)
    _remeasure_plan(db, plan_id, settings)
    db.execute(
        text(
            "UPDATE plan_step SET state = :state, state_at = now(), state_by = :a "
            "WHERE plan_id = :p AND seq = :s"
        ),
        {"p": plan_id, "s": row[0], "a": author, "state": after},
    )
    return {answer: int(row[0]), "summary": row[3]}


# --- after publishing: lineage and workers ---------------------------------------------------


def lineage(db: Db, plan_id: int) -> list[dict[str, Any]]:
    """Old grid → new grid, with the share of the new grid's area that came from the old."""
    rows = (
        db.execute(
            text(
                "SELECT o.code AS old, n.code AS new, l.shared_m2, "
                "l.shared_m2 / nullif(sum(l.shared_m2) OVER (PARTITION BY n.id), 0) AS share "
                "FROM grid_lineage l JOIN grid o ON o.id = l.old_grid_id "
                "JOIN grid n ON n.id = l.new_grid_id WHERE l.plan_id = :p "
                "ORDER BY n.code, l.shared_m2 DESC, o.code"
            ),
            {"p": plan_id},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def worker_step(db: Db, plan_id: int) -> list[dict[str, Any]]:
    """Each grid the plan opened: its worker, a suggestion (a worker of the old grids it
    overlaps, the least loaded first), and whether it needs attention."""
    grids = (
        db.execute(
            text(
                "SELECT n.id, n.code, n.worker_id, w.display_name AS worker, "
                "(SELECT count(*) FROM household h WHERE h.grid_id = n.id) AS households "
                "FROM grid n LEFT JOIN worker w ON w.id = n.worker_id "
                "WHERE n.plan_id = :p AND n.valid_to IS NULL ORDER BY n.code"
            ),
            {"p": plan_id},
        )
        .mappings()
        .all()
    )
    if not grids:
        return []
    ids = [g["id"] for g in grids]
    candidates = db.execute(
        text(
            "SELECT l.new_grid_id, o.worker_id, w.display_name, sum(l.shared_m2) AS shared FROM "
            "grid_lineage l JOIN grid o ON o.id = l.old_grid_id JOIN worker w ON "
            "w.id = o.worker_id WHERE l.new_grid_id = ANY(:ids) GROUP BY l.new_grid_id, "
            "o.worker_id, w.display_name ORDER BY l.new_grid_id, shared DESC, w.display_name"
        ),
        {"ids": ids},
    ).all()
    by_grid: dict[int, list[tuple[int, str]]] = {}
    for gid, wid, name, _ in candidates:
        by_grid.setdefault(int(gid), []).append((int(wid), str(name)))
    per_worker = max(
        1, math.ceil(len(grids) / max(1, len({w for c in by_grid.values() for w, _ in c})))
    )
    load: dict[int, int] = {}
    out = []
    for g in grids:
        options = by_grid.get(int(g["id"]), [])
        pick = next(((w, n) for w, n in options if load.get(w, 0) < per_worker), None)
        if pick is None and options:
            pick = min(options, key=lambda o: (load.get(o[0], 0), o[1]))
        if pick is not None:
            load[pick[0]] = load.get(pick[0], 0) + 1
        out.append(
            {
                "grid_id": int(g["id"]),
                "code": g["code"],
                "households": int(g["households"]),
                "worker_id": g["worker_id"],
                "worker": g["worker"],
                "suggested_id": pick[0] if pick else None,
                "suggested": pick[1] if pick else None,
                "options": [{"id": w, "name": n} for w, n in options],
            }
        )
    mine: dict[Any, int] = {}
    for row in out:
        if row["worker_id"] is not None:
            mine[row["worker_id"]] = mine.get(row["worker_id"], 0) + 1
    for row in out:
        row["grids_of_worker"] = mine.get(row["worker_id"], 0) if row["worker_id"] else 0
        row["needs_attention"] = row["worker_id"] is None or row["grids_of_worker"] > per_worker
    return out


def confirm_workers(
    db: Db,
    plan_id: int,
    choice: dict[str, int | None],
    *,
    actor: str,
    webhook_url: str | None = None,
) -> int:
    """Give each grid of the plan the chosen worker (``None``: none yet); the grids' open
    cases follow to the chosen worker (:func:`follow_grid_workers`)."""
    codes: dict[str, int] = dict(
        db.execute(
            text("SELECT code, id FROM grid WHERE plan_id = :p AND valid_to IS NULL"),
            {"p": plan_id},
        ).all()
    )
    for code in choice:
        if code not in codes:
            raise InvalidInput(f"no current grid {code!r} of plan {plan_id}", field="workers")
    known = set(db.execute(text("SELECT id FROM worker")).scalars().all())
    for code, worker in sorted(choice.items()):
        if worker is not None and worker not in known:
            raise InvalidInput(f"no worker {worker}", field=f"workers.{code}")
        db.execute(
            text("UPDATE grid SET worker_id = :w WHERE id = :g"), {"w": worker, "g": codes[code]}
        )
    follow_grid_workers(db, [codes[c] for c in choice], actor=actor, webhook_url=webhook_url)
    return len(choice)


# --- exports ----------------------------------------------------------------------------------


def unit_csv(db: Db, plan_id: int) -> str:
    get_plan(db, plan_id)
    rows = db.execute(
        text(
            "SELECT u.unit, u.grid_code, g.published_code, u.households, u.block, u.level, "
            "u.building_id, round(ST_X(ST_PointOnSurface(u.geom))::numeric, 7), "
            "round(ST_Y(ST_PointOnSurface(u.geom))::numeric, 7) FROM plan_unit u "
            "LEFT JOIN plan_grid g ON g.plan_id = u.plan_id AND g.code = u.grid_code "
            "WHERE u.plan_id = :p ORDER BY u.unit"
        ),
        {"p": plan_id},
    ).all()
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        ["unit", "grid", "published_grid", "households", "block", "level", "building", "lon", "lat"]
    )
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return out.getvalue()
