"""``GET /checks``: the same topology report as ``gridwork check``, as JSON or GeoJSON."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request

from api.security import require
from data.checks import run_checks
from data.models import Role

router = APIRouter(tags=["checks"])


@router.get(
    "/checks",
    summary="Overlaps, gaps, overhangs and slivers in the hierarchy",
    dependencies=[Depends(require(Role.admin, Role.planner))],
)
def checks(request: Request, format: Literal["json", "geojson"] = "json") -> dict[str, Any]:
    report = run_checks(request.app.state.engine, settings=request.app.state.settings)
    if format == "geojson":
        return report.geojson
    return {"count": len(report.issues), "issues": report.issues, "ungridded": report.ungridded}
