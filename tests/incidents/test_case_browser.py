"""The case pages in a real headless Chromium (Debian's) on a 390 px phone, cut off from the
internet: a grid worker reports by tapping the map, lands on the case, accepts it, sees it in
"my cases"; the coordinator's list and figures. Screenshots in ``artifacts/``; no JavaScript
error, no request leaving 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, ViewportSize, sync_playwright
from sqlalchemy import Engine

from tests.factory import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def live_url(cases_engine: Engine) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {
        **os.environ,
        "GRIDWORK_LIVE_DATABASE_URL": cases_engine.url.render_as_string(hide_password=False),
        "GRIDWORK_LIVE_SECRET": secrets.token_urlsafe(48),
    }
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.live_server:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=root, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "no live server"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _phone(browser: Browser, url: str, username: str) -> tuple[Page, list[str], list[str]]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    outside: list[str] = []
    errors: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    r = context.request.post(
        f"{url}/login", form={"username": username, "password": PASSWORD}, max_redirects=0
    )
    assert r.status == 303
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, outside, errors


def test_a_grid_worker_reports_on_a_phone(browser: Browser, live_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page, outside, errors = _phone(browser, live_url, "c-worker")
    page.goto(f"{live_url}/app/incidents/new", wait_until="networkidle")
    page.select_option("#category", "street_light")
    page.locator("#pickmap").scroll_into_view_if_needed()
    box = page.locator("#pickmap").bounding_box()
    assert box and box["width"] <= 390
    # The picker shows the worker's grid whole, close up (it used to open at zoom 15 around
    # the middle of the area, whatever its size).
    extent = page.get_attribute("#pickmap", "data-extent") or ""
    west, south, east, north = (float(v) for v in extent.split(","))
    shown = page.evaluate(
        "() => { const m = document.getElementById('pickmap').gridworkMap, b = m.getBounds();"
        " return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth(), m.getZoom()]; }"
    )
    assert shown[0] <= west and shown[1] <= south and shown[2] >= east and shown[3] >= north
    assert shown[4] >= 16, shown
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.screenshot(path=str(ARTIFACTS / "incidents-report-390.png"), full_page=True)
    assert page.input_value("#lon") != ""
    page.fill("#description", "路灯不亮，在楼下拐角")
    page.screenshot(path=str(ARTIFACTS / "incidents-report-390.png"), full_page=True)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/app/incidents/*")
    assert "路灯不亮" in page.content()
    page.click("form.act button:has-text('受理')")
    page.wait_for_load_state("load")
    assert "已受理" in page.content()
    page.screenshot(path=str(ARTIFACTS / "incidents-case-390.png"), full_page=True)
    page.goto(f"{live_url}/app/incidents/mine", wait_until="networkidle")
    assert page.locator("ul.mycases li").count() >= 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    page.screenshot(path=str(ARTIFACTS / "incidents-mine-390.png"), full_page=True)
    assert outside == [] and errors == [], (outside, errors)


def test_the_coordinator_list_and_figures(browser: Browser, live_url: str) -> None:
    page, outside, errors = _phone(browser, live_url, "c-community")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_url}/app/incidents", wait_until="networkidle")
    assert page.locator("#casemap .leaflet-interactive").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "incidents-list.png"), full_page=True)
    page.goto(f"{live_url}/app/incidents/figures?level=grid", wait_until="networkidle")
    page.screenshot(path=str(ARTIFACTS / "incidents-figures.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_url}/app/incidents", wait_until="networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the list is {width} px wide on a 390 px phone"
    page.screenshot(path=str(ARTIFACTS / "incidents-list-390.png"), full_page=True)
    assert outside == [] and errors == [], (outside, errors)


def test_the_department_queue_on_a_phone(browser: Browser, live_url: str) -> None:
    """The water department lands on its queue, fits a 390 px phone, and axe-core (vendored)
    finds no serious or critical accessibility problem on it."""
    page, outside, errors = _phone(browser, live_url, "c-water")
    page.goto(f"{live_url}/", wait_until="networkidle")
    assert page.url.endswith("/app/incidents/queue")
    assert page.locator("nav.main a[aria-current=page]").count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the queue is {width} px wide on a 390 px phone"
    axe = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "axe.min.js"
    page.add_script_tag(path=str(axe))
    found = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id))"
    )
    assert found == []
    page.screenshot(path=str(ARTIFACTS / "incidents-queue-390.png"), full_page=True)
    assert outside == [] and errors == [], (outside, errors)
