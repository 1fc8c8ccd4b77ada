"""``GET /checks``: the same report as ``gridwork check``, as JSON or GeoJSON.

``ok`` is false when any part below found anything (what ``gridwork check`` exits
non-zero on). Three parts, as in the CLI: the topology of the hierarchy (``issues``, ``count``,
``ungridded``); ``assignment_mismatches``: every household, facility and incident whose
stored grid PostGIS ``ST_Covers`` disagrees with (there must be none); and
``unaddressable_keys``: rows whose key no path can open (:mod:`data.assignment.keys`), which
follow the same rules of who sees what as the mismatches. All three come from
:func:`data.district.checks.run_checks`, so the HTTP answer and the CLI run one query in one place.
The GeoJSON format carries the topology issues only, like ``gridwork check --geojson``.

Who sees which mismatches. Admins and planners run checks (anyone else: 403). A mismatch
names a row, so it follows the row rules of :mod:`api.routers.points`:

* Area: a scoped caller sees the mismatches whose stored or expected grid is one of their
  grids; rows outside every grid only reach unrestricted callers (the district admin).
* Households are personal data. What a district admin needs to act on a mismatch is the row
  itself (which household, where it lies, which grid it is filed in and which it belongs
  to): to tell a bad import or a hand edit from a boundary problem, and to confirm that
  ``gridwork assign`` repaired it. Admins may read households anyway, so they get the code and
  location, and the read is audited like every other household read (with the optional
  ``reason``). Planners see households only as counts per grid elsewhere, so here a
  household mismatch keeps its grids and reason (enough to see which grids are affected and
  how many rows) but its ``key``, ``lon`` and ``lat`` are null, and nothing personal is read.
  Facilities and incidents of their area are not personal and are shown whole to both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request

from api.deps import Reason, SessionDep
from api.schemas.checks import CheckReport
from api.schemas.geojson import FeatureCollection
from api.security import Principal, audit_read, require
from api.state import app_state
from data.district.checks import run_checks
from data.policy import Action, may

router = APIRouter(tags=["checks"])

_PERSONAL = ("key", "lon", "lat")  # what names or locates a household in a mismatch


@router.get(
    "/checks",
    response_model=CheckReport | FeatureCollection,
    summary="Overlaps, gaps, overhangs and slivers in the hierarchy; stored assignment vs "
    "ST_Covers; keys no path opens (household identifiers audited)",
)
def checks(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Action.run_checks))],
    format: Literal["json", "geojson"] = "json",
    reason: Reason = None,
) -> dict[str, Any]:
    report = run_checks(
        app_state(request).engine, settings=app_state(request).settings, scope=principal.scope
    )
    if format == "geojson":
        return report.geojson
    personal = may(principal.role, Action.read_households)
    mismatches = [
        m if personal or m["table"] != "household" else {**m, **dict.fromkeys(_PERSONAL)}
        for m in report.assignment
    ]
    keys = [
        k if personal or k["table"] != "household" else {**k, "key": None}
        for k in report.unaddressable
    ]
    households = [m["key"] for m in [*mismatches, *keys] if m["table"] == "household" and m["key"]]
    if households:
        audit_read(
            session,
            request,
            principal,
            subject_type="household",
            subject_ids=households,
            reason=reason,
        )
    return {
        # One flag for monitoring: ``count`` is the topology issues only, as it always was.
        "ok": not report.issues and not mismatches and not keys and not report.system_named,
        "count": len(report.issues),
        "issues": report.issues,
        "ungridded": report.ungridded,
        "assignment_mismatches": mismatches,
        "unaddressable_keys": keys,
        "system_named_accounts": report.system_named,
    }
