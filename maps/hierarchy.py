"""The hierarchy map: streets (街道), communities (社区) coloured by households, grids (网格).

What a street office looks at first: where each community is, how many households it serves,
and how it is cut into grids, with roads and facilities for orientation. Inputs are
GeoDataFrames (WGS-84, or any CRS that converts); this module never touches the database.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from maps.base import (
    AssetMode,
    Legend,
    LegendEntry,
    OfflineMap,
    display_geometry,
    layer_control,
    metric_crs,
    offline_map,
    to_wgs84,
)
from maps.style import (
    NO_DATA_COLOUR,
    OTHER_COLOUR,
    categorical_colours,
    quantile_scale,
)
from maps.words import Gettext, english

DEFAULT_TOLERANCE_M = 2.0
"""Simplification tolerance: a district opens around zoom 13-15, where a pixel is 5-20 m."""

STREET_COLOUR = "#252525"
GRID_COLOUR = "#d94801"
ROAD_COLOUR = "#8c8c8c"
MAJOR_ROADS = frozenset(
    {"motorway", "trunk", "primary", "secondary", "tertiary"}
    | {"motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link"}
)
"""Road classes (OSM highway values) drawn thicker, so the main roads read at a glance."""


def _labels(_: Gettext) -> dict[str, str]:
    """Tooltip labels in the page's language (any other column shows its own name)."""
    return {
        "code": _("code"),
        "name": _("name"),
        "households": _("households"),
        "kind": _("kind"),
        "road_class": _("road class"),
    }


def hierarchy_map(
    streets: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame | None = None,
    *,
    asset_mode: AssetMode,
    static_url: str = "/static",
    roads: gpd.GeoDataFrame | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
    gettext: Gettext = english,
) -> OfflineMap:
    """Streets, communities by households, grids, and optionally roads and facilities, in the
    words ``gettext`` gives.

    Columns read (others are dropped, so the page carries only what it shows):
    streets/grids `code`, `name` if present (grids also `households`); communities `households`
    (required) plus `code`, `name`; roads `name`, `road_class`; facilities `kind` (required),
    `name`. Any layer but communities may be empty. Drawing order, bottom to top: community
    fills, roads, grid outlines, street outlines, facilities; only community fills take the
    pointer over their area, outlines take it along their edge.
    """
    _check_columns(communities=(communities, ["households"]), facilities=(facilities, ["kind"]))
    if communities.empty:
        raise ValueError("a hierarchy map needs at least one community")
    admin = [layer for layer in (streets, communities, grids) if _has_rows(layer)]
    area = gpd.GeoDataFrame(
        geometry=pd.concat([to_wgs84(layer).geometry for layer in admin], ignore_index=True),
        crs="EPSG:4326",
    )
    crs = metric_crs(area)
    m = offline_map(
        area,
        asset_mode=asset_mode,
        static_url=static_url,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution,
        gettext=gettext,
    )

    def prepare(layer: gpd.GeoDataFrame, columns: Sequence[str]) -> dict[str, Any]:
        return _feature_collection(layer, columns, tolerance_m=tolerance_m, crs=crs)

    _ = gettext
    labels = _labels(gettext)
    lines: list[LegendEntry] = []

    scale = quantile_scale(_numbers(communities["households"]))
    folium.GeoJson(
        prepare(communities, ["code", "name", "households"]),
        name=_("communities"),
        style_function=_community_style(scale.colour),
        highlight_function=lambda _feature: {"weight": 3, "color": "#000000"},
        on_each_feature=_tooltip_js(communities, ["code", "name", "households"], labels),
    ).add_to(m)
    households = [LegendEntry(label, colour) for label, colour in scale.labels()]
    if communities["households"].isna().any():
        households.append(LegendEntry(_("no data"), NO_DATA_COLOUR))
    Legend(_("Households per community"), households).add_to(m)

    if roads is not None and not roads.empty:
        road_columns = [c for c in ("name", "road_class") if c in roads.columns]
        folium.GeoJson(
            prepare(_merge_lines(to_wgs84(roads), road_columns), road_columns),
            name=_("roads"),
            style_function=_road_style,
            on_each_feature=_tooltip_js(roads, ["name", "road_class"], labels),
        ).add_to(m)
        lines.append(LegendEntry(_("road"), ROAD_COLOUR, "line"))

    if grids is not None and not grids.empty:
        folium.GeoJson(
            prepare(grids, ["code", "name", "households"]),
            name=_("grids"),
            style_function=lambda _feature: {
                "color": GRID_COLOUR,
                "weight": 1.5,
                "dashArray": "4 3",
                "fill": False,
            },
            on_each_feature=_tooltip_js(grids, ["code", "name", "households"], labels),
        ).add_to(m)
        lines.append(LegendEntry(_("grid"), GRID_COLOUR, "dashed"))

    if not streets.empty:
        folium.GeoJson(
            prepare(streets, ["code", "name"]),
            name=_("streets"),
            style_function=lambda _feature: {
                "color": STREET_COLOUR,
                "weight": 3,
                "fill": False,
            },
            on_each_feature=_tooltip_js(streets, ["code", "name"], labels),
        ).add_to(m)
        lines.append(LegendEntry(_("street"), STREET_COLOUR, "line"))
    if lines:
        Legend(_("Layers"), lines).add_to(m)

    if facilities is not None and not facilities.empty:
        _add_facilities(m, prepare(facilities, ["name", "kind"]), facilities, gettext)

    layer_control(m)
    return m


def _add_facilities(
    m: folium.Map,
    data: dict[str, Any],
    facilities: gpd.GeoDataFrame,
    gettext: Gettext = english,
) -> None:
    """Facilities as CircleMarkers by kind: Leaflet draws them, no icon font or image needed."""
    _ = gettext
    kinds = [None if pd.isna(k) else str(k) for k in facilities["kind"]]
    colours = categorical_colours(kinds)

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
        on_each_feature=_tooltip_js(facilities, ["name", "kind"], _labels(gettext)),
    ).add_to(m)
    counts = Counter(kinds)
    entries = [
        LegendEntry(f"{kind} ({counts[kind]})", colour, "circle")
        for kind, colour in colours.items()
        if colour != OTHER_COLOUR
    ]
    others = sum(n for kind, n in counts.items() if kind is None or colours[kind] == OTHER_COLOUR)
    if others:
        entries.append(LegendEntry(f"{_('other')} ({others})", OTHER_COLOUR, "circle"))
    Legend(_("facilities"), entries, position="bottomleft").add_to(m)


def _community_style(
    colour: Callable[[float | None], str],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def style(feature: dict[str, Any]) -> dict[str, Any]:
        return {
            "fillColor": colour(feature["properties"].get("households")),
            "fillOpacity": 0.55,
            "color": "#ffffff",
            "weight": 1.5,
        }

    return style


def _road_style(feature: dict[str, Any]) -> dict[str, Any]:
    major = feature["properties"].get("road_class") in MAJOR_ROADS
    return {"color": ROAD_COLOUR, "weight": 2.5 if major else 1, "opacity": 0.9}


def _tooltip_js(layer: gpd.GeoDataFrame, columns: Sequence[str], labels: dict[str, str]) -> JsCode:
    """Tooltip built with textContent, never innerHTML.

    folium's GeoJsonTooltip pastes property values into innerHTML, so a name such as
    `<img src="https://...">` in imported data would run or fetch from the page.
    """
    rows = [[c, labels.get(c, c)] for c in columns if c in layer.columns]
    rows_js = json.dumps(rows, ensure_ascii=False).replace("</", "<\\/")
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


def _feature_collection(
    layer: gpd.GeoDataFrame, columns: Sequence[str], *, tolerance_m: float, crs: Any
) -> dict[str, Any]:
    """GeoJSON with only `columns` (those present), JSON-native values and display geometry.

    Built by hand rather than with __geo_interface__, which adds a bbox to every feature and
    keeps numpy scalars. Feature ids are row positions, so output order follows input order.
    """
    geometry = display_geometry(layer, tolerance_m=tolerance_m, crs=crs)
    present = [c for c in columns if c in layer.columns]
    values = {c: [_plain(v) for v in layer[c]] for c in present}
    features = []
    for i, geom in enumerate(geometry.values):
        if geom is None or geom.is_empty:
            continue
        features.append(
            {
                "type": "Feature",
                "id": str(i),
                "properties": {c: values[c][i] for c in present},
                "geometry": geom.__geo_interface__,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _merge_lines(roads: gpd.GeoDataFrame, columns: list[str]) -> gpd.GeoDataFrame:
    """One feature per (name, class): the page shows nothing per segment, and a feature's JSON
    overhead outweighs a short segment's coordinates (Porto: 1,241 segments become ~300)."""
    if not columns:
        merged = shapely.line_merge(shapely.union_all(roads.geometry.values))
        return gpd.GeoDataFrame(geometry=[merged], crs=roads.crs)
    keys = roads[columns].astype(object).where(roads[columns].notna(), None)
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for key, geom in zip(
        keys.itertuples(index=False, name=None), roads.geometry.values, strict=True
    ):
        if geom is not None and not geom.is_empty:
            groups.setdefault(key, []).append(geom)
    rows = sorted(groups, key=lambda key: tuple("" if v is None else str(v) for v in key))
    return gpd.GeoDataFrame(
        [dict(zip(columns, key, strict=True)) for key in rows],
        geometry=[shapely.line_merge(shapely.union_all(groups[key])) for key in rows],
        crs=roads.crs,
    )


def _plain(value: Any) -> Any:
    """A JSON-native value: numpy scalars unwrapped, NaN/NA as null, whole floats as ints."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _numbers(series: pd.Series) -> list[float | None]:
    out: list[float | None] = []
    for value in series:
        plain = _plain(value)
        out.append(
            float(plain) if isinstance(plain, int | float) and math.isfinite(plain) else None
        )
    return out


def _has_rows(layer: gpd.GeoDataFrame | None) -> bool:
    return layer is not None and not layer.empty


def _check_columns(**layers: tuple[gpd.GeoDataFrame | None, list[str]]) -> None:
    """Name every missing required column at once, not one per run."""
    problems = [
        f"{name} lacks column(s) {', '.join(missing)}"
        for name, (layer, required) in layers.items()
        if layer is not None and not layer.empty
        for missing in [[c for c in required if c not in layer.columns]]
        if missing
    ]
    if problems:
        raise ValueError("; ".join(problems))
