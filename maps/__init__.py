"""folium map builders over GeoDataFrames that work with no internet (see maps.base)."""

from maps.base import (
    OSM_ATTRIBUTION_TEXT,
    STATIC_DIR,
    Legend,
    LegendEntry,
    NotOfflineError,
    OfflineMap,
    assert_offline,
    external_urls,
    offline_map,
)
from maps.hierarchy import hierarchy_map

__all__ = [
    "OSM_ATTRIBUTION_TEXT",
    "STATIC_DIR",
    "Legend",
    "LegendEntry",
    "NotOfflineError",
    "OfflineMap",
    "assert_offline",
    "external_urls",
    "hierarchy_map",
    "offline_map",
]
