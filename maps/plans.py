"""Plans as a planner reviews them: one plan's grids against the band, two plans side by side."""

from __future__ import annotations

from html import escape
from typing import Any

import geopandas as gpd

from maps.base import OfflineMap
from maps.grids import grid_band_map
from maps.words import Gettext, english


def plan_map(
    grids: gpd.GeoDataFrame,
    *,
    title: str,
    min_households: int,
    max_households: int,
    gettext: Gettext = english,
) -> OfflineMap:
    """A plan's grids coloured against its own band (a plan may use another band)."""
    del title  # the band map carries its own title box
    return grid_band_map(
        grids,
        household_min=min_households,
        household_max=max_households,
        asset_mode="url",
        gettext=gettext,
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape("" if value is None else str(value))


def _metric_names(_: Gettext) -> dict[str, str]:
    """The compared metrics in the words the planner's workspace uses for them."""
    return {
        "n_grids": _("Grids"),
        "in_band_share": _("Grids within the household range"),
        "households_min": _("Fewest households in a grid"),
        "households_median": _("Typical households per grid"),
        "households_max": _("Most households in a grid"),
        "deviation_total": _("Households outside the range, all grids together"),
        "contiguous_share": _("Grids in one piece"),
        "polsby_popper_mean": _("Compactness"),
        "reock_mean": _("Roundness"),
        "road_share": _("Boundaries along roads"),
        "shared_buildings": _("Buildings split between grids"),
        "cut_blocks": _("Blocks cut"),
    }


def compare_page(
    comparison: dict[str, Any], *, gettext: Gettext = english, lang: str = "en"
) -> str:
    """The metric table and both plans' maps, each in a same-origin frame, on one page, in
    the words ``gettext`` gives (``lang``: the page's BCP 47 tag)."""
    _ = gettext
    names = _metric_names(gettext)
    a, b = int(comparison["a"]), int(comparison["b"])
    plan_a, plan_b = (escape(_("Plan %(n)s") % {"n": n}) for n in (a, b))
    rows = "".join(
        f"<tr><td>{escape(names.get(r['metric'], r['metric']))}</td>"
        f"<td class='{'best' if r['better'] == a else ''}'>{_cell(r['a'])}</td>"
        f"<td class='{'best' if r['better'] == b else ''}'>{_cell(r['b'])}</td></tr>"
        for r in comparison["rows"]
    )
    heading = escape(_("Plan %(a)s and plan %(b)s") % {"a": a, "b": b})
    measure = escape(_("Measure"))
    return f"""<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">
<title>gridwork · {heading}</title>
<style>body{{font:15px/1.4 system-ui,sans-serif;margin:1rem}}
table{{border-collapse:collapse;margin-bottom:1rem}}
td,th{{padding:.15rem .7rem;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.best{{background:#e5f5e0;font-weight:600}}
.maps{{display:flex;gap:1rem}}.maps div{{flex:1}}
iframe{{width:100%;height:70vh;border:1px solid #ccc}}</style></head><body>
<h1>{heading}</h1>
<table><tr><th>{measure}</th><th>{plan_a}</th><th>{plan_b}</th></tr>{rows}</table>
<div class="maps"><div><h2>{plan_a}</h2><iframe src="/maps/plans/{a}" title="{plan_a}">
</iframe></div><div><h2>{plan_b}</h2><iframe src="/maps/plans/{b}" title="{plan_b}"></iframe>
</div></div></body></html>"""
