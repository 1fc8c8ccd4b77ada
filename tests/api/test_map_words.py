"""The maps' legends, layer names and tooltips speak the page's language: maps/ gets the
page's gettext handed in (it may not import api/), and the catalog holds their words."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

#: (page, words in English, the same in Chinese): a legend's title, a layer, a tooltip label
WORDS = [
    ("/maps/grids", ["Households per grid", "grids", "worker"], ["网格户数", "网格", "网格员"]),
    ("/maps/workload", ["Workload per worker", "their grids"], ["网格员工作量", "该网格员的网格"]),
    ("/maps/incidents", ["open incidents", "total"], ["未结事件", "合计"]),
    ("/maps/coverage?kind=pharmacy", ["Households within reach", "uncovered"],
     ["可步行到达的户数比例", "未覆盖"]),
    ("/maps/hierarchy", ["Households per community", "roads", "road class"],
     ["社区户数", "道路", "道路等级"]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "en", "zh"), WORDS, ids=[w[0] for w in WORDS])
def test_map_words_follow_the_page_language(
    strips_client: TestClient, path: str, en: list[str], zh: list[str]
) -> None:
    english = strips_client.get(path, headers={"Accept-Language": "en"}).text
    chinese = strips_client.get(path, headers={"Accept-Language": "zh-CN"}).text
    for word in en:
        assert json.dumps(word) in english or word in english, (path, word)
    assert "网格户数" not in english and "未覆盖" not in english
    for word in zh:
        # As written, or JSON-escaped (\uXXXX) where folium dumps it.
        assert word in chinese or json.dumps(word) in chinese, (path, word)


@pytest.mark.parametrize("days", [1, 30])
def test_the_incidents_map_counts_its_days_in_english_and_chinese(
    strips_client: TestClient, days: int
) -> None:
    """The title, the introduction and both legends count the days shown: "the last 1 day",
    never "1 days"; Chinese has one form."""
    path = f"/maps/incidents?days={days}"
    english = strips_client.get(path, headers={"Accept-Language": "en"}).text
    chinese = strips_client.get(path, headers={"Accept-Language": "zh-CN"}).text
    unit = "day" if days == 1 else "days"
    for words in (
        f"Incidents, last {days} {unit}",
        f"Incidents reported in the last {days} {unit}, per grid",
        f"open ({days} {unit})",
        f"closed ({days} {unit})",
    ):
        assert words in english, words
    if days == 1:
        assert "1 days" not in english
    for words in (f"事件（近 {days} 天）", f"最近 {days} 天上报的事件", f"未结（{days} 天）"):
        assert words in chinese or json.dumps(words)[1:-1] in chinese, words
