"""Every workspace page passes axe-core in Chinese and in English, and is kept as a screenshot.

The frame's own pages are walked in test_coordinator.py; here the pages behind them: the care
console (elders, an elder, enrol, why-then-locate, alerts, safe zone), the planner's (list,
editor, compare, a published plan, print), the cases (list, a case, report, mine, figures)
and the administrator's (accounts, an account, the audit log, the incident catalogue; my
password). One browser and one server for all; the data they show (an enrolled elder, a
draft and a published plan, a reported case) is made once through the app itself; the
registers (a grid's households, the area's facilities, a new one's form each) are read from
the test grids. axe-core is vendored (tests/browser/vendor); a serious or critical violation
fails the page's test, and every page is saved to ``artifacts/frame/<page>-<lang>.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page
from sqlalchemy import text

from data.models import Role, ScopeLevel
from tests.browser.poll import wait_until
from tests.browser.test_coordinator import AXE, LANGS, Person, _shot, browser  # noqa: F401
from tests.factory import Account, add_accounts, make_app, sign_in
from tests.gridded import Gridded, Live, live_server

pytestmark = pytest.mark.browser

AREA = ((ScopeLevel.community, "131208"),)
CARE, PLANNER, COORDINATOR, ADMIN = "p-care", "g-planner", "g-coordinator", "g-admin"

#: (name, who opens it, its address with {elder}, {draft}, {published}, {case} filled in)
PAGES = [
    ("care-elders", CARE, "/app/elders"),
    ("care-elder", CARE, "/app/elders/{elder}"),
    ("care-enrol", CARE, "/app/elders/new"),
    ("care-locate-why", CARE, "/app/elders/{elder}/locate"),
    ("care-locate", CARE, "/app/elders/{elder}/locate?why=welfare"),
    ("care-alerts", CARE, "/app/alerts"),
    ("care-zone", CARE, "/app/elders/{elder}/zone"),
    ("plans-list", PLANNER, "/app/plans"),
    ("plans-editor", PLANNER, "/app/plans/{draft}"),
    ("plans-compare", PLANNER, "/app/plans/compare?a={draft}"),
    ("plans-published", PLANNER, "/app/plans/{published}"),
    ("plans-print", PLANNER, "/app/plans/{published}/print"),
    ("cases-list", COORDINATOR, "/app/incidents"),
    ("cases-case", COORDINATOR, "/app/incidents/{case}"),
    ("cases-new", COORDINATOR, "/app/incidents/new"),
    ("cases-mine", COORDINATOR, "/app/incidents/mine"),
    ("cases-figures", COORDINATOR, "/app/incidents/figures"),
    ("facilities-register", COORDINATOR, "/app/facilities"),
    ("facilities-new", COORDINATOR, "/app/facilities/new"),
    ("households-register", CARE, "/app/households?grid=131208-G01"),
    ("households-new", ADMIN, "/app/households/new?grid=131208-G01"),
    ("catalogue-categories", ADMIN, "/app/categories"),
    ("catalogue-category", ADMIN, "/app/categories/street_light"),
    ("catalogue-departments", ADMIN, "/app/departments"),
    ("accounts-list", ADMIN, "/app/accounts"),
    ("accounts-account", ADMIN, "/app/accounts/g-coordinator"),
    ("accounts-audit", ADMIN, "/app/audit"),
    ("accounts-password", COORDINATOR, "/app/password"),
]


def _axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations, the maps' drawn panes left out (shapes
    and markers; their controls and legends are checked)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run({exclude: [['.leaflet-pane']]}, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.fixture(scope="module")
def made(strips: Gridded) -> dict[str, int]:
    """An elder, a draft plan, a published plan and a case, made as staff would make them."""
    add_accounts(strips.engine, [Account(CARE, Role.care_staff, AREA)])
    with strips.engine.connect() as conn:
        household = conn.execute(
            text(
                "SELECT h.code FROM household h JOIN grid g ON g.id = h.grid_id "
                "WHERE g.code LIKE '131208-%' ORDER BY h.id LIMIT 1"
            )
        ).scalar_one()
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid "
                "WHERE code LIKE '131208-%' ORDER BY code LIMIT 1) s"
            )
        ).one()
    ids: dict[str, int] = {}
    with TestClient(make_app(strips.engine)) as client:
        care = sign_in(client, CARE)
        r = client.post(
            "/app/elders/new",
            headers=care,
            data={
                "display_name": "王秀英",
                "household_code": household,
                "device_id": "watch-pages-1",
                "datum": "wgs84",
                "consent_given_by": "本人",
                "consent_given_on": str(date.today()),
                "consent_scope": "走失时定位",
            },
        )
        assert r.status_code == 200, r.text[-400:]
        planner = sign_in(client, PLANNER)
        for name in ("draft", "published"):
            r = client.post("/plans", json={"community": "131208"}, headers=planner)
            assert r.status_code == 201, r.text
            ids[name] = int(r.json()["id"])
        effective = str(date.today() + timedelta(days=30))
        r = client.post(
            f"/plans/{ids['published']}/publish", json={"effective": effective}, headers=planner
        )
        assert r.status_code == 200, r.text
        r = client.post(
            "/app/incidents/new",
            headers=sign_in(client, COORDINATOR),
            data={"category": "street_light", "description": "路灯不亮", "lon": lon, "lat": lat},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[-400:]
        ids["case"] = int(r.headers["location"].rsplit("/", 1)[1])
    with strips.engine.connect() as conn:
        ids["elder"] = conn.execute(text("SELECT max(id) FROM elder")).scalar_one()
    return ids


@pytest.fixture(scope="module")
def server(strips: Gridded, made: dict[str, int]) -> Iterator[Live]:
    with live_server(strips.url) as live:
        yield live


@pytest.fixture(scope="module")
def people(browser: Browser, server: Live) -> Iterator[dict[tuple[str, str], Person]]:  # noqa: F811
    """One signed-in browser context per person and language, opened on first use."""
    opened: dict[tuple[str, str], Person] = {}

    class Opened(dict[tuple[str, str], Person]):
        def __missing__(self, key: tuple[str, str]) -> Person:
            opened[key] = self[key] = Person(browser, server, key[0], key[1])
            return opened[key]

    yield Opened()
    for person in opened.values():
        person.close()


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("name", "who", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_the_page_passes_axe_in_both_languages(
    people: dict[tuple[str, str], Person],
    server: Live,
    made: dict[str, int],
    name: str,
    who: str,
    path: str,
    lang: str,
) -> None:
    person = people[(who, lang)]
    page = person.page
    response = page.goto(f"{server.url}{path.format(**made)}", wait_until="load")
    assert response is not None and response.status == 200, (name, response and response.status)
    assert page.get_attribute("html", "lang") == ("zh-CN" if lang == "zh_CN" else "en")
    assert page.locator("main h1").count() == 1
    if page.locator(".leaflet-container").count():
        page.wait_for_timeout(300)  # the map's layers, then the basemap's request
    found = _axe(page)
    _shot(page, f"{name}-{lang}")
    assert found == [], found
    # A box the page fills in itself must hold a value its own rules allow; else the browser
    # silently keeps the form from being sent (the zone's radius of 300 stepped 21, 31, ...).
    assert page.evaluate(REFUSED_AS_GIVEN) == [], name


#: Form controls whose value as the page gives it fails their own min/max/step/pattern.
REFUSED_AS_GIVEN = """[...document.querySelectorAll('main input, main select, main textarea')]
  .filter(e => e.value !== '' && !e.checkValidity())
  .map(e => `${e.id || e.name}=${e.value}: ${e.validationMessage}`)"""


#: Where the drawn grids reach past their map's edges (px, the largest overshoot), as printed.
OUTSIDE_THE_MAP = """() => {
  const box = document.getElementById('planmap').getBoundingClientRect();
  const over = [...document.querySelectorAll('#planmap path.leaflet-interactive')].map(p => {
    const r = p.getBoundingClientRect();
    return Math.max(box.left - r.left, r.right - box.right, box.top - r.top, r.bottom - box.bottom);
  });
  return over.length ? Math.max(...over) : null;
}"""


#: A window taller than the paper's map (150 mm, 230 mm) by enough that the old fit lost
#: the community's bottom: 60 % of it is over the printed height.
WINDOW_HEIGHT = {"A4": 1400, "A3": 1700}


@pytest.mark.parametrize("paper", ["A4", "A3"])
def test_the_printed_plan_shows_every_grid_on_the_paper(
    people: dict[tuple[str, str], Person], server: Live, made: dict[str, int], paper: str
) -> None:
    """Street offices put the printed plan on the wall. The map was fitted on screen at 60 %
    of the window's height and printed at 150 mm, which the map does not notice: on a tall
    window the community's bottom fell off the sheet. The map has the paper's shape on
    screen now, so what is fitted there is what is printed."""
    page = people[(PLANNER, "zh_CN")].page
    page.set_viewport_size({"width": 1280, "height": WINDOW_HEIGHT[paper]})
    page.goto(f"{server.url}/app/plans/{made['published']}/print?paper={paper}")
    wait_until(page, "document.querySelectorAll('#planmap path.leaflet-interactive').length > 1")
    page.wait_for_timeout(300)  # the fit's animation
    assert page.evaluate(OUTSIDE_THE_MAP) <= 1
    page.emulate_media(media="print")  # as printing: the page's layout, no resize event
    try:
        page.wait_for_timeout(300)
        assert page.evaluate(OUTSIDE_THE_MAP) <= 1, "a grid falls off the printed map"
        _shot(page, f"plans-print-{paper}-as-printed")
    finally:
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 1280, "height": 860})
