"""The care staff's console in a real headless Chromium, cut off from the internet (issue 17).

Care staff enrol an elder from the form (finding the household by search), the watch reports
as Traccar Client would (GCJ-02), the elder steps out of the safe zone and the alert arrives
in the open inbox without a reload, with a beep and a notification; the locate page opened
from the alert asks why, then draws the walking route to the nearest facility; the alert is
acknowledged and closed with notes. Then the grid worker, on a 390 px phone, sees it routed
to them. The audit log holds each read of the position with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright
from sqlalchemy import Engine, text

from data.access.queries import AreaScope
from data.care.queries import set_alert_status
from data.db import transaction
from data.models.care import AlertStatus
from geo.care.datum import from_wgs84
from tests.browser.poll import wait_until
from tests.browser.test_maps_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.browser.test_phone_frame import LINES
from tests.care.conftest import (  # noqa: F401 - fixtures used by name
    HOME_CODE,
    PASSWORD,
    STAFF,
    District,
    care,
    care_engine,
    care_url,
    district,
)
from tests.gridded import live_server

pytestmark = pytest.mark.browser

FAR_EAST = 0.03  # degrees: ~2.3 km east of home, well outside home grid + 200 m


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/setup.sh"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def care_live(care_url: str) -> Iterator[str]:  # noqa: F811
    """The app on uvicorn over the synthetic district, in its own process."""
    with live_server(care_url, "--timeout-graceful-shutdown", "2") as server:
        yield server.url


class Person:
    """A signed-in browser context that refuses (and records) requests off this machine."""

    def __init__(self, browser: Browser, url: str, username: str, width: int, height: int):
        self.context: BrowserContext = browser.new_context(
            viewport={"width": width, "height": height}, locale="zh-CN"
        )
        self.context.grant_permissions(["notifications"], origin=url)
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        r = self.context.request.post(
            f"{url}/login", form={"username": username, "password": PASSWORD}, max_redirects=0
        )
        assert r.status == 303, r.text()
        self.url = url

    def _route(self, route: Route) -> None:
        if route.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"care-{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.outside == [], f"requests left the machine: {self.outside}"
        assert self.errors == [], f"JavaScript errors: {self.errors}"


def _report(server_url: str, device: str, lon: float, lat: float, when: datetime) -> None:
    """One report as Traccar Client sends it: GET on the server URL, in the watch's datum."""
    params = {
        "id": device,
        "lat": f"{lat:.7f}",
        "lon": f"{lon:.7f}",
        "timestamp": str(int(when.timestamp())),
        "accuracy": "25",
        "batt": "64",
    }
    r = httpx.get(f"{server_url}&{urlencode(params)}", timeout=10)  # the key stays in the URL
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text


def test_care_console_finds_a_lost_elder(
    browser: Browser,
    care_live: str,
    care: Engine,  # noqa: F811 - no elder left from another test
    district: District,  # noqa: F811
    tmp_path: Path,
) -> None:
    staff = Person(browser, care_live, STAFF["care_staff"].username, 1280, 900)
    page = staff.page

    # Enrol from the form, finding the home household by searching part of its code.
    page.goto(f"{care_live}/app/elders/new")
    page.fill("#display_name", "王秀英")
    page.fill("#emergency_contact", "女儿 13900000000")
    page.fill("#gw-hh-q", HOME_CODE[:6])
    page.click("#gw-hh-find")
    page.click(f"button.gw-hh[data-code='{HOME_CODE}']")
    assert HOME_CODE in page.inner_text("#gw-hh-chosen")
    page.fill("#device_id", "watch-console-1")
    page.select_option("#datum", "gcj02")
    page.fill("#consent_given_by", "本人及女儿")
    page.fill("#consent_given_on", str(date.today() - timedelta(days=1)))
    page.fill("#consent_scope", "走失时定位，通知网格员")
    # The signed form, photographed on a phone at over the scan's 5 MB: made smaller here
    # before it is sent (it was refused with the whole enrolment).
    scan = tmp_path / "consent.png"
    noise = np.random.default_rng(3).integers(0, 256, (1400, 1700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(scan, compress_level=1)
    assert scan.stat().st_size > 5 * 1024 * 1024
    page.set_input_files("#scan", str(scan))
    wait_until(page, "/→/.test(document.querySelector('.photo-fit').textContent)", "not shrunk")
    page.click("#gw-enrol button[type=submit]")
    page.wait_for_selector("#gw-api-key")
    server_url = page.inner_text("#gw-server-url")
    assert server_url.startswith(f"{care_live}/ingest/osmand?key=")
    assert page.inner_text("#gw-device-id") == "watch-console-1"
    assert page.locator(".gw-qr svg path").count() == 1
    staff.shot("enrolled")
    with care.connect() as conn:
        kept = conn.execute(text("SELECT content_type, original_bytes FROM consent_scan")).one()
    assert kept.content_type == "image/jpeg" and kept.original_bytes <= 5 * 1024 * 1024

    # Before the first fix the locate page still has a map: the home and the safe zone.
    with care.connect() as conn:
        elder_id = conn.execute(text("SELECT id FROM elder")).scalar_one()
    page.goto(f"{care_live}/app/elders/{elder_id}/locate?why=welfare")
    wait_until(page, "window.gwReady === true", "the locate map without a fix never finished")
    assert page.locator("p.gw-nofix").count() == 1
    assert page.locator("path.gw-home").count() == 1 and page.locator("path.gw-fix").count() == 0
    assert page.locator(".leaflet-overlay-pane path").count() == 2  # the zone and the home
    home_ll = f"[{district.home_lat}, {district.home_lon}]"
    assert page.evaluate(f"window.gwMap.getBounds().contains({home_ll})")
    assert staff.errors == [], staff.errors
    staff.shot("locate-no-fix")

    # The inbox is open and live before the elder walks off.
    page.goto(f"{care_live}/app/alerts")
    wait_until(page, "window.gwLive === true", "the inbox never connected its live stream")
    page.click("#gw-loud")  # the user's gesture that lets the page beep
    page.evaluate("window.gwSameVisit = 1")

    now = datetime.now(UTC).replace(microsecond=0)
    home = from_wgs84(district.home_lon, district.home_lat, "gcj02")
    away = from_wgs84(district.home_lon + FAR_EAST, district.home_lat, "gcj02")
    _report(server_url, "watch-console-1", *home, now - timedelta(minutes=10))
    sent = time.monotonic()
    _report(server_url, "watch-console-1", *away, now - timedelta(minutes=2))
    _report(server_url, "watch-console-1", away[0] + 1e-4, away[1], now - timedelta(minutes=1))

    page.wait_for_selector("#gw-inbox li.gw-left_zone", timeout=10_000)
    arrived_s = time.monotonic() - sent
    assert page.evaluate("window.gwSameVisit") == 1, "the page was reloaded"
    assert page.evaluate("window.gwBeeps") >= 2  # the button's test beep and the alert's
    with care.connect() as conn:
        alert_id = conn.execute(text("SELECT id FROM alert WHERE kind = 'left_zone'")).scalar_one()
    assert page.evaluate("window.gwNotified") == [alert_id]
    assert arrived_s < 5, arrived_s
    staff.shot("inbox-live")

    # The locate page, from the alert: why first, then the route to the nearest facility.
    page.click(f"#alert-{alert_id} a.gw-locate")
    page.wait_for_selector("input[name=why][value=alert]:checked")
    # Each reason's button sits just before its words, not half a screen away from them.
    gaps = page.eval_on_selector_all(
        ".gw-reasons label",
        "ls => ls.map(l => { const t = document.createRange();"
        " t.setStart(l.lastChild, 0); t.setEnd(l.lastChild, l.lastChild.length);"
        " return t.getBoundingClientRect().left - l.getBoundingClientRect().left; })",
    )
    assert gaps and all(0 < g < 40 for g in gaps), gaps
    page.fill("#note", "家属来电")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#gw-map")
    assert staff.errors == [], staff.errors
    page.wait_for_selector("path.gw-route", state="attached", timeout=10_000)
    wait_until(page, "window.gwReady === true", "the locate map never finished")
    route_d = page.get_attribute("path.gw-route", "d") or ""
    assert route_d.count("L") >= 2, route_d  # a line along roads, not a dot
    assert page.locator("path.gw-accuracy").count() == 1
    assert page.locator("path.gw-alert-pos").count() == 1
    # The grid the panel names, outlined on the map around the last position.
    assert page.locator("path.gw-fix-grid").count() == 1
    assert page.evaluate(
        "(() => { const by = {}; gwMap.eachLayer(l => { if (l.options && l.options.className)"
        " by[l.options.className] = l; });"
        " return by['gw-fix-grid'].getBounds().contains(by['gw-accuracy'].getLatLng()); })()"
    )
    assert page.locator("a.gw-call[href^='tel:']").count() == 1
    # The ground under it: the basemap arrives by its own request, after the page's layers.
    page.wait_for_selector(".leaflet-gwBasemap-pane path", timeout=20_000)
    assert page.locator(".leaflet-gwBasemap-pane path").count() > 10
    slider_time = page.inner_text("#gw-slider-time")
    assert slider_time and "UTC" not in slider_time
    staff.shot("locate")
    with care.connect() as conn:
        reasons = (
            conn.execute(
                text(
                    "SELECT reason FROM audit_log WHERE subject_type = 'position' "
                    "AND route LIKE '/app/elders/%/locate' ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["Welfare check", f"Checking an alert; why: 家属来电; for alert {alert_id}"]

    # Acknowledge, then close, each with a note: one note box a card, whichever button.
    page.goto(f"{care_live}/app/alerts")
    card = f"#alert-{alert_id}"
    assert page.locator(f"{card} input[name=note]").count() == 1
    page.fill(f"{card} input[name=note]", "网格员已出发")
    page.click(f"{card} button[formaction$='/ack']")
    page.wait_for_selector(f"{card}.gw-status-acknowledged")
    assert page.locator(f"{card} input[name=note]").count() == 1
    assert page.locator(f"{card} button[formaction$='/ack']").count() == 0  # done already
    page.fill(f"{card} input[name=note]", "已找到，送回家")
    page.click(f"{card} button[formaction$='/close']")
    # The page comes back with the closed card unfolded among the closed ones, marked.
    page.wait_for_selector(f"#gw-closed[open] #alert-{alert_id}.gw-status-closed.gw-done")
    with care.connect() as conn:
        status = conn.execute(
            text("SELECT status::text FROM alert WHERE id = :a"), {"a": alert_id}
        ).scalar_one()
        notes = (
            conn.execute(text("SELECT reason FROM audit_log WHERE reason LIKE '%note:%'"))
            .scalars()
            .all()
        )
    assert status == "closed"
    assert notes == [
        f"alert {alert_id} acknowledged; note: 网格员已出发",
        f"alert {alert_id} closed; note: 已找到，送回家",
    ]

    # She goes out again and comes back by herself: the exit alert's card says so, live,
    # and offers no buttons (the server closed it); the return is the one item left.
    wait_until(page, "window.gwLive === true", "the inbox never reconnected after closing")
    _report(server_url, "watch-console-1", *home, datetime.now(UTC) - timedelta(seconds=50))
    first_back = page.wait_for_selector("#gw-inbox li.gw-returned", timeout=10_000)
    assert first_back is not None
    first_back_id = first_back.get_attribute("id")
    _report(server_url, "watch-console-1", *away, datetime.now(UTC) - timedelta(seconds=30))
    again = f"#gw-inbox li.gw-left_zone.gw-status-open:not(#alert-{alert_id})"
    second = page.wait_for_selector(again, timeout=10_000)
    assert second is not None and second.query_selector("form") is not None
    second_id = second.get_attribute("id")
    _report(server_url, "watch-console-1", *home, datetime.now(UTC) - timedelta(seconds=10))
    page.wait_for_selector(f"#{second_id} .gw-back", timeout=10_000)
    assert page.locator(f"#{second_id} form").count() == 0
    assert "gw-status-closed" in (page.get_attribute(f"#{second_id}", "class") or "")
    # Out again had closed the first return; each card says why. One item is left open.
    assert "gw-status-closed" in (page.get_attribute(f"#{first_back_id}", "class") or "")
    assert "又走出了安全区" in page.inner_text(f"#{first_back_id} .gw-back")
    assert page.locator("#gw-inbox li.gw-status-open").count() == 1
    page.reload()
    assert "回到安全区" in page.inner_text(f"#{second_id} .gw-back")
    staff.shot("inbox-returned")
    staff.close()

    # The home grid's worker, on a phone, sees the alert routed to them.
    worker = Person(browser, care_live, STAFF["home_worker"].username, 390, 844)
    worker.page.goto(f"{care_live}/app/alerts")
    # Closed alerts are folded away below the open ones, the fold saying how many.
    assert worker.page.inner_text("#gw-closed summary") == "最近已关闭：3"
    assert worker.page.is_hidden(f"#alert-{alert_id}")
    worker.page.click("#gw-closed summary")
    item = worker.page.wait_for_selector(f"#alert-{alert_id}")
    assert item is not None and "王秀英" in item.inner_text()
    assert district.worker_of("S01-C01-G05")  # the grid has a worker, who is listed
    assert worker.page.locator(f"#alert-{alert_id} .gw-routed").count() == 1
    # labelled with the page's colon: 已通知：…, not 已通知: …
    assert worker.page.inner_text(f"#alert-{alert_id} .gw-routed").startswith("已通知：")
    assert worker.page.evaluate("document.documentElement.scrollWidth") <= 390
    # One note box, then 我来处理 and 结案 each on one line (they broke a character a line).
    open_card = worker.page.locator("#gw-inbox li.gw-status-open").first
    assert open_card.locator("input[name=note]").count() == 1
    assert open_card.locator(".gw-act button").evaluate_all(f"bs => bs.map({LINES})") == [1, 1]
    worker.shot("worker-390")

    # A colleague closes the one alert left open: the worker's card moves into the fold at
    # once, without a reload, so nobody goes to a call already handled.
    wait_until(worker.page, "window.gwLive === true", "the worker's inbox never went live")
    worker.page.evaluate("window.gwSameVisit = 1")
    left = worker.page.get_attribute("#gw-inbox li.gw-status-open", "id") or ""
    with transaction(care) as session:
        set_alert_status(
            session,
            int(left.removeprefix("alert-")),
            AreaScope.everywhere(),
            to=AlertStatus.closed,
            by=STAFF["care_staff"].username,
        )
    worker.page.wait_for_selector(f"#gw-closed-list #{left}.gw-status-closed", timeout=10_000)
    assert worker.page.locator("#gw-inbox li.gw-status-open").count() == 0
    assert worker.page.inner_text("#gw-closed summary") == "最近已关闭：4"
    assert worker.page.evaluate("window.gwSameVisit") == 1, "the page was reloaded"

    # Their elders on the phone: a card each, the name on a line of its own and each figure
    # beside its heading (seven columns had squeezed names into a column a word wide).
    worker.page.goto(f"{care_live}/app/elders")
    name = worker.page.locator("table.gw-elders td.gw-who a").first
    assert name.evaluate(LINES) == 1, "the name wraps"
    assert worker.page.locator("table.gw-elders thead").is_hidden()
    grid = worker.page.locator("table.gw-elders td[data-label]").last
    assert grid.get_attribute("data-label") == "住所网格"
    assert worker.page.evaluate("document.documentElement.scrollWidth") <= 390
    worker.shot("worker-elders-390")
    # The elder's page: a card per alert, its kind and "where then" each on one line (as five
    # columns they broke a character a line: 已 / 回 / 到 / 安 / 全 / 区).
    worker.page.click("table.gw-elders td.gw-who a:has-text('王秀英')")
    worker.page.wait_for_selector("table.gw-elder-alerts")
    rows = worker.page.locator("table.gw-elder-alerts tbody tr")
    assert rows.count() >= 4
    kinds = rows.locator("td.lead:nth-child(2)").evaluate_all(f"ts => ts.map({LINES})")
    links = rows.locator("td a").evaluate_all(f"ts => ts.map({LINES})")
    assert set(kinds) == {1} and set(links) == {1}, (kinds, links)
    assert worker.page.locator("table.gw-elder-alerts thead").is_hidden()
    assert worker.page.evaluate("document.documentElement.scrollWidth") <= 390
    worker.shot("worker-elder-390")
    worker.close()

    # Care staff on a phone draw a circle round the home: the kind, a radius in whole metres,
    # a tap on the map, then Save just below the map (it sat above, so one scrolled back up
    # past the map to save). The radius box stepped by 10 from 21: 300, its own default, and
    # 400 were "invalid" and the browser silently kept the form from being sent.
    phone = Person(browser, care_live, STAFF["care_staff"].username, 390, 844)
    phone.page.goto(f"{care_live}/app/elders/{elder_id}/zone")
    wait_until(phone.page, "window.gwReady === true", "the zone editor never finished")
    phone.page.check("input[name=kind][value=circle]")
    assert phone.page.input_value("#radius_m") == "300"
    assert phone.page.evaluate("document.getElementById('radius_m').checkValidity()")
    phone.page.fill("#radius_m", "400")
    home_box = phone.page.locator("path.gw-home").bounding_box()
    assert home_box is not None
    phone.page.mouse.click(
        home_box["x"] + home_box["width"] / 2, home_box["y"] + home_box["height"] / 2
    )
    assert phone.page.locator("path.gw-drawn").count() == 1
    map_box = phone.page.locator("#gw-map").bounding_box()
    save = phone.page.locator("#gw-zone-form button[type=submit]")
    save_box = save.bounding_box()
    assert map_box is not None and save_box is not None
    assert save_box["y"] >= map_box["y"] + map_box["height"], (save_box, map_box)
    phone.shot("zone-390")
    save.click()
    phone.page.wait_for_url(f"{care_live}/app/elders/{elder_id}?zone=saved")
    with care.connect() as conn:
        zone = conn.execute(
            text("SELECT kind, radius_m FROM safe_zone WHERE elder_id = :e"), {"e": elder_id}
        ).one()
    assert (zone.kind, zone.radius_m) == ("circle", 400)
    assert phone.errors == [] and phone.outside == [], (phone.errors, phone.outside)
    phone.close()
