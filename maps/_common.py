"""Pieces the coordinators' maps share: area layers with safe tooltips, a title box, messages."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
from folium.utilities import JsCode

from maps.base import AssetMode, Legend, OfflineMap, metric_crs, offline_map, to_wgs84
from maps.hierarchy import _TOOLTIP_JS, _feature_collection

DEFAULT_TOLERANCE_M = 2.0
"""Douglas-Peucker tolerance for display: below a pixel at the zoom a district opens on."""

GRID_CLASS = "gw-grid"
"""CSS class on every grid (or area) polygon, so a browser test can count what was drawn."""

Style = Callable[[dict[str, Any]], dict[str, Any]]


def tooltip(rows: Sequence[tuple[str, str]]) -> JsCode:
    """Tooltip rows (property, label) built with textContent, never innerHTML."""
    rows_js = json.dumps([list(r) for r in rows], ensure_ascii=False).replace("</", "<\\/")
    return JsCode(_TOOLTIP_JS.replace("ROWS", rows_js))


def area_map(
    areas: gpd.GeoDataFrame,
    *,
    asset_mode: AssetMode,
    static_url: str = "/static",
) -> OfflineMap:
    """An offline map fitted to ``areas`` (WGS-84 or any CRS that converts)."""
    return offline_map(to_wgs84(areas), asset_mode=asset_mode, static_url=static_url)


def add_areas(
    m: folium.Map,
    areas: gpd.GeoDataFrame,
    *,
    name: str,
    columns: Sequence[str],
    labels: Sequence[tuple[str, str]],
    style: Style,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    class_name: str = GRID_CLASS,
    show: bool = True,
) -> folium.GeoJson:
    """Area polygons with only ``columns`` in the page, simplified for display."""
    data = _feature_collection(
        areas, list(columns), tolerance_m=tolerance_m, crs=metric_crs(to_wgs84(areas))
    )

    def styled(feature: dict[str, Any]) -> dict[str, Any]:
        return {**style(feature), "className": class_name}

    layer = folium.GeoJson(
        data,
        name=name,
        style_function=styled,
        highlight_function=lambda _feature: {"weight": 3, "color": "#000000"},
        on_each_feature=tooltip(labels),
        show=show,
    )
    layer.add_to(m)
    return layer


def add_outline(
    m: folium.Map, areas: gpd.GeoDataFrame, *, name: str, colour: str, weight: float = 2
) -> None:
    """Area outlines without fill or pointer: context (communities around their grids)."""
    if areas.empty:
        return
    data = _feature_collection(
        areas, [], tolerance_m=DEFAULT_TOLERANCE_M, crs=metric_crs(to_wgs84(areas))
    )
    folium.GeoJson(
        data,
        name=name,
        style_function=lambda _f: {
            "color": colour,
            "weight": weight,
            "fill": False,
            "interactive": False,
        },
    ).add_to(m)


def title_box(m: folium.Map, title: str, lines: Sequence[str]) -> None:
    """The map's title and key numbers, top left, as plain escaped HTML."""
    box = Legend(title, [], position="topleft")
    box.html_js = json.dumps(
        f"<h4>{html.escape(title)}</h4>"
        + "".join(f"<div>{html.escape(line)}</div>" for line in lines),
        ensure_ascii=False,
    ).replace("</", "<\\/")
    box.add_to(m)


def number(value: Any) -> float | None:
    """A finite float or None (NaN, NA, None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return float(value)


def message_page(title: str, message: str) -> str:
    """A whole page saying why there is no map (no grids yet, no area assigned)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
        "padding:0 1rem}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        '<p><a href="/">Back to the start page</a></p></body></html>'
    )
