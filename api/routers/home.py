"""The home page and the hierarchy map: what a newcomer opens first."""

from __future__ import annotations

from html import escape

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from data.queries.hierarchy import read_level
from maps.hierarchy import hierarchy_map

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gridwork</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}
td,th{{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}}
footer{{margin-top:2rem;color:#555;font-size:.9em}}</style></head><body>
<h1>gridwork</h1>
<p>District → street (街道) → community (社区) → grid (网格).</p>
<ul>
<li><a href="/maps/hierarchy">Map of the hierarchy</a> —
communities by households, roads, facilities</li>
<li><a href="/checks">Topology checks</a> (JSON) · <a href="/checks?format=geojson">GeoJSON</a></li>
<li>Layers (GeoJSON): <a href="/streets">streets</a> · <a href="/communities">communities</a> ·
<a href="/grids">grids</a> · <a href="/roads">roads</a> · <a href="/facilities">facilities</a></li>
<li><a href="/docs">API documentation</a></li>
</ul>
<h2>Communities</h2>
<table><tr><th>code</th><th>name</th><th>households</th><th>census population</th></tr>
{rows}</table>
<footer>Map data © OpenStreetMap contributors, available under the
<a href="https://www.openstreetmap.org/copyright">Open Database License (ODbL) 1.0</a>.</footer>
</body></html>"""


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    with request.app.state.engine.connect() as conn:
        communities = read_level(conn, "communities")
    rows = "".join(
        f"<tr><td>{escape(str(r.code))}</td><td>{escape(str(r.name))}</td>"
        f"<td>{int(r.households)}</td><td>{'' if pd.isna(r.population) else int(r.population)}"
        "</td></tr>"
        for r in communities.itertuples()
    )
    return HTMLResponse(_PAGE.format(rows=rows))


@router.get("/maps/hierarchy", response_class=HTMLResponse)
def hierarchy(request: Request) -> HTMLResponse:
    with request.app.state.engine.connect() as conn:
        layers = {
            n: read_level(conn, n)
            for n in ("streets", "communities", "grids", "roads", "facilities")
        }
    m = hierarchy_map(
        layers["streets"],
        layers["communities"],
        layers["grids"],
        roads=layers["roads"],
        facilities=layers["facilities"],
        asset_mode="url",
    )
    return HTMLResponse(m.get_root().render())
