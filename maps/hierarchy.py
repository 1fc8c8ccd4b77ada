"""The hierarchy map: streets (街道), communities (社区) coloured by households, grids (网格).

What a street office looks at first: where each community is, how many households it serves,
and how it is cut into grids, with roads and facilities for orientation. Inputs are
GeoDataFrames (WGS-84, or any CRS that converts); this module never touches the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
import shapely
from folium.utilities import JsCode

from maps._common import DEFAULT_TOLERANCE_M, add_facilities, feature_collection, plain, tooltip
from maps.base import (
    AssetMode,
    Legend,
    LegendEntry,
    OfflineMap,
    layer_control,
    offline_map,
    to_wgs84,
)
from maps.style import NO_DATA_COLOUR, quantile_scale
from maps.words import Gettext, english

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
    m = offline_map(
        area,
        asset_mode=asset_mode,
        static_url=static_url,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution,
        gettext=gettext,
    )

    def prepare(layer: gpd.GeoDataFrame, columns: Sequence[str]) -> dict[str, Any]:
        return feature_collection(layer, columns, tolerance_m=tolerance_m)

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
        add_facilities(m, prepare(facilities, ["name", "kind"]), facilities, gettext)

    layer_control(m)
    return m


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
    """The tooltip of ``columns`` that ``layer`` has, each under its label."""
    return tooltip([(c, labels.get(c, c)) for c in columns if c in layer.columns])


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


def _numbers(series: pd.Series) -> list[float | None]:
    out: list[float | None] = []
    for value in series:
        v = plain(value)
        out.append(float(v) if isinstance(v, int | float) and math.isfinite(v) else None)
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
