"""Plans in PostGIS: draft a split of a community, adjust it, compare it, publish it.

Publishing replaces the community's current grids in one transaction: the old versions get
``valid_to`` (history is kept), the plan's grids become the current ones from the effective
date, and every household, facility and incident is reassigned before the commit. A plan
whose community changed after it was drafted (its outline, its buildings or households, or
its grids) is refused with 409, because its numbers no longer describe the place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from data.access.queries import SYSTEM_ACTOR, AreaScope
from data.access.reasons import said
from data.assignment.service import reassign
from data.crs import metric_epsg
from data.planning.grids import follow_grids
from data.policy import HELD_COMMUNITY_SQL, may_plan, sees_grid
from data.settings import Settings
from geo.district.tiling import fit_to_parent
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.planning.metrics import PlanMetrics, plan_metrics
from geo.planning.split import SplitResult, split_community
from geo.planning.units import EDGE_KINDS, UnitGraph, Units, build_units

Db = Session | Connection


@dataclass(frozen=True)
class CommunityRef:
    id: int
    code: str


def _community(db: Db, code: str) -> CommunityRef:
    row = db.execute(text("SELECT id, code FROM community WHERE code = :c"), {"c": code}).first()
    if row is None:
        raise NotFound(f"no community '{code}'", field="community")
    return CommunityRef(int(row[0]), str(row[1]))


def community_ref(db: Db, code: str) -> CommunityRef:
    """The community of ``code`` (a 404 naming the field when there is none)."""
    return _community(db, code)


def community_id_of(db: Db, code: str) -> int | None:
    found = db.execute(text("SELECT id FROM community WHERE code = :c"), {"c": code}).scalar()
    return None if found is None else int(found)


def community_version(db: Db, community_id: int) -> str:
    """A fingerprint of what a plan depends on: outline, buildings, households, current grids."""
    return str(
        db.execute(
            text(
                """
        SELECT md5(concat_ws('|',
            (SELECT md5(ST_AsBinary(geom)) FROM community WHERE id = :c),
            (SELECT md5(coalesce(string_agg(b.id || ':' || coalesce(b.households, -1)
                                 || ':' || md5(ST_AsBinary(b.geom)), ',' ORDER BY b.id), ''))
               FROM building b WHERE b.community_id = :c),
            (SELECT count(*) || ':' || coalesce(max(h.id), 0) FROM household h
               JOIN community c ON c.id = :c AND ST_Covers(c.geom, h.geom)),
            (SELECT coalesce(string_agg(g.id::text, ',' ORDER BY g.id), '') FROM grid g
               WHERE g.community_id = :c AND g.valid_to IS NULL)))
        """
            ),
            {"c": community_id},
        ).scalar_one()
    )


def _frame(db: Db, sql: str, params: dict[str, Any], epsg: int) -> gpd.GeoDataFrame:
    conn = db.connection() if isinstance(db, Session) else db
    frame = gpd.read_postgis(text(sql), conn, geom_col="geom", crs=4326, params=params)
    return frame.rename_geometry("geometry").to_crs(epsg)


@dataclass(frozen=True)
class UnitInputs:
    """What :func:`~geo.planning.units.build_units` cuts a community with, read from the
    store (metric CRS): plain frames, so the cutting may run anywhere (a batch worker)."""

    outline: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: gpd.GeoDataFrame | None

    def build(self) -> Units:
        return build_units(self.outline, self.roads, self.buildings, self.households)


def community_units(db: Db, community: CommunityRef, *, epsg: int, snap_m: float = 20.0) -> Units:
    """Blocks, lots and entrances of one community, with households from the stored points."""
    return community_unit_inputs(db, community, epsg=epsg, snap_m=snap_m).build()


def community_unit_inputs(
    db: Db, community: CommunityRef, *, epsg: int, snap_m: float = 20.0
) -> UnitInputs:
    """The outline, roads, buildings and household points :func:`community_units` cuts."""
    params = {"c": community.id}
    outline = _frame(db, "SELECT code, geom FROM community WHERE id = :c", params, epsg)
    roads = _frame(
        db,
        "SELECT r.id, r.geom FROM road_segment r JOIN community c ON c.id = :c "
        "AND ST_Intersects(r.geom, c.geom) ORDER BY r.source_id, r.id",
        params,
        epsg,
    )
    # Households by where they are, not by their building's community: a building astride
    # the boundary has people on both sides, and the stored assignment goes by location too.
    buildings = _frame(
        db,
        "SELECT b.id AS building_id, coalesce(b.households, 0) AS households, b.geom "
        "FROM building b JOIN community c ON c.id = :c AND ST_Intersects(c.geom, b.geom) "
        "ORDER BY b.source_id, b.id",
        params,
        epsg,
    )
    # Households just outside every community (a doorstep across the line) are assigned to
    # the nearest grid within the snap tolerance; count them where they will land, half a
    # metre inside the nearest edge, so the plan's numbers are the published grids' numbers.
    # Matched by location, not by building: the published grids count by location too.
    households = _frame(
        db,
        "SELECT h.id, h.geom FROM household h "
        "JOIN community c ON c.id = :c AND ST_Covers(c.geom, h.geom) "
        "UNION ALL "
        "SELECT h.id, ST_Transform(ST_ClosestPoint(ST_Buffer(ST_Transform("
        "c.geom, :epsg), -0.5), ST_Transform(h.geom, :epsg)), 4326) FROM household h "
        "JOIN community c ON c.id = :c "
        # The box lets the household index answer (the geography test alone scanned every
        # household of the city: 22 s a community at 146,112). It is the snap distance in
        # degrees where the community is: a metre is at most 1/110,000 of a degree of
        # latitude, and 1/(111,000 cos φ) of longitude at the box's largest |φ| (held below
        # 89°). A flat 1/1000 of a degree per metre, as before, made it ~2 km wide: 33,000
        # households tested one by one at the full megacity, 3 s of a community's 8.
        "AND h.geom && ST_Expand(c.geom, :snap / (111000.0 * cos(radians(least(89.0, "
        "greatest(abs(ST_YMin(c.geom)), abs(ST_YMax(c.geom))) + :snap / 110000.0)))), "
        ":snap / 110000.0) "
        "AND ST_DWithin(c.geom::geography, h.geom::geography, :snap) "
        # Most households within reach are inside this community: ruling them out first
        # spares the two subqueries for each of them.
        "WHERE NOT ST_Covers(c.geom, h.geom) "
        "AND NOT EXISTS (SELECT 1 FROM community o WHERE ST_Covers(o.geom, h.geom)) "
        # The nearest community by the spatial index (a few candidates, nearest first), the
        # code deciding a tie: ordering every community by (distance, code) could not use
        # the index and scanned all of them per household (21 ms each at 3,988 communities).
        "AND c.id = (SELECT n.id FROM (SELECT o.id, o.code, o.geom <-> h.geom AS d "
        "FROM community o ORDER BY o.geom <-> h.geom LIMIT 8) n ORDER BY n.d, n.code LIMIT 1) "
        # Row order is the heap's, which differs between two loads of the same data (and
        # after any UPDATE): the split must see its inputs in an order of their own.
        "ORDER BY 2, 1",
        {**params, "epsg": epsg, "snap": snap_m},
        epsg,
    )
    if buildings.empty:
        raise InvalidInput.said("no_buildings", code=community.code, field="community")
    return UnitInputs(outline, roads, buildings, households if len(households) else None)


def draft_plan(
    db: Db,
    community_code: str,
    *,
    min_households: int,
    max_households: int,
    seed: int,
    author: str,
    settings: Settings,
) -> int:
    """Split the community into grids inside the band and keep the result as a draft."""
    if min_households <= 0:
        raise InvalidInput("must be > 0", field="min")
    if min_households > max_households:
        raise InvalidInput(
            f"min {min_households} is greater than max {max_households}", field="min"
        )
    community = _community(db, community_code)
    epsg = _epsg(db, settings)
    units = community_units(db, community, epsg=epsg, snap_m=settings.snap_tolerance_m)
    result = split_community(
        units,
        min_households=min_households,
        max_households=max_households,
        seed=seed,
        code_prefix=f"{community.code}-G",
    )
    return save_draft(db, community, units, result, author=author)


def save_draft(
    db: Db, community: CommunityRef, units: Units, result: SplitResult, *, author: str
) -> int:
    """Keep a split made elsewhere (``draft_plan``, a batch worker) as a draft plan; its id."""
    min_households, max_households, seed = (
        result.min_households,
        result.max_households,
        result.seed,
    )
    plan_id = int(
        db.execute(
            text(
                "INSERT INTO plan (community_id, status, min_households, max_households, seed, "
                "params, author, community_version, metrics, issues, seconds) VALUES (:c, "
                "'draft', :lo, :hi, :seed, CAST(:params AS jsonb), :author, :v, '{}', "
                "CAST(:issues AS jsonb), :secs) "
                "RETURNING id"
            ),
            {
                "c": community.id,
                "lo": min_households,
                "hi": max_households,
                "seed": seed,
                "params": json.dumps(
                    {
                        "detail": "entrances",
                        "notes": list(units.notes),
                        "entrance_splits": len(units.entrance_splits),
                    }
                ),
                "author": author,
                "v": community_version(db, community.id),
                "issues": json.dumps(
                    [
                        {"kind": i.kind, "detail": i.detail, "grids": list(i.grids)}
                        for i in result.issues
                    ]
                ),
                "secs": result.seconds,
            },
        ).scalar_one()
    )
    _store_units(db, plan_id, units, result.assignment)
    _store_metrics(db, plan_id, result.metrics, result.flagged, frozenset())
    return plan_id


def _epsg(db: Db, settings: Settings) -> int:
    epsg = metric_epsg(db, settings.metric_epsg)
    if epsg is None:
        raise InvalidInput("no data yet: import communities first", field="community")
    return epsg


def _store_units(db: Db, plan_id: int, units: Units, assignment: pd.Series) -> None:
    frame = units.frame.to_crs(4326)
    db.execute(
        text(
            "INSERT INTO plan_unit (plan_id, unit, grid_code, households, block, building_id, "
            "entrance, level, locked, geom) VALUES (:p, :u, :g, :h, :b, :bid, :e, :lvl, false, "
            "ST_GeomFromWKB(:wkb, 4326))"
        ),
        [
            {
                "p": plan_id,
                "u": int(u),
                "g": str(assignment.loc[u]),
                "h": int(r.households),
                "b": int(r.block),
                "bid": None if r.building_id is None else str(r.building_id),
                "e": int(r.entrance),
                "lvl": str(r.level),
                "wkb": shapely.to_wkb(r.geometry),
            }
            for u, r in zip(frame.index, frame.itertuples(), strict=True)
        ],
    )
    g = units.graph
    if len(g):
        db.execute(
            text(
                "INSERT INTO plan_unit_edge (plan_id, edge, u, v, length_m, road_m, kind) "
                "VALUES (:p, :e, :u, :v, :l, :r, :k)"
            ),
            [
                {
                    "p": plan_id,
                    "e": e,
                    "u": int(g.u[e]),
                    "v": int(g.v[e]),
                    "l": float(g.length_m[e]),
                    "r": float(g.road_m[e]),
                    "k": int(g.kind[e]),
                }
                for e in range(len(g))
            ],
        )


def _store_metrics(
    db: Db, plan_id: int, metrics: PlanMetrics, flagged: frozenset[str], locked: frozenset[str]
) -> None:
    summary = {
        k: (float(v) if isinstance(v, np.floating) else v) for k, v in metrics.summary().items()
    }
    db.execute(
        text("UPDATE plan SET metrics = CAST(:m AS jsonb) WHERE id = :p"),
        {"m": json.dumps(summary, default=float), "p": plan_id},
    )
    db.execute(text("DELETE FROM plan_grid WHERE plan_id = :p"), {"p": plan_id})
    grids = metrics.grids.to_crs(4326)
    rows = []
    for code, r in grids.iterrows():
        per_grid = {
            k: _plain(r[k])
            for k in (
                "households",
                "units",
                "deviation",
                "in_band",
                "contiguous",
                "parts",
                "area_m2",
                "polsby_popper",
                "reock",
                "boundary_m",
                "road_m",
                "road_share",
            )
            if k in grids.columns
        }
        rows.append(
            {
                "p": plan_id,
                "c": str(code),
                "h": int(r["households"]),
                "l": str(code) in locked,
                "f": str(code) in flagged,
                "m": json.dumps(per_grid),
                "wkb": shapely.to_wkb(r.geometry),
            }
        )
    db.execute(
        text(
            "INSERT INTO plan_grid (plan_id, code, households, locked, flagged, metrics, geom) "
            "VALUES (:p, :c, :h, :l, :f, CAST(:m AS jsonb), "
            "ST_Multi(ST_GeomFromWKB(:wkb, 4326)))"
        ),
        rows,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class StoredPlan:
    id: int
    community_id: int
    community_code: str
    status: str
    min_households: int
    max_households: int
    seed: int
    author: str
    version: str
    community_name: str | None = None

    @property
    def community_label(self) -> str:
        """How a page names the community: "Miragaia (131208)", or the code alone."""
        if self.community_name:
            return f"{self.community_name} ({self.community_code})"
        return self.community_code


def get_plan(db: Db, plan_id: int) -> StoredPlan:
    row = db.execute(
        text(
            "SELECT p.id, p.community_id, c.code, p.status::text, p.min_households, "
            "p.max_households, p.seed, p.author, p.community_version, c.name FROM plan p "
            "JOIN community c ON c.id = p.community_id WHERE p.id = :p"
        ),
        {"p": plan_id},
    ).first()
    if row is None:
        raise NotFound.said("no_plan", field="plan", plan=plan_id)
    return StoredPlan(*row)


def held_plan(db: Db, plan_id: int, scope: AreaScope) -> StoredPlan:
    """The plan, if ``scope`` holds its community (:func:`data.policy.may_plan`); else the
    same 404 as a plan that does not exist, so that nobody learns of another's plans. The API
    and the pages both ask through here."""
    plan = get_plan(db, plan_id)
    if not may_plan(scope, plan.community_id):
        raise NotFound.said("no_plan", field="plan", plan=plan_id)
    return plan


def planned_community(db: Db, code: str, scope: AreaScope) -> int:
    """The id of community ``code`` if ``scope`` may plan it. One outside the caller's area
    does not exist for them (404, not 403); one they see only around a scoped grid is not
    theirs to plan (403, :func:`data.policy.may_plan`). The API and the pages both ask here."""
    community_id = community_id_of(db, code)
    ids = scope.sql_ids("community")
    if community_id is None or (ids is not None and community_id not in ids):
        raise NotFound.said("no_community", field="community", code=code)
    if not may_plan(scope, community_id):
        raise Forbidden.said("not_planners_community", field="community", code=code)
    return community_id


def load_units(db: Db, plan_id: int, *, epsg: int) -> tuple[Units, pd.Series, set[int]]:
    """The plan's units and graph as stored, its assignment, and the locked units."""
    frame = _frame(
        db,
        "SELECT unit, grid_code, households, block, building_id, entrance, level, "
        "locked, geom FROM plan_unit WHERE plan_id = :p ORDER BY unit",
        {"p": plan_id},
        epsg,
    ).set_index("unit")
    frame["area_m2"] = shapely.area(frame.geometry.values)
    frame["perimeter_m"] = shapely.length(frame.geometry.values)
    edges = db.execute(
        text(
            "SELECT u, v, length_m, road_m, kind FROM plan_unit_edge "
            "WHERE plan_id = :p ORDER BY edge"
        ),
        {"p": plan_id},
    ).all()
    arr = np.array(edges, dtype=float).reshape(-1, 5)
    graph = UnitGraph(
        len(frame),
        arr[:, 0].astype(np.intp),
        arr[:, 1].astype(np.intp),
        arr[:, 2].copy(),
        arr[:, 3].copy(),
        arr[:, 4].astype(np.int8),
    )
    assignment = frame["grid_code"].astype(str).rename("grid")
    locked = set(frame.index[frame["locked"]].tolist())
    units = Units(frame.drop(columns=["grid_code", "locked"]), graph)
    return units, assignment, locked


def _locked_grids(db: Db, plan_id: int) -> frozenset[str]:
    return frozenset(
        db.execute(text("SELECT code FROM plan_grid WHERE plan_id = :p AND locked"), {"p": plan_id})
        .scalars()
        .all()
    )


def _require_draft(plan: StoredPlan) -> None:
    if plan.status != "draft":
        raise Conflict.said("not_draft", plan=plan.id, status=plan.status, field="plan")


@dataclass(frozen=True)
class MoveOutcome:
    moved: bool
    problems: tuple[str, ...]
    households: dict[str, int] = field(default_factory=dict)
    """The households of the grids the move touches, as they are (or would be) after it."""


def _remeasure(
    db: Db, plan: StoredPlan, units: Units, assignment: pd.Series, locked: frozenset[str]
) -> None:
    metrics = plan_metrics(
        units, assignment, min_households=plan.min_households, max_households=plan.max_households
    )
    flagged = frozenset(
        str(c) for c, r in metrics.grids.iterrows() if not (r["in_band"] and r["contiguous"])
    )
    _store_metrics(db, plan.id, metrics, flagged, locked)


def publish(
    db: Db,
    plan_id: int,
    *,
    effective: date,
    settings: Settings,
    today: date | None = None,
    author: str = "",
) -> dict[str, Any]:
    """Make the plan's grids the community's current grids from ``effective`` on.

    An effective date after ``today`` only schedules the switch: the current grids, the
    assignments, workers and maps stay as they are until :func:`switch_due` runs on or after
    that date (the periodic task, or the first start-up after it).
    """
    today = today or settings.today()
    plan = get_plan(db, plan_id)
    _require_draft(plan)
    db.execute(text("SELECT id FROM community WHERE id = :c FOR UPDATE"), {"c": plan.community_id})
    if community_version(db, plan.community_id) != plan.version:
        raise Conflict.said(
            "community_changed", community=plan.community_code, plan=plan_id, field="plan"
        )
    waiting = db.execute(
        text(
            "SELECT id, effective FROM plan WHERE community_id = :c AND status = 'published' "
            "AND switched_at IS NULL"
        ),
        {"c": plan.community_id},
    ).first()
    if waiting is not None:
        raise Conflict.said(
            "plan_waiting",
            plan=waiting[0],
            community=plan.community_code,
            day=str(waiting[1]),
            field="plan",
        )
    latest = db.execute(
        text("SELECT max(valid_from) FROM grid WHERE community_id = :c AND valid_to IS NULL"),
        {"c": plan.community_id},
    ).scalar()
    if latest is not None and effective < latest:
        raise InvalidInput.said(
            "effective_too_early", effective=str(effective), latest=str(latest), field="effective"
        )
    _fitted_grids(db, plan, _epsg(db, settings))  # refuse now what could not switch later
    db.execute(
        text(
            "UPDATE plan SET status = 'published', published_at = now(), effective = :d, "
            "published_by = :a WHERE id = :p"
        ),
        {"p": plan_id, "d": effective, "a": author or None},
    )
    if effective > today:
        return {
            "plan": plan_id,
            "community": plan.community_code,
            "effective": effective.isoformat(),
            "scheduled": True,
            "grids_closed": 0,
            "grids_created": 0,
            "reassigned": {},
        }
    return _switch(db, plan, effective=effective, settings=settings, author=author)


def withdraw(db: Db, plan_id: int) -> None:
    """Take back a published plan whose date has not come: it becomes a draft again."""
    plan = get_plan(db, plan_id)
    switched = db.execute(
        text("SELECT switched_at FROM plan WHERE id = :p FOR UPDATE"), {"p": plan_id}
    ).scalar()
    if plan.status != "published" or switched is not None:
        raise Conflict(f"plan {plan_id} is not waiting for its date", field="plan")
    db.execute(
        text(
            "UPDATE plan SET status = 'draft', published_at = NULL, effective = NULL, "
            "published_by = NULL WHERE id = :p"
        ),
        {"p": plan_id},
    )


def switch_due(db: Db, *, today: date, settings: Settings) -> list[dict[str, Any]]:
    """Switch every published plan whose effective date has come (each once, audited).

    Safe to run from several processes at once: the plan row is locked (``SKIP LOCKED``)
    and ``switched_at`` is set in the same transaction as the grids change.
    """
    due = (
        db.execute(
            text(
                "SELECT id FROM plan WHERE status = 'published' AND switched_at IS NULL "
                "AND effective <= :d ORDER BY effective, id FOR UPDATE SKIP LOCKED"
            ),
            {"d": today},
        )
        .scalars()
        .all()
    )
    done = []
    for plan_id in due:
        plan = get_plan(db, int(plan_id))
        effective = db.execute(
            text("SELECT effective FROM plan WHERE id = :p"), {"p": plan.id}
        ).scalar_one()
        done.append(
            _switch(db, plan, effective=effective, settings=settings, author=None, scheduled=True)
        )
    return done


def _switch(
    db: Db,
    plan: StoredPlan,
    *,
    effective: date,
    settings: Settings,
    author: str | None,
    scheduled: bool = False,
) -> dict[str, Any]:
    """Close the community's current grids on ``effective``, open the plan's, reassign all.

    ``author`` is the planner publishing it today; ``None`` when the system switches (a date
    reached, or no author known), which the audit row says with the system's own name."""
    actor = author or (f"{SYSTEM_ACTOR} (scheduled)" if scheduled else SYSTEM_ACTOR)
    from data.access.queries import write_audit

    plan_id = plan.id
    epsg = _epsg(db, settings)
    fitted = _fitted_grids(db, plan, epsg)
    closed = (
        db.execute(
            text(
                "UPDATE grid SET valid_to = :d WHERE community_id = :c "
                "AND valid_to IS NULL RETURNING id"
            ),
            {"d": effective, "c": plan.community_id},
        )
        .scalars()
        .all()
    )
    codes = _published_codes(db, plan, fitted, list(closed), epsg)
    # The new grid inherits the worker of the old grid it overlaps most (a worker keeps
    # their streets) until the planner confirms the workers; grids without a predecessor
    # start without one (flagged on the plan's page).
    created = []
    for code, geom in fitted.items():
        new_id = int(
            db.execute(
                text(
                    "INSERT INTO grid (code, community_id, worker_id, valid_from, plan_id, geom) "
                    "SELECT :code, :c, (SELECT g.worker_id FROM grid g WHERE g.id = ANY(:closed) "
                    "ORDER BY ST_Area(ST_Intersection(g.geom, n.geom)) DESC, g.code LIMIT 1), "
                    ":d, :p, n.geom FROM (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom) n "
                    "RETURNING id"
                ),
                {
                    "code": codes[code],
                    "c": plan.community_id,
                    "closed": list(closed),
                    "d": effective,
                    "p": plan_id,
                    "wkb": shapely.to_wkb(geom),
                },
            ).scalar_one()
        )
        created.append(new_id)
        db.execute(
            text("UPDATE plan_grid SET published_code = :n WHERE plan_id = :p AND code = :c"),
            {"n": codes[code], "p": plan_id, "c": code},
        )
    if closed and created:
        db.execute(
            text(
                "INSERT INTO grid_lineage (plan_id, old_grid_id, new_grid_id, shared_m2) "
                "SELECT :p, o.id, n.id, ST_Area(ST_Transform(ST_Intersection(o.geom, n.geom), "
                ":epsg)) FROM grid o JOIN grid n ON n.id = ANY(:new) "
                "AND ST_Intersects(o.geom, n.geom) WHERE o.id = ANY(:old) "
                "AND ST_Area(ST_Transform(ST_Intersection(o.geom, n.geom), :epsg)) >= 1"
            ),
            {"p": plan_id, "new": created, "old": list(closed), "epsg": epsg},
        )
    db.execute(
        text(
            "UPDATE plan SET status = 'superseded' WHERE community_id = :c "
            "AND status = 'published' AND id <> :p"
        ),
        {"c": plan.community_id, "p": plan_id},
    )
    db.execute(
        text(
            "UPDATE plan SET status = 'published', switched_at = now(), "
            "published_at = coalesce(published_at, now()), effective = :d WHERE id = :p"
        ),
        {"p": plan_id, "d": effective},
    )
    results = reassign(db, settings=settings)
    followed = follow_grids(db, created, actor=actor, epsg=epsg, settings=settings)
    write_audit(
        db,
        actor=actor,
        role="planner" if author else "system",
        method="SWITCH",
        route=f"/plans/{plan_id}/publish",
        subject_type="plan",
        subject_ids=[plan_id],
        reason=said(
            "plan_switched",
            community=plan.community_code,
            day=effective.isoformat(),
            closed=len(closed),
            opened=len(created),
        ),
    )
    return {
        "plan": plan_id,
        "community": plan.community_code,
        "effective": effective.isoformat(),
        "scheduled": False,
        "grids_closed": len(closed),
        "grids_created": len(created),
        "reassigned": {r.table: r.changed for r in results},
        **followed,
    }


def _published_codes(
    db: Db, plan: StoredPlan, fitted: dict[str, BaseGeometry], closed: list[int], epsg: int
) -> dict[str, str]:
    """The code each new grid gets: an old grid's code only for the same shape (within a
    square metre), the planned code if no grid ever had it, else the next number unused."""
    old = db.execute(
        text("SELECT code, ST_AsBinary(geom) FROM grid WHERE id = ANY(:ids) ORDER BY code"),
        {"ids": closed},
    ).all()
    used = set(db.execute(text("SELECT DISTINCT code FROM grid")).scalars().all())
    prefix = f"{plan.community_code}-G"
    numbers = [
        int(c[len(prefix) :]) for c in used if c.startswith(prefix) and c[len(prefix) :].isdigit()
    ]
    next_n = max(numbers, default=0) + 1
    to_metric = Transformer.from_crs(4326, epsg, always_xy=True)

    def metric(geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(
            geom, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
        )

    old_shapes = [(str(c), metric(shapely.from_wkb(bytes(w)))) for c, w in old]
    out: dict[str, str] = {}
    taken: set[str] = set()
    for code, geom in fitted.items():
        shape = metric(geom)
        same = next(
            (
                c
                for c, o in old_shapes
                if c not in taken and shape.symmetric_difference(o).area < 1.0
            ),
            None,
        )
        if same is not None:
            out[code] = same
        elif code not in used and code not in taken:
            out[code] = code
        else:
            while f"{prefix}{next_n:02d}" in used or f"{prefix}{next_n:02d}" in taken:
                next_n += 1
            out[code] = f"{prefix}{next_n:02d}"
            next_n += 1
        taken.add(out[code])
    return out


def _fitted_grids(db: Db, plan: StoredPlan, epsg: int) -> dict[str, BaseGeometry]:
    """The plan's grids made to tile the community exactly, as single polygons.

    The fit runs in the metric CRS on a 1 mm grid, so each grid is valid in metres (where
    assignment measures) and in WGS-84 (where it is stored); the outer edges then sit within
    a millimetre of the community's, which the topology check treats as noise.
    """
    rows = db.execute(
        text("SELECT code, ST_AsBinary(geom) FROM plan_grid WHERE plan_id = :p ORDER BY code"),
        {"p": plan.id},
    ).all()
    outline = db.execute(
        text("SELECT ST_AsBinary(geom) FROM community WHERE id = :c"), {"c": plan.community_id}
    ).scalar_one()
    to_metric = Transformer.from_crs(4326, epsg, always_xy=True)
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)

    def project(wkb_or_geom: bytes | BaseGeometry, t: Transformer) -> BaseGeometry:
        geom = shapely.from_wkb(wkb_or_geom) if isinstance(wkb_or_geom, bytes) else wkb_or_geom
        return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))

    fitted = fit_to_parent(
        [project(bytes(r[1]), to_metric) for r in rows],
        project(bytes(outline), to_metric),
        grid_size=0.001,
    )
    out: dict[str, BaseGeometry] = {}
    for (code, _), geom in zip(rows, fitted, strict=True):
        back = project(geom, to_wgs84)
        if geom.geom_type != "Polygon" or not back.is_valid:
            raise Conflict.said("grid_not_polygon", grid=str(code), field="plan")
        out[str(code)] = back
    return out


def plan_summary(db: Db, plan_id: int) -> dict[str, Any]:
    plan = get_plan(db, plan_id)
    row = db.execute(
        text(
            "SELECT metrics, issues, seconds, created_at, published_at, params, effective, "
            "switched_at, published_by FROM plan WHERE id = :p"
        ),
        {"p": plan_id},
    ).one()
    grids = (
        db.execute(
            text(
                "SELECT code, households, locked, flagged, metrics, published_code "
                "FROM plan_grid WHERE plan_id = :p ORDER BY code"
            ),
            {"p": plan_id},
        )
        .mappings()
        .all()
    )
    return {
        "id": plan.id,
        "community": plan.community_code,
        "status": plan.status,
        "min_households": plan.min_households,
        "max_households": plan.max_households,
        "seed": plan.seed,
        "author": plan.author,
        "metrics": row[0],
        "issues": row[1],
        "seconds": row[2],
        "created_at": row[3].isoformat(),
        "published_at": row[4].isoformat() if row[4] else None,
        "params": row[5],
        "effective": row[6].isoformat() if row[6] else None,
        "switched_at": row[7].isoformat() if row[7] else None,
        "published_by": row[8],
        "scheduled": plan.status == "published" and row[7] is None,
        "stale": community_version(db, plan.community_id) != plan.version,
        "grids": [dict(g) for g in grids],
    }


def list_plans(
    db: Db, community_code: str | None, *, scope: AreaScope | None = None
) -> list[dict[str, Any]]:
    """Plans (of one community), only those of communities the caller holds
    (``data.policy.HELD_COMMUNITY_SQL``, the rule of a single plan too)."""
    held = None if scope is None else scope.sql_ids("held_community")
    rows = (
        db.execute(
            text(
                "SELECT t.id, c.code AS community, c.name AS community_name, "  # noqa: S608
                "t.status::text AS status, t.author, "
                "t.created_at, t.metrics->'n_grids' AS grids, "
                "t.metrics->'in_band_share' AS in_band, t.effective, t.switched_at, "
                "t.seed, t.min_households, t.max_households "
                "FROM plan t JOIN community c ON c.id = t.community_id "
                "WHERE (CAST(:c AS text) IS NULL OR c.code = :c) "
                f"AND {HELD_COMMUNITY_SQL} ORDER BY t.id"
            ),
            {"c": community_code, "held_community_ids": held},
        )
        .mappings()
        .all()
    )
    return [
        {
            **r,
            "created_at": r["created_at"].isoformat(),
            "effective": r["effective"].isoformat() if r["effective"] else None,
            "switched_at": r["switched_at"].isoformat() if r["switched_at"] else None,
        }
        for r in rows
    ]


def plan_grids(db: Db, plan_id: int) -> gpd.GeoDataFrame:
    get_plan(db, plan_id)
    conn = db.connection() if isinstance(db, Session) else db
    frame = gpd.read_postgis(
        text(
            "SELECT code, published_code, households, locked, flagged, "
            "(metrics->>'polsby_popper')::float AS polsby_popper, "
            "(metrics->>'road_share')::float AS road_share, geom FROM plan_grid "
            "WHERE plan_id = :p ORDER BY code"
        ),
        conn,
        geom_col="geom",
        crs=4326,
        params={"p": plan_id},
    )
    return frame.rename_geometry("geometry")


COMPARED = (
    "n_grids",
    "in_band_share",
    "households_min",
    "households_median",
    "households_max",
    "deviation_total",
    "contiguous_share",
    "polsby_popper_mean",
    "reock_mean",
    "road_share",
    "shared_buildings",
    "cut_blocks",
)


def compare(db: Db, a: int, b: int) -> dict[str, Any]:
    """The metric table of two plans, row by row, with which one is better where it is clear."""
    left, right = plan_summary(db, a), plan_summary(db, b)
    higher_better = {
        "in_band_share",
        "contiguous_share",
        "polsby_popper_mean",
        "reock_mean",
        "road_share",
    }
    lower_better = {"deviation_total", "shared_buildings", "cut_blocks"}
    rows = []
    for key in COMPARED:
        va, vb = left["metrics"].get(key), right["metrics"].get(key)
        better = None
        if isinstance(va, int | float) and isinstance(vb, int | float) and va != vb:
            if key in higher_better:
                better = a if va > vb else b
            elif key in lower_better:
                better = a if va < vb else b
        rows.append({"metric": key, "a": va, "b": vb, "better": better})
    return {"a": a, "b": b, "rows": rows}


def grid_on(
    db: Db, lon: float, lat: float, on: date, *, scope: AreaScope | None = None
) -> dict[str, Any] | None:
    """Which grid held this point on day ``on`` (lowest code on a shared edge); None when
    none did, or when that grid is withheld from the caller (``data.policy.sees_grid``): as
    ``/locate``, the winner is found first and then withheld, never replaced by another."""
    row = db.execute(
        text(
            "SELECT g.code, c.code, g.valid_from, g.valid_to, g.id, g.community_id FROM grid g "
            "JOIN community c ON c.id = g.community_id "
            "WHERE g.id = grid_covering(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :d)"
        ),
        {"d": on, "x": lon, "y": lat},
    ).first()
    if row is None:
        return None
    if scope is not None and not sees_grid(scope, int(row[4]), int(row[5])):
        return None
    return {
        "grid": row[0],
        "community": row[1],
        "valid_from": row[2].isoformat(),
        "valid_to": row[3].isoformat() if row[3] else None,
    }


def oversize_report(
    db: Db, *, min_households: int, max_households: int, community_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Communities whose grids (or, with no grids, whose households) fall outside the band."""
    rows = (
        db.execute(
            text(
                """
        WITH per_grid AS (
            SELECT g.community_id, g.code, count(h.id) AS households FROM grid g
            LEFT JOIN household h ON h.grid_id = g.id WHERE g.valid_to IS NULL
            GROUP BY g.community_id, g.code),
        per_community AS (
            SELECT c.id, c.code, c.name, count(h.id) AS households FROM community c
            LEFT JOIN building b ON b.community_id = c.id
            LEFT JOIN household h ON h.building_id = b.id
            WHERE CAST(:ids AS int[]) IS NULL OR c.id = ANY(:ids)
            GROUP BY c.id)
        SELECT pc.code, pc.name, pc.households, count(pg.code) AS grids,
               count(pg.code) FILTER (WHERE pg.households > :hi) AS grids_over,
               count(pg.code) FILTER (WHERE pg.households < :lo) AS grids_under,
               coalesce(json_agg(json_build_object('code', pg.code, 'households', pg.households)
                        ORDER BY pg.code) FILTER (WHERE pg.households NOT BETWEEN :lo AND :hi),
                        '[]') AS out_of_band
        FROM per_community pc LEFT JOIN per_grid pg ON pg.community_id = pc.id
        GROUP BY pc.code, pc.name, pc.households
        HAVING count(pg.code) FILTER (WHERE pg.households NOT BETWEEN :lo AND :hi) > 0
            OR (count(pg.code) = 0 AND pc.households > :hi)
        ORDER BY pc.code
        """
            ),
            {"lo": min_households, "hi": max_households, "ids": community_ids},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


__all__ = [
    "EDGE_KINDS",
    "compare",
    "draft_plan",
    "grid_on",
    "list_plans",
    "oversize_report",
    "plan_grids",
    "plan_summary",
    "publish",
    "save_draft",
    "switch_due",
    "withdraw",
]
