"""The frame as people use it, in Debian's Chromium cut off from the internet: each role
signs in, opens its home and every entry of its navigation; the coordinator changes the
coverage controls; the language is switched; axe-core (vendored, a test asset) finds no
serious or critical accessibility problem on the frame's pages; every page is kept as a
screenshot in both languages in ``artifacts/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from data.models import Role, ScopeLevel
from tests.browser.poll import wait_until
from tests.factory import Account, add_accounts
from tests.gridded import PASSWORD, Gridded, Live, live_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "frame"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
LANGS = ("zh_CN", "en")

#: Who signs in, and their role's word on the page (English).
ROLES = {
    "g-admin": "Administrator",
    "g-coordinator": "Coordinator",
    "g-device-owner": "Planner",
    "b-care": "Care staff",
    "b-worker": "Grid worker",
}


@pytest.fixture(scope="module")
def people(strips: Gridded) -> Gridded:
    """Besides the strips' admin, coordinator and planner: a care worker and a grid worker."""
    area = ((ScopeLevel.community, "131208"),)
    add_accounts(
        strips.engine,
        [Account("b-care", Role.care_staff, area), Account("b-worker", Role.grid_worker, area)],
    )
    return strips


@pytest.fixture(scope="module")
def live(people: Gridded) -> Iterator[Live]:
    """The app over this module's strips (with the accounts above): the session's shared
    live server reads a copy without them."""
    with live_server(people.url) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/setup.sh"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Person:
    """A browser context signed in as ``username`` (or not), refusing every outside request."""

    def __init__(self, browser: Browser, live: Live, username: str | None, lang: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.live = live
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.context.request.get(f"{live.url}/lang?l={lang}&next=/", max_redirects=0)
        if username:
            r = self.context.request.post(
                f"{live.url}/login",
                form={"username": username, "password": PASSWORD},
                max_redirects=0,
            )
            assert r.status == 303, (username, r.text()[-300:])

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, path: str) -> Page:
        self.page.goto(f"{self.live.url}{path}", wait_until="load")
        return self.page

    def close(self) -> None:
        self.context.close()
        assert self.outside == [], f"requests left the machine: {self.outside}"
        # A browser logs a failed response (a 4xx page) as a console error: only script
        # errors count here.
        script = [e for e in self.errors if "Failed to load resource" not in e]
        assert script == [], f"JavaScript errors: {script}"


def _axe(page: Page, *, exclude_map: bool = False) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    context = "{exclude: [['.gw-mapbox .leaflet-pane']]}" if exclude_map else "document"
    result = page.evaluate(
        f"axe.run({context}, {{resultTypes: ['violations']}})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(2, 2)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _nav(page: Page, base: str) -> list[str]:
    """The main bar's entries, then the maps' own bar (opened from its "Maps" entry)."""
    main = page.eval_on_selector_all("nav.main a", "els => els.map(e => e.getAttribute('href'))")
    if "/maps/hierarchy" not in main:
        return list(main)
    page.goto(f"{base}/maps/hierarchy")
    maps = page.eval_on_selector_all("nav.sub a", "els => els.map(e => e.getAttribute('href'))")
    assert maps and maps[0] == "/maps/hierarchy", maps
    return list(main) + [href for href in maps if href not in main]


@pytest.mark.parametrize("lang", LANGS)
def test_each_role_walks_its_home_and_navigation(
    people: Gridded, browser: Browser, live: Live, lang: str
) -> None:
    problems: dict[str, Any] = {}
    seen: set[str] = set()
    for username, role in ROLES.items():
        person = Person(browser, live, username, lang)
        try:
            page = person.open("/")
            html_lang = page.get_attribute("html", "lang")
            assert html_lang == ("zh-CN" if lang == "zh_CN" else "en")
            if lang == "en":
                assert role in page.locator("header .role").inner_text()
            problems[f"home {username}"] = _axe(page)
            _shot(page, f"home-{username}-{lang}")
            links = _nav(page, live.url)
            assert links and links[0] == "/"
            for href in links[1:]:
                # Every entry answers (no link that would 403); a page not yet seen is
                # opened, checked and kept as a screenshot.
                if href in seen:
                    r = person.context.request.get(f"{live.url}{href}")
                    assert r.status == 200, (username, href, r.status)
                    continue
                seen.add(href)
                response = person.page.goto(f"{live.url}{href}", wait_until="load")
                assert response is not None and response.status == 200, (username, href)
                assert page.locator("nav.main a[aria-current=page]").count() == 1, href
                assert page.locator("main h1").count() == 1, href
                if href.startswith(("/maps/", "/viewer")):
                    page.wait_for_timeout(300)
                    problems[href] = _axe(page, exclude_map=True)
                name = re.sub(r"[^a-z0-9]+", "-", href.strip("/").lower()) or "home"
                _shot(page, f"{name}-{lang}")
        finally:
            person.close()
    found = {k: v for k, v in problems.items() if v}
    assert found == {}, found


@pytest.mark.parametrize("lang", LANGS)
def test_sign_in_and_error_pages_are_accessible(
    people: Gridded, browser: Browser, live: Live, lang: str
) -> None:
    person = Person(browser, live, None, lang)
    try:
        page = person.open("/maps/workload")  # signed out: sent to sign in
        assert "/login?next=" in page.url
        assert _axe(page) == []
        _shot(page, f"login-{lang}")
    finally:
        person.close()
    person = Person(browser, live, "g-coordinator", lang)
    try:
        page = person.open("/maps/incidents?days=0")
        assert page.locator("main h1").count() == 1
        assert page.locator("nav.main").count() == 1
        assert "days" in page.locator("main").inner_text()
        assert _axe(page) == []
        _shot(page, f"error-422-{lang}")
    finally:
        person.close()


def test_coordinator_changes_the_coverage_controls_and_the_language(
    people: Gridded, browser: Browser, live: Live
) -> None:
    person = Person(browser, live, "g-coordinator", "zh_CN")
    try:
        page = person.open("/maps/coverage")
        assert (
            page.locator("select[name=kind] option[value=pharmacy]").inner_text().startswith("药店")
        )
        # Every kind at a glance, filled in from /coverage one kind after another.
        share = page.locator("#coverage-glance tr[data-kind=pharmacy] [data-f=share]")
        wait_until(
            page,
            "!document.querySelector('#coverage-glance tbody tr:last-child "
            "[data-f=none]').textContent.includes('…')",
            "the coverage glance's last row",
        )
        assert re.fullmatch(r"\d+ % \(\d+ / \d+\)", share.inner_text()), share.inner_text()
        least = page.locator("#coverage-glance tr[data-kind=pharmacy] [data-f=least]")
        assert re.fullmatch(r"1312\d\d-G\d\d · \d+ %", least.inner_text()), least.inner_text()
        assert "未能算出" not in page.inner_text("#coverage-glance")
        assert _axe(page) == []
        _shot(page, "coverage-choose-zh_CN")
        page.select_option("select[name=kind]", "pharmacy")
        page.fill("input[name=minutes]", "5")
        page.check("input[name=straight]")
        # The walking graph was built when the server started: no progress sign to show.
        assert page.get_attribute("#coverage-form", "data-building") == "false"
        started = time.monotonic()
        with page.expect_navigation(wait_until="load"):
            # Submitted as the button does; the sign stays down (read in the same turn of the
            # page's event loop, before it can navigate away).
            busy = page.evaluate(
                "(() => { document.getElementById('coverage-form').requestSubmit();"
                " const b = document.getElementById('coverage-busy');"
                " return [b.classList.contains('on'),"
                " document.getElementById('coverage-busy-text').hidden]; })()"
            )
            assert busy == [False, True], busy
        assert time.monotonic() - started < 30
        assert re.search(r"kind=pharmacy&minutes=5&straight=true", page.url), page.url
        page.wait_for_selector("path.gw-grid")
        assert page.locator("path.gw-grid").count() == people.coordinator_grids
        # The straight-line circles are drawn (dashed) because the box was ticked.
        assert page.locator("path[stroke-dasharray='6 4']").count() >= 1
        assert page.input_value("input[name=minutes]") == "5"
        assert page.is_checked("input[name=straight]")
        assert _axe(page, exclude_map=True) == []
        _shot(page, "coverage-pharmacy-zh_CN")
        # Untick: the same map without the circles.
        page.uncheck("input[name=straight]")
        with page.expect_navigation(wait_until="load"):
            page.click("form.controls button[type=submit]")
        page.wait_for_selector("path.gw-grid")
        assert page.locator("path[stroke-dasharray='6 4']").count() == 0
        # Switch the language from the header: the same page, now in English.
        with page.expect_navigation(wait_until="load"):
            page.click("nav.lang a[lang=en]")
        assert page.get_attribute("html", "lang") == "en"
        assert "kind=pharmacy" in page.url
        assert page.locator("main h1").inner_text() == "Coverage"
        assert (
            page.locator("select[name=kind] option[value=pharmacy]")
            .inner_text()
            .startswith("Pharmacy")
        )
        page.wait_for_selector("path.gw-grid")
        _shot(page, "coverage-pharmacy-en")
        # And on a phone.
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload(wait_until="load")
        page.wait_for_selector("path.gw-grid")
        _shot(page, "coverage-phone-en")
    finally:
        person.close()
