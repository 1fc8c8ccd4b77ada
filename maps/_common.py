"""Pieces the maps share: GeoJSON for the page, safe tooltips, area and facility layers, a
title box, messages."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from maps.area_layer import AreaLayer
from maps.base import (
    AssetMode,
    Legend,
    LegendEntry,
    OfflineMap,
    collapsible,
    display_geometry,
    offline_map,
    to_wgs84,
)
from maps.style import OTHER_COLOUR, categorical_colours
from maps.words import Gettext, english

DEFAULT_TOLERANCE_M = 2.0
"""Douglas-Peucker tolerance for display: below a pixel at the zoom a district opens on."""

GRID_CLASS = "gw-grid"
"""CSS class on every grid (or area) polygon, so a browser test can count what was drawn."""

Style = Callable[[str], dict[str, Any]]
"""A style for the areas whose style key (a class colour) has this value."""


def tooltip(rows: Sequence[tuple[str, str]]) -> JsCode:
    """Tooltip rows (property, label) built with textContent, never innerHTML.

    folium's GeoJsonTooltip pastes property values into innerHTML, so a name such as
    `<img src="https://...">` in imported data would run or fetch from the page.
    """
    rows_js = json.dumps([list(r) for r in rows], ensure_ascii=False).replace("</", "<\\/")
    return JsCode(_TOOLTIP_JS.replace("ROWS", rows_js))


_TOOLTIP_JS = """function (feature, layer) {
    var rows = ROWS;
    layer.bindTooltip(function () {
        var box = document.createElement("div");
        rows.forEach(function (row) {
            var value = feature.properties[row[0]];
            if (value === null || value === undefined) { return; }
            var line = document.createElement("div");
            var key = document.createElement("b");
            key.textContent = row[1] + ": ";
            line.appendChild(key);
            line.appendChild(document.createTextNode(String(value)));
            box.appendChild(line);
        });
        return box;
    }, {sticky: true});
}"""


def feature_collection(
    layer: gpd.GeoDataFrame, columns: Sequence[str], *, tolerance_m: float
) -> dict[str, Any]:
    """:func:`feature_collection_text` as a dict, for layers handed to folium."""
    parsed: dict[str, Any] = json.loads(
        feature_collection_text(layer, columns, tolerance_m=tolerance_m)
    )
    return parsed


def feature_collection_text(
    layer: gpd.GeoDataFrame, columns: Sequence[str], *, tolerance_m: float
) -> str:
    """GeoJSON text with only `columns` (those present), JSON-native values and display
    geometry.

    Written by GEOS (``shapely.to_geojson``) a geometry array at a time rather than a Python
    object per vertex (thousands of grids on a district-wide coordinator's page), and not
    ``__geo_interface__``, which adds a bbox to every feature and keeps numpy scalars. Feature
    ids are row positions, so output order follows input order; empty geometries are left out.
    """
    geometry = np.asarray(display_geometry(layer, tolerance_m=tolerance_m).values)
    drawn = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))
    shapes = shapely.to_geojson(geometry[drawn])
    present = [c for c in columns if c in layer.columns]
    values = {c: [plain(v) for v in layer[c]] for c in present}
    features = []
    for i, shape in zip(np.flatnonzero(drawn), shapes, strict=True):
        properties = json.dumps({c: values[c][i] for c in present}, ensure_ascii=False)
        features.append(
            f'{{"type":"Feature","id":"{i}","properties":{properties},"geometry":{shape}}}'
        )
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"


def plain(value: Any) -> Any:
    """A JSON-native value: numpy scalars unwrapped, NaN/NA as null, whole floats as ints."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
    style_key: str = "_colour",
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    class_name: str = GRID_CLASS,
    show: bool = True,
) -> AreaLayer:
    """Area polygons with only ``columns`` in the page, simplified for display.

    Each area is drawn with ``style(value)`` of its ``style_key`` column (a class colour),
    worked out once per value here and looked up in the browser, so a map of thousands of
    grids does not pay for a style per grid.
    """
    if style_key not in columns:
        raise ValueError(f"the style key {style_key!r} must be one of the columns")
    data = feature_collection_text(areas, list(columns), tolerance_m=tolerance_m)
    values = {plain(v) for v in areas[style_key]}
    styles = {str(v): {**style(str(v)), "className": class_name} for v in values if v is not None}
    layer = AreaLayer(
        data,
        key=style_key,
        styles=styles,
        name=name,
        highlight={"weight": 3, "color": "#000000"},
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
    data = feature_collection(areas, [], tolerance_m=DEFAULT_TOLERANCE_M)
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


def add_facilities(
    m: folium.Map,
    data: dict[str, Any],
    facilities: gpd.GeoDataFrame,
    gettext: Gettext = english,
) -> None:
    """Facilities as CircleMarkers by kind: Leaflet draws them, no icon font or image needed."""
    _ = gettext
    kinds = [None if pd.isna(k) else str(k) for k in facilities["kind"]]
    colours = categorical_colours(kinds)
    labels = {"name": _("name"), "kind": _("kind")}

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        kind = feature["properties"].get("kind")
        return {
            # folium's CircleMarker options carry fill: false, and Object.assign keeps it
            # unless the style says otherwise: without this the circles are drawn hollow.
            "fill": True,
            "fillColor": colours.get(kind, OTHER_COLOUR) if kind is not None else OTHER_COLOUR,
            "color": "#333333",
            "weight": 1,
            "fillOpacity": 0.9,
            "radius": 5,
        }

    folium.GeoJson(
        data,
        name=_("facilities"),
        marker=folium.CircleMarker(radius=5),
        style_function=style,
        on_each_feature=tooltip([(c, labels[c]) for c in labels if c in facilities.columns]),
    ).add_to(m)
    counts = Counter(kinds)
    entries = [
        LegendEntry(f"{kind} ({counts[kind]})", colour, "circle")
        for kind, colour in colours.items()
        if colour != OTHER_COLOUR
    ]
    others = sum(n for kind, n in counts.items() if kind is None or colours[kind] == OTHER_COLOUR)
    if others:
        entries.append(
            LegendEntry(_("other ({count})").format(count=others), OTHER_COLOUR, "circle")
        )
    Legend(_("Facilities"), entries, position="bottomleft").add_to(m)


def title_box(m: folium.Map, title: str, lines: Sequence[str]) -> None:
    """The map's title and key numbers, top left, as plain escaped HTML."""
    box = Legend(title, [], position="topleft")
    box.html_js = json.dumps(
        collapsible(title, "".join(f"<div>{html.escape(line)}</div>" for line in lines)),
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
