"""The home page and the hierarchy map: what a newcomer opens first (after signing in)."""

from __future__ import annotations

from html import escape
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.security import HUMAN_ROLES, Principal, optional_principal, require
from data.district.hierarchy import read_level
from data.policy import Action
from maps.hierarchy import hierarchy_map

public = APIRouter(include_in_schema=False)
private = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gridwork</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}
td,th{{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}}
footer{{margin-top:2rem;color:#555;font-size:.9em}}</style></head><body>
<h1>gridwork</h1>
<p>District → street (街道) → community (社区) → grid (网格).</p>
{body}
<footer>Map data © OpenStreetMap contributors, available under the
<a href="https://www.openstreetmap.org/copyright">Open Database License (ODbL) 1.0</a>.</footer>
</body></html>"""

_SIGNED_OUT = """<p><a href="/login">Sign in</a> to see the maps and data of your area.
Accounts are created by an administrator with <code>gridwork user add</code>.</p>
<p><a href="/docs">API documentation</a></p>"""

_SIGNED_IN = """<p>Signed in as <b>{name}</b> ({role}).
<form method="post" action="/logout" style="display:inline"><button>Sign out</button></form></p>
<ul>
<li><a href="/maps/hierarchy">Map of the hierarchy</a> —
communities by households, roads, facilities</li>
<li>Coordinators' maps: <a href="/maps/grids">grids against the household band</a> ·
<a href="/maps/workload">workload per worker</a> ·
<a href="/maps/incidents?days=30">incidents, last 30 days</a> ·
<a href="/maps/coverage">facility coverage (walking)</a></li>
<li><a href="/viewer">Vector-tile viewer</a> (MapLibre) and
<a href="/ogc/">OGC API – Features and Tiles</a> for QGIS and GDAL (district-wide accounts)</li>
<li><a href="/checks">Topology checks</a> (JSON) · <a href="/checks?format=geojson">GeoJSON</a></li>
<li>Layers (GeoJSON): <a href="/streets">streets</a> · <a href="/communities">communities</a> ·
<a href="/grids">grids</a> · <a href="/roads">roads</a> · <a href="/facilities">facilities</a></li>
<li><a href="/docs">API documentation</a></li>
</ul>
<h2>Communities in your area</h2>
<table><tr><th>code</th><th>name</th><th>households</th><th>census population</th></tr>
{rows}</table>"""


@public.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> HTMLResponse:
    """Public, but shows data only to a signed-in user, and only of their area."""
    if principal is None or principal.role not in HUMAN_ROLES:
        return HTMLResponse(_PAGE.format(body=_SIGNED_OUT))
    communities = read_level(session.connection(), "communities", principal.scope)
    rows = "".join(
        f"<tr><td>{escape(str(r.code))}</td><td>{escape(str(r.name))}</td>"
        f"<td>{int(r.households)}</td>"
        f"<td>{'' if pd.isna(r.population) else int(r.population)}</td></tr>"
        for r in communities.itertuples()
    )
    body = _SIGNED_IN.format(name=escape(principal.name), role=principal.role.value, rows=rows)
    return HTMLResponse(_PAGE.format(body=body))


@private.get("/maps/hierarchy", response_class=HTMLResponse)
def hierarchy(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Action.view_district))],
) -> HTMLResponse:
    conn = session.connection()
    layers = {
        n: read_level(conn, n, principal.scope)
        for n in ("streets", "communities", "grids", "roads", "facilities")
    }
    if all(layers[n].empty for n in ("streets", "communities", "grids")):
        return HTMLResponse(_PAGE.format(body="<p>No area is assigned to you yet.</p>"))
    m = hierarchy_map(
        layers["streets"],
        layers["communities"],
        layers["grids"],
        roads=layers["roads"],
        facilities=layers["facilities"],
        asset_mode="url",
    )
    return HTMLResponse(m.get_root().render())
