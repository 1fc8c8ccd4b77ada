"""Topology checks of the stored hierarchy: read from PostGIS, judged by
``geo.district.topology``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from data.access.queries import SYSTEM_ACTOR, AreaScope
from data.assignment.keys import unaddressable_keys
from data.assignment.service import assignment_mismatches
from data.crs import metric_epsg
from data.district.hierarchy import read_level
from data.settings import Settings
from geo.district.topology import check_level, issues_to_geodataframe


@dataclass(frozen=True)
class CheckReport:
    issues: list[dict[str, Any]]
    geojson: dict[str, Any]
    ungridded: list[str] = field(default_factory=list)
    # stored grid of a household / facility / incident that PostGIS ST_Covers disagrees with
    assignment: list[dict[str, Any]] = field(default_factory=list)
    # households, facilities and incidents whose key no path can open (data.assignment.keys)
    unaddressable: list[dict[str, Any]] = field(default_factory=list)
    # accounts under the system's own name, made before the name was refused (de0d0f3): their
    # closes would read "closed by itself" in the records
    system_named: list[str] = field(default_factory=list)


def run_checks(
    engine: Engine, *, settings: Settings, scope: AreaScope | None = None
) -> CheckReport:
    """Every overlap, gap, overhang and sliver of every level, located in WGS-84, every
    stored assignment PostGIS disagrees with, and every stored key no path can open.

    ``scope`` (the caller's area; None or unrestricted: everywhere) narrows only the parts
    that name rows, the mismatches and the keys: see :func:`_mismatches_in_scope`. The topology
    issues name streets, communities and grids only and are reported whole, as before.
    """
    with engine.connect() as conn:
        epsg = metric_epsg(conn, settings.metric_epsg)
        levels = {name: read_level(conn, name) for name in ("streets", "communities", "grids")}
        found = [m.as_dict() for m in assignment_mismatches(conn, settings=settings)]
        mismatches = _mismatches_in_scope(conn, found, scope)
        keys = [k.as_dict() for k in unaddressable_keys(conn)]
        unaddressable = _keys_in_scope(conn, keys, scope)
        system_named = list(
            conn.execute(
                text(
                    "SELECT username FROM app_user WHERE lower(username) = :name AND active "
                    "ORDER BY 1"
                ),
                {"name": SYSTEM_ACTOR},
            ).scalars()
        )
        conn.commit()
    if epsg is None:
        empty = {"type": "FeatureCollection", "features": []}
        return CheckReport(
            issues=[],
            geojson=empty,
            assignment=mismatches,
            unaddressable=unaddressable,
            system_named=system_named,
        )
    metric = {name: frame.to_crs(epsg) for name, frame in levels.items()}
    # A community with no grids yet (before the planner runs) is not a gap of its grids: it
    # is listed as ungridded instead of drowning real problems in one huge "gap".
    gridded = metric["communities"]["code"].isin(metric["grids"]["community_code"])
    ungridded = sorted(metric["communities"].loc[~gridded, "code"].astype(str))
    streets, communities, grids = metric["streets"], metric["communities"], metric["grids"]
    issues = [
        *check_level(streets, None, child_level="street"),
        *check_level(communities, streets, child_level="community", parent_col="street_code"),
        *check_level(grids, communities[gridded], child_level="grid", parent_col="community_code"),
    ]
    frame = issues_to_geodataframe(issues, crs=epsg).to_crs(4326)
    geojson = (
        json.loads(frame.to_json(drop_id=True))
        if len(frame)
        else {"type": "FeatureCollection", "features": []}
    )
    rows = [
        {
            "level": i.level,
            "kind": i.kind,
            "codes": list(i.codes),
            "area_m2": round(i.area_m2, 2),
            "detail": i.detail,
            "lon": float(pt.x),
            "lat": float(pt.y),
        }
        for i, pt in zip(issues, frame.geometry, strict=True)
    ]
    return CheckReport(
        issues=rows,
        geojson=geojson,
        ungridded=ungridded,
        assignment=mismatches,
        unaddressable=unaddressable,
        system_named=system_named,
    )


def _mismatches_in_scope(
    conn: Connection, mismatches: list[dict[str, Any]], scope: AreaScope | None
) -> list[dict[str, Any]]:
    """The mismatches a scoped caller may see: those whose stored *or* expected grid is one of
    the caller's grids (a point of their area filed elsewhere, or a point filed in their area
    that belongs elsewhere). Rows with neither (unassigned, no grid near) are seen only by
    unrestricted callers, as in :mod:`data.assignment.points`.

    The mismatch query itself (:func:`data.assignment.service.assignment_mismatches`) is the one the
    CLI runs; it names grids by code, so the caller's grid ids are turned into codes here.
    """
    if scope is None or scope.unrestricted:
        return mismatches
    codes = _grid_codes(conn, scope)
    return [m for m in mismatches if m["stored"] in codes or m["expected"] in codes]


def _keys_in_scope(
    conn: Connection, keys: list[dict[str, Any]], scope: AreaScope | None
) -> list[dict[str, Any]]:
    """The unaddressable rows a scoped caller may see: those filed in one of their grids (rows
    in no grid only to unrestricted callers, as above)."""
    if scope is None or scope.unrestricted:
        return keys
    codes = _grid_codes(conn, scope)
    return [k for k in keys if k["grid"] in codes]


def _grid_codes(conn: Connection, scope: AreaScope) -> set[str]:
    return set(
        conn.execute(
            text("SELECT code FROM grid WHERE id = ANY(:ids)"), {"ids": scope.sql_ids("grid")}
        ).scalars()
    )
