"""The trail map alone: offline in both asset modes, the newest fix marked, tooltips safe."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pytest
from shapely.geometry import Point

from maps.base import AssetMode, external_urls
from maps.trail import LAST_FIX_COLOUR, trail_map

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _fixes(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "time": [T0 + timedelta(minutes=i) for i in range(n)][::-1],  # any order in
            "accuracy_m": [8.0] * n,
            "grid_code": ["<b>S01-C01-G05</b>"] * n,
        },
        geometry=[Point(84.83 + i * 1e-3, 45.61) for i in range(n)][::-1],
        crs=4326,
    )


@pytest.mark.parametrize("mode", ["url", "inline"])
def test_trail_map_is_offline_in_both_modes(mode: AssetMode) -> None:
    home = gpd.GeoDataFrame(geometry=[Point(84.83, 45.61)], crs=4326)
    zone = gpd.GeoDataFrame(geometry=[Point(84.83, 45.61).buffer(0.005)], crs=4326)
    page = trail_map(_fixes(5), home=home, zone=zone, asset_mode=mode).get_root().render()
    assert external_urls(page) == []
    assert "2026-03-01 08:04:00" in page and LAST_FIX_COLOUR in page
    assert "textContent" in page  # device-sent text is never pasted as HTML


def test_trail_map_without_fixes_still_shows_home_and_zone() -> None:
    home = gpd.GeoDataFrame(geometry=[Point(84.83, 45.61)], crs=4326)
    empty = _fixes(0)
    page = trail_map(empty, home=home, asset_mode="url").get_root().render()
    assert ">home<" in page or json.dumps("home") in page
    with pytest.raises(ValueError, match="needs fixes"):
        trail_map(empty, asset_mode="url")
    with pytest.raises(ValueError, match="time"):
        trail_map(empty.drop(columns="time"), home=home, asset_mode="url")
