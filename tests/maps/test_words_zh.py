"""The trail map, the vector-tile viewer's legend and the plan comparison speak the page's
language: their words come through the page's gettext, and the catalog has Chinese for each
(issue 15). Without a gettext they speak English, the message ids."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import folium
import geopandas as gpd
from shapely.geometry import Point

from api.pages.i18n import translations
from maps.base import offline_map
from maps.plans import compare_page
from maps.trail import trail_map
from maps.viewer import viewer_page

ZH = translations("zh_CN").gettext
HAN = re.compile(r"[\u4e00-\u9fff]")


def _shown(word: str, page: str) -> bool:
    """As written, or JSON-escaped where folium dumps it."""
    return word in page or json.dumps(word) in page


def test_the_trail_map_in_chinese_tells_local_time() -> None:
    fixes = gpd.GeoDataFrame(
        {"time": [datetime(2026, 3, 1, 8, 0, tzinfo=UTC)], "accuracy_m": [8.0]},
        geometry=[Point(84.83, 45.61)],
        crs=4326,
    )
    home = gpd.GeoDataFrame(geometry=[Point(84.83, 45.61)], crs=4326)
    zone = gpd.GeoDataFrame(geometry=[Point(84.83, 45.61).buffer(0.005)], crs=4326)
    m = trail_map(fixes, home=home, zone=zone, asset_mode="url", gettext=ZH, timezone="Asia/Urumqi")
    page = m.get_root().render()
    for word in ("安全区", "家", "最新位置", "图例", "精度（米）", "时间（Asia/Urumqi）"):
        assert _shown(word, page), word
    for english in ("safe zone", "last fix", "accuracy (m)", "Legend"):
        assert not _shown(english, page), english
    assert "2026-03-01 14:00:00" in page  # 08:00 UTC is 14:00 in Urumqi (UTC+6)
    english_page = trail_map(fixes, home=home, asset_mode="url").get_root().render()
    assert _shown("last fix", english_page) and "2026-03-01 08:00:00" in english_page


def test_the_viewer_legend_and_popup_in_chinese() -> None:
    page = viewer_page(
        (8.6, 41.1, 8.7, 41.2),
        kinds=["pharmacy"],
        household_min=150,
        household_max=180,
        kind_names={"pharmacy": "药店"},
        gettext=ZH,
    )
    for word in ("网格户数", "网格边界", "道路", "设施", "网格员", "药店"):
        assert word in page, word
    for english in ("under the band", "grid boundary", "Households per grid", '"worker"'):
        assert english not in page, english
    assert 'aria-label="图例"' in page and "<title>gridwork" not in page
    assert "grid boundary" in viewer_page(
        (8.6, 41.1, 8.7, 41.2), kinds=[], household_min=150, household_max=180
    )


def test_the_plan_comparison_and_a_tile_layer_in_chinese() -> None:
    rows = [{"metric": "polsby_popper_mean", "a": 0.5, "b": 0.6, "better": 2}]
    page = compare_page({"a": 1, "b": 2, "rows": rows}, gettext=ZH, lang="zh-CN")
    assert '<html lang="zh-CN">' in page
    assert "方案 1 与方案 2" in page and ZH("Compactness") in page and HAN.search(ZH("Measure"))
    assert "polsby_popper_mean" not in page and "Plan 1" not in page
    area = gpd.GeoDataFrame(geometry=[Point(8.6, 41.1).buffer(0.01)], crs=4326)
    m = offline_map(
        area,
        asset_mode="url",
        tiles_url="/tiles/{z}/{x}/{y}.png",
        tiles_attribution="intranet",
        gettext=ZH,
    )
    layers = [c for c in m._children.values() if isinstance(c, folium.TileLayer)]
    assert [layer.layer_name for layer in layers] == ["底图"]  # its name in the layer switcher
