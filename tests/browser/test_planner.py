"""The planner's workspace in a real Chromium, as a community-scoped planner uses it: the
oversize list, a split, moving a unit into the neighbouring grid with the counts changing
and a refusal said in Chinese, undo and redo; nothing leaves 127.0.0.1 and no JavaScript
fails. Locks, re-splitting, comparing and publishing ahead: test_planner_publish.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import shapely
from playwright.sync_api import Page

from tests.browser.planner_page import signed_in_planner
from tests.browser.poll import wait_until
from tests.browser.test_maps_browser import ARTIFACTS
from tests.gridded import Live

pytestmark = pytest.mark.browser

PLANNER = "g-planner"  # scoped to community 131208 in the strips template (tests/gridded.py)


@pytest.fixture(scope="module")
def page(live: Live) -> Iterator[tuple[Page, list[str]]]:
    with signed_in_planner(live.url, PLANNER) as signed_in:
        yield signed_in


def _counts(page: Page) -> dict[str, int]:
    rows = page.eval_on_selector_all(
        "#grids tbody tr", "rs => rs.map(r => [r.dataset.grid, r.cells[2].innerText])"
    )
    return {g: int(n.split()[0].replace(",", "")) for g, n in rows}


def test_a_planner_splits_moves_a_unit_undoes_and_redoes(
    page: tuple[Page, list[str]], live: Live
) -> None:
    pg, problems = page
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "planner-list.png"), full_page=True)
    pg.select_option("form.stack [name=community]", "131208")
    pg.locator("form.stack button[type=submit]").first.click()
    pg.wait_for_url(f"{live.url}/app/plans/*")
    try:
        wait_until(pg, "document.querySelectorAll('#grids tbody tr').length >= 2")
    except AssertionError:
        pid = pg.get_attribute("#workspace", "data-plan")
        statuses = pg.evaluate(
            f"Promise.all(['/units', '/grids', '', '/steps'].map(p => fetch('/plans/{pid}' + p)"
            ".then(r => r.status + ' ' + p)))"
        )
        raise AssertionError(f"the editor did not load: {problems} {statuses}") from None
    finally:
        pg.screenshot(path=str(ARTIFACTS / "planner-editor-opened.png"))
    # The ground under the plan: roads and buildings, also at a quarter zoom (the planner's
    # map snaps to quarters; the basemap must still be asked for a whole one).
    pg.wait_for_selector(".leaflet-gwBasemap-pane path", state="attached", timeout=20_000)
    with pg.expect_response(lambda r: "/basemap?" in r.url, timeout=15_000) as asked:
        # A quarter zoom other than the one the map may already be at (its fit snaps too).
        pg.evaluate(
            "(() => { const z = gwPlanMap.getZoom(), f = Math.floor(z);"
            " gwPlanMap.setZoom(f + (z - f === 0.25 ? 0.75 : 0.25)); })()"
        )
    assert asked.value.status == 200, (asked.value.status, asked.value.url)
    before = _counts(pg)
    plan_id = pg.get_attribute("#workspace", "data-plan")
    units = pg.evaluate(f"fetch('/plans/{plan_id}/units').then(r => r.json())")
    grid_of = {f["properties"]["unit"]: f["properties"]["grid"] for f in units["features"]}
    shape = {f["properties"]["unit"]: f["geometry"] for f in units["features"]}
    households = {f["properties"]["unit"]: f["properties"]["households"] for f in units["features"]}
    border = [
        (a, grid_of[a], grid_of[b])
        for u, v in units["edges"]
        for a, b in ((u, v), (v, u))
        if grid_of[a] != grid_of[b]
    ]

    def click_unit(unit: int, target: str) -> str:
        """Pick ``target`` as the grid to paint into and click ``unit`` on the map."""
        point = shapely.geometry.shape(shape[unit]).representative_point()
        pg.select_option("#target", target)
        pg.evaluate("document.getElementById('message').className = 'message'")
        pg.evaluate(f"gwPlanMap.setView([{point.y}, {point.x}], 19)")
        pg.wait_for_timeout(400)
        x, y = pg.evaluate(
            f"(() => {{ const p = gwPlanMap.latLngToContainerPoint([{point.y}, {point.x}]);"
            " const b = document.getElementById('planmap').getBoundingClientRect();"
            " return [p.x + b.left, p.y + b.top]; })()"
        )
        pg.mouse.click(x, y)
        wait_until(pg, "/ok|problem/.test(document.getElementById('message').className)")
        return pg.get_attribute("#message", "class") or ""

    # Every grid is full (180 of 150-180): a unit with households refused, with its reason.
    unit, _, target = next(b for b in border if households[b[0]] > 0)
    assert "problem" in click_unit(unit, target)
    assert "180" in pg.inner_text("#message") and _counts(pg) == before
    # The reason in the page's language (zh-CN here), not the API's English.
    assert "户" in pg.inner_text("#message") and "would" not in pg.inner_text("#message")
    pg.screenshot(path=str(ARTIFACTS / "planner-refused.png"))
    # Close in, the ground is named by its community, not by the current grids: the plan names
    # its own grids, and the current codes beside them read as the plan's.
    with pg.expect_response(lambda r: "/basemap?" in r.url and "zoom=18" in r.url):
        pg.evaluate("gwPlanMap.setZoom(18)")
    pg.wait_for_timeout(300)
    names = pg.eval_on_selector_all(".gw-area-label", "ls => ls.map(l => l.textContent)")
    assert any("Miragaia" in n for n in names), names
    assert not any(re.fullmatch(r"131208-G\d+", n) for n in names), names
    # An empty unit moves; undo and redo replay it, kept in the plan's history.
    empty = [b for b in border if households[b[0]] == 0]
    moved = False
    for unit, _source, target in empty[:6]:
        if "ok" in click_unit(unit, target):
            moved = True
            break
    assert moved, "no empty border unit could move"
    steps = "document.querySelectorAll('#history li:not(.muted)').length"
    wait_until(pg, f"{steps} >= 1")
    # The change is said in the page's language at local time (the deployment's zone),
    # not as the English line and UTC stamp kept with the step.
    said = pg.inner_text("#history li:first-child")
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    assert f"个单元划入 {target}" in said and "unit(s)" not in said, said
    stamp = re.search(r"(\d{4})/(\d+)/(\d+) (\d\d):\d\d", said)
    assert stamp, said
    year, month, day, hour = (int(g) for g in stamp.groups())
    shown = datetime(year, month, day, hour, tzinfo=local.tzinfo)
    assert timedelta(0) <= local - shown < timedelta(hours=1, minutes=1), (said, local)
    pg.click("#undo")
    wait_until(pg, "document.querySelectorAll('#history li.step-undone').length == 1")
    pg.click("#redo")
    wait_until(pg, "document.querySelectorAll('#history li.step-undone').length == 0")
    # The message says the step as the list does, in the page's language.
    wait_until(pg, "document.getElementById('message').textContent.includes('个单元划入')")
    assert "unit(s)" not in pg.inner_text("#message")
    assert _counts(pg) == before
    pg.screenshot(path=str(ARTIFACTS / "planner-editor.png"))
    assert problems == []
