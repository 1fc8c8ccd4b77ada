"""Plans as a planner reviews them: one plan's grids against the band, two plans side by side."""

from __future__ import annotations

from html import escape
from typing import Any

import geopandas as gpd

from maps.base import OfflineMap
from maps.grids import grid_band_map


def plan_map(
    grids: gpd.GeoDataFrame, *, title: str, min_households: int, max_households: int
) -> OfflineMap:
    """A plan's grids coloured against its own band (a plan may use another band)."""
    del title  # the band map carries its own title box
    return grid_band_map(
        grids, household_min=min_households, household_max=max_households, asset_mode="url"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape("" if value is None else str(value))


def compare_page(comparison: dict[str, Any]) -> str:
    """The metric table and both plans' maps, each in a same-origin frame, on one page."""
    a, b = int(comparison["a"]), int(comparison["b"])
    rows = "".join(
        f"<tr><td>{escape(r['metric'])}</td>"
        f"<td class='{'best' if r['better'] == a else ''}'>{_cell(r['a'])}</td>"
        f"<td class='{'best' if r['better'] == b else ''}'>{_cell(r['b'])}</td></tr>"
        for r in comparison["rows"]
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>gridwork · plans {a} and {b}</title>
<style>body{{font:15px/1.4 system-ui,sans-serif;margin:1rem}}
table{{border-collapse:collapse;margin-bottom:1rem}}
td,th{{padding:.15rem .7rem;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.best{{background:#e5f5e0;font-weight:600}}
.maps{{display:flex;gap:1rem}}.maps div{{flex:1}}
iframe{{width:100%;height:70vh;border:1px solid #ccc}}</style></head><body>
<h1>Plan {a} and plan {b}</h1>
<table><tr><th>metric</th><th>plan {a}</th><th>plan {b}</th></tr>{rows}</table>
<div class="maps"><div><h2>Plan {a}</h2><iframe src="/maps/plans/{a}" title="plan {a}">
</iframe></div><div><h2>Plan {b}</h2><iframe src="/maps/plans/{b}" title="plan {b}"></iframe>
</div></div></body></html>"""
