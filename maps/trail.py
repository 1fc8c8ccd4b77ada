"""The trail map of one elder: where the device reported, when, the home and the safe zone.

What a care worker looks at when an elder is missing: the last fix stands out, every earlier
fix tells its time on hover, and the zone shows how far outside the elder is. One elder per
map, by design: gridwork draws no map of several elders' positions.

Inputs are GeoDataFrames in WGS-84 (or any CRS that converts); this module never touches the
database. Like every gridwork map it works offline (see ``maps.base``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode
from numpy.typing import NDArray

from maps._common import tooltip
from maps.base import (
    COORDINATE_DECIMALS,
    AssetMode,
    Legend,
    LegendEntry,
    OfflineMap,
    layer_control,
    offline_map,
    to_wgs84,
)
from maps.words import Gettext, english

TRAIL_COLOUR = "#2b8cbe"
LAST_FIX_COLOUR = "#d7301f"
HOME_COLOUR = "#238b45"
ZONE_COLOUR = "#41ab5d"


def _labels(_: Gettext, timezone: str) -> dict[str, str]:
    """The tooltip's row labels; the time is told in ``timezone``, which the label names."""
    return {
        "time": _("time (%(zone)s)") % {"zone": timezone},
        "accuracy_m": _("accuracy (m)"),
        "grid_code": _("grid"),
        "battery": _("battery (%)"),
    }


def trail_map(
    fixes: gpd.GeoDataFrame,
    *,
    home: gpd.GeoDataFrame | None = None,
    zone: gpd.GeoDataFrame | None = None,
    asset_mode: AssetMode,
    static_url: str = "/static",
    gettext: Gettext = english,
    timezone: str = "UTC",
) -> OfflineMap:
    """Fixes in time order as a line and dots (the newest in red), the home and the zone, in
    the words ``gettext`` gives and the times of ``timezone`` (an IANA name).

    ``fixes`` needs a ``time`` column (datetimes or text); ``accuracy_m``, ``grid_code`` and
    ``battery`` are shown when present. Any of the three layers may be empty, not all.
    """
    _ = gettext
    if "time" not in fixes.columns:
        raise ValueError("fixes lack a 'time' column")
    layers = [to_wgs84(layer) for layer in (fixes, home, zone) if layer is not None]
    shapes = [layer for layer in layers if not layer.empty]
    if not shapes:
        raise ValueError("a trail map needs fixes, a home or a zone to show")
    area = gpd.GeoDataFrame(
        geometry=pd.concat([layer.geometry for layer in shapes], ignore_index=True),
        crs="EPSG:4326",
    )
    m = offline_map(area, asset_mode=asset_mode, static_url=static_url, gettext=gettext)
    legend: list[LegendEntry] = []

    if zone is not None and not zone.empty:
        folium.GeoJson(
            _collection(to_wgs84(zone), []),
            name=_("safe zone"),
            style_function=lambda _f: {
                "color": ZONE_COLOUR,
                "weight": 2,
                "dashArray": "6 4",
                "fillColor": ZONE_COLOUR,
                "fillOpacity": 0.08,
            },
        ).add_to(m)
        legend.append(LegendEntry(_("safe zone"), ZONE_COLOUR, "dashed"))

    if home is not None and not home.empty:
        folium.GeoJson(
            _collection(to_wgs84(home), []),
            name=_("home"),
            marker=folium.CircleMarker(radius=7),
            style_function=lambda _f: {
                "fillColor": HOME_COLOUR,
                "color": "#ffffff",
                "weight": 2,
                "fillOpacity": 1.0,
            },
        ).add_to(m)
        legend.append(LegendEntry(_("home"), HOME_COLOUR, "circle"))

    if not fixes.empty:
        _add_fixes(m, to_wgs84(fixes), gettext=gettext, timezone=timezone)
        legend.append(LegendEntry(_("trail"), TRAIL_COLOUR, "line"))
        legend.append(LegendEntry(_("last fix"), LAST_FIX_COLOUR, "circle"))

    Legend(_("Legend"), legend).add_to(m)
    layer_control(m)
    return m


def _add_fixes(m: folium.Map, fixes: gpd.GeoDataFrame, *, gettext: Gettext, timezone: str) -> None:
    _ = gettext
    ordered = fixes.assign(_t=pd.to_datetime(fixes["time"], utc=True)).sort_values(
        "_t", kind="stable"
    )
    zone = ZoneInfo(timezone)
    ordered = ordered.assign(time=[_time_text(t, zone) for t in ordered["_t"]]).drop(columns="_t")
    points = [(geom.y, geom.x) for geom in ordered.geometry.values]
    if len(points) > 1:
        folium.PolyLine(
            [[round(lat, 6), round(lon, 6)] for lat, lon in points],
            color=TRAIL_COLOUR,
            weight=3,
            opacity=0.8,
            name=_("trail"),
        ).add_to(m)
    columns = [c for c in ("time", "accuracy_m", "grid_code", "battery") if c in ordered.columns]
    data = _collection(ordered, columns)
    if data["features"]:
        data["features"][-1]["properties"]["last"] = True

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        last = bool(feature["properties"].get("last"))
        return {
            "fillColor": LAST_FIX_COLOUR if last else TRAIL_COLOUR,
            "color": "#ffffff",
            "weight": 1,
            "fillOpacity": 1.0 if last else 0.8,
            "radius": 8 if last else 4,
        }

    folium.GeoJson(
        data,
        name=_("fixes"),
        marker=folium.CircleMarker(radius=4),
        style_function=style,
        on_each_feature=_tooltip_js(columns, _labels(gettext, timezone)),
    ).add_to(m)


def _time_text(value: Any, zone: ZoneInfo) -> str:
    if isinstance(value, datetime | pd.Timestamp):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _collection(layer: gpd.GeoDataFrame, columns: list[str]) -> dict[str, Any]:
    """GeoJSON with only ``columns``, JSON-native values, coordinates rounded to ~0.1 m."""
    features = []
    for i, (geom, row) in enumerate(
        zip(layer.geometry.values, layer[columns].to_dict("records"), strict=True)
    ):
        if geom is None or geom.is_empty:
            continue
        properties = {k: _plain(v) for k, v in row.items()}
        features.append(
            {
                "type": "Feature",
                "id": str(i),
                "properties": properties,
                "geometry": shapely.transform(geom, _round).__geo_interface__,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _round(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.round(xy, COORDINATE_DECIMALS)


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return round(value, 1)
    return value


def _tooltip_js(columns: list[str], labels: dict[str, str]) -> JsCode:
    """Tooltip built with textContent, never innerHTML (attributes come from devices)."""
    return tooltip([(c, labels.get(c, c)) for c in columns])
