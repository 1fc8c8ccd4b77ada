"""The plan pages in words (issue 16). A refused move says why in the page's language: the
domain gives each reason a code and its values (``geo.planning.metrics.MOVE_PROBLEMS``), the
page says the sentence from its catalog; the JSON API keeps the English sentence. The
metrics panel says compactness as the rectangle that scores the same, and the share of
boundaries on roads against the most that could be."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.routers.plan_pages import REFUSALS, say_problems
from data.db import make_engine
from data.models import Role, ScopeLevel
from geo.errors import InvalidInput
from geo.planning.metrics import MOVE_PROBLEMS, Problem, rectangle_ratio
from tests.catalog import HAN, without_chinese
from tests.factory import Account, add_accounts, database, make_app, sign_in

COMMUNITY = "131208"
PLANNER = Account("t-rplanner", Role.planner, ((ScopeLevel.community, COMMUNITY),))


def test_the_page_words_are_the_domain_sentences_and_all_have_chinese() -> None:
    assert REFUSALS == MOVE_PROBLEMS
    # Every value a sentence names is named in its translation too.
    assert without_chinese(MOVE_PROBLEMS.values()) == []


def test_a_problem_is_its_english_sentence_with_a_code() -> None:
    p = Problem("over", grid="G7", households=191, max=180)
    assert p == "grid G7 would hold 191 households, over 180"
    assert (p.code, p.values) == ("over", {"grid": "G7", "households": 191, "max": 180})


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[TestClient]:
    url = database(server_url, "gridwork_test_plan_refusals", "porto")
    engine: Engine = make_engine(url)
    add_accounts(engine, [PLANNER])
    with TestClient(make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)) as c:
        c.headers.update(sign_in(c, PLANNER.username))
        yield c
    engine.dispose()


def _full_pair(client: TestClient) -> tuple[int, int, str, str]:
    """A draft, a unit with households on the border of two grids, its grid and the other."""
    plan = client.post("/plans", json={"community": COMMUNITY}).json()
    units = client.get(f"/plans/{plan['id']}/units").json()
    grid = {f["properties"]["unit"]: f["properties"]["grid"] for f in units["features"]}
    hh = {f["properties"]["unit"]: f["properties"]["households"] for f in units["features"]}
    for u, v in units["edges"]:
        if grid[u] != grid[v] and hh[u] > 0:
            return plan["id"], u, grid[u], grid[v]
    raise AssertionError("no border unit with households")


def test_a_refused_move_in_chinese_on_a_zh_page_and_english_on_an_en_one(
    client: TestClient,
) -> None:
    plan, unit, source, target = _full_pair(client)
    counts = {g["code"]: g["households"] for g in client.get(f"/plans/{plan}").json()["grids"]}
    # Lock the target too, so that a lock and the band are both reasons.
    assert client.post(f"/plans/{plan}/locks", json={"grids": [target]}).status_code == 200
    body = {"units": [unit], "to_grid": target, "check_only": True}
    api = client.post(f"/plans/{plan}/moves", json=body)
    assert api.status_code == 409
    assert f"grid {target} is locked" in api.json()["problems"]
    # The check (no geometry read) gives the reasons the move itself gives.
    made = client.post(f"/plans/{plan}/moves", json={**body, "check_only": False})
    assert made.status_code == 409 and made.json()["problems"] == api.json()["problems"]

    zh = client.post(
        f"/app/plans/{plan}/moves", json=body, headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    )
    assert zh.status_code == 409
    reasons = zh.json()["problems"]
    assert len(reasons) == len(api.json()["problems"])
    assert f"网格 {target} 已锁定" in reasons
    assert all(HAN.search(r) and "would" not in r and "locked" not in r for r in reasons)
    after = zh.json()["households"]
    assert after[target] > counts[target] and after[source] < counts[source]
    assert sum(after.values()) == counts[target] + counts[source]

    en = client.post(f"/app/plans/{plan}/moves", json=body, headers={"Accept-Language": "en"})
    assert en.json()["problems"] == api.json()["problems"]
    # Nothing moved: a check, and a refusal besides.
    again = {g["code"]: g["households"] for g in client.get(f"/plans/{plan}").json()["grids"]}
    assert again == counts


def test_a_move_without_a_code_is_shown_as_it_is() -> None:
    class Ctx:
        def _(self, message: str, **values: object) -> str:
            return "译:" + message % values

    said = say_problems(Ctx(), (Problem("parts", grid="A"), "some other reason"))  # type: ignore[arg-type]
    assert said == ["译:grid A would break into parts", "some other reason"]


@pytest.mark.parametrize("ratio", [1.0, 1.5, 3.0, 7.0])
def test_a_score_is_the_rectangle_that_scores_the_same(ratio: float) -> None:
    box = shapely.box(0, 0, 100 * ratio, 100)
    pp = 4 * math.pi * box.area / box.length**2
    reock = box.area / (math.pi * shapely.minimum_bounding_radius(box) ** 2)
    assert rectangle_ratio(polsby_popper=pp) == pytest.approx(ratio, rel=1e-6)
    assert rectangle_ratio(reock=reock) == pytest.approx(ratio, rel=1e-6)


def test_rounder_than_a_square_and_bad_calls() -> None:
    disc = shapely.Point(0, 0).buffer(100, quad_segs=64)
    assert rectangle_ratio(polsby_popper=4 * math.pi * disc.area / disc.length**2) == 0
    assert rectangle_ratio(reock=0.9) == 0
    assert rectangle_ratio(reock=0.0) == math.inf
    with pytest.raises(InvalidInput):
        rectangle_ratio()
    with pytest.raises(InvalidInput):
        rectangle_ratio(polsby_popper=0.5, reock=0.5)


def test_the_metrics_panel_in_words_in_chinese(client: TestClient) -> None:
    plan = client.post("/plans", json={"community": COMMUNITY, "seed": 3}).json()
    metrics = client.get(f"/plans/{plan['id']}").json()["metrics"]
    rows = client.get(
        f"/app/plans/{plan['id']}/metrics", headers={"Accept-Language": "zh-CN"}
    ).json()
    shown = {r["key"]: r["value"] for r in rows}
    for key, score in (("polsby_popper_mean", "polsby_popper"), ("reock_mean", "reock")):
        ratio = rectangle_ratio(**{score: metrics[key]})
        words = "比正方形更圆" if ratio == 0 else f"相当于长是宽 {ratio:.1f} 倍的矩形"
        assert shown[key] == f"{metrics[key]:.2f} · {words}"
    assert shown["road_share"].startswith(f"{metrics['road_share'] * 100:.0f} %")
    if metrics["unavoidable_offroad_share"] > 0:
        best = (1 - metrics["unavoidable_offroad_share"]) * 100
        assert shown["road_share"].endswith(f"最多约可达 {best:.0f} %")
    # The page draws the same rows the editor refreshes from.
    page = client.get(f"/app/plans/{plan['id']}", headers={"Accept-Language": "zh-CN"}).text
    assert shown["reock_mean"] in page and "Roundness" not in page
