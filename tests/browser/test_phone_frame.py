"""On a phone (390 × 844) no page of the frame scrolls sideways.

A grid worker's navigation is among the longest (district maps, elders, alerts, cases, my
cases) and scrolls inside its own bar; a table wider than the phone (the home page's, with
its English headings) scrolls inside itself too. Checked in Debian's Chromium on the pages a
worker opens most, in both languages (the English words are the wider).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, ViewportSize
from sqlalchemy import text

from data.models import Role, ScopeLevel
from tests.browser.poll import wait_until
from tests.browser.test_coordinator import LANGS, Person, _shot, browser  # noqa: F401
from tests.factory import Account, add_accounts
from tests.gridded import Gridded, Live, live_server
from tests.incidents.conftest import inside

pytestmark = pytest.mark.browser

WORKER = "p-worker"
PHONE = ViewportSize(width=390, height=844)
PAGES = ("/", "/app/incidents", "/app/incidents/mine", "/app/incidents/new", "/app/elders")
#: An administrator's pages with tables and forms (the accounts, one account, the audit log,
#: the household and facility registers and their forms, the incident catalogue, the workers'
#: loads).
ADMIN_PAGES = (
    "/app/accounts",
    f"/app/accounts/{WORKER}",
    "/app/audit",
    "/app/password",
    "/app/households?grid=131208-G01",
    "/app/households/new?grid=131208-G01",
    "/app/facilities",
    "/app/facilities/new",
    "/app/categories",
    "/app/categories/street_light",
    "/app/departments",
    "/maps/workload",
)
#: What reaches past the window's right edge without a scrolling box around it to hold it
#: (the outermost such element): what to fix when the test fails.
STICKING_OUT = """() => {
  const out = e => e.getBoundingClientRect().right > window.innerWidth + 0.5;
  const held = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
      if (getComputedStyle(a).overflowX !== 'visible' && !out(a)) return true;
    return false;
  };
  const outer = e => e.parentElement === document.body || !out(e.parentElement);
  return [...document.querySelectorAll('body *')]
    .filter(e => out(e) && !held(e) && outer(e)).slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
              + ' ' + e.textContent.trim().slice(0, 40));
}"""

#: Table cells squeezed into a column a character or two wide (at least three lines, at most
#: three characters a line): 政府办 / 公楼, 已 / 回 / 到. A long name wrapping in a wide
#: column is fine; the cell's text and its lines are given for what is found.
SQUEEZED = """() => [...document.querySelectorAll('main td, main th')].flatMap(c => {
  const text = c.innerText.replace(/\\s/g, '');
  if (!c.offsetParent || text.length < 3) return [];
  const r = document.createRange(); r.selectNodeContents(c);
  const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top))).size;
  return lines >= 3 && text.length / lines <= 3 ? [text.slice(0, 20) + ' / ' + lines] : [];
}).slice(0, 5)"""

#: How many lines an element's text takes (its text's line boxes).
LINES = (
    "e => { const r = document.createRange(); r.selectNodeContents(e);"
    " return r.getClientRects().length; }"
)


@pytest.fixture(scope="module")
def server(strips: Gridded) -> Iterator[Live]:
    area = ((ScopeLevel.community, "131208"),)
    add_accounts(strips.engine, [Account(WORKER, Role.grid_worker, area)])
    with live_server(strips.url) as live:
        yield live


@contextmanager
def _on_a_phone(chromium: Browser, server: Live, username: str, lang: str) -> Iterator[Person]:
    """``username`` signed in on a 390 px phone; closed (and checked) after the block."""
    person = Person(chromium, server, username, lang)
    try:
        person.page.set_viewport_size(PHONE)
        yield person
    finally:
        person.close()


def _wider_than_the_phone(
    person: Person, paths: tuple[str, ...], *, bar: int
) -> dict[str, tuple[int, int, list[str]]]:
    """The pages of ``paths`` wider than the phone: scrollWidth, innerWidth, what sticks
    out; or with a table cell squeezed a character or two a line: 0, 0, those cells. Each
    page shows at least ``bar`` entries in its navigation, which scrolls itself."""
    wide = {}
    for path in paths:
        page = person.open(path)
        assert page.locator("nav.main a").count() >= bar, path
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        if scroll > inner:
            wide[path] = (scroll, inner, page.evaluate(STICKING_OUT))
        elif squeezed := page.evaluate(SQUEEZED):
            wide[path] = (0, 0, squeezed)
    return wide


@pytest.mark.parametrize("lang", LANGS)
def test_no_page_scrolls_sideways_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
    lang: str,
) -> None:
    with _on_a_phone(browser, server, WORKER, lang) as worker:
        wide = _wider_than_the_phone(worker, PAGES, bar=5)  # the worker's long bar
        assert wide == {}, f"too wide (scrollWidth, innerWidth, what) or squeezed: {wide}"


@pytest.mark.parametrize("lang", LANGS)
def test_no_administrators_page_scrolls_sideways_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
    lang: str,
) -> None:
    with _on_a_phone(browser, server, "g-admin", lang) as admin:
        wide = _wider_than_the_phone(admin, ADMIN_PAGES, bar=10)  # every workspace
        assert wide == {}, f"too wide (scrollWidth, innerWidth, what) or squeezed: {wide}"


@pytest.mark.parametrize("lang", LANGS)
def test_a_map_keeps_its_ground_visible_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
    lang: str,
) -> None:
    """The workload map's title box lists every worker and its legend five classes: on a
    phone they covered the whole map, and the open layer list covered the title box. There
    they start as their titles (the layers as their button), a tap opens one; on a desktop
    they start open."""
    with _on_a_phone(browser, server, "g-admin", lang) as admin:
        page = admin.open("/maps/workload")
        page.wait_for_selector(".gridwork-legend details")
        boxes = page.locator(".gridwork-legend details")
        assert boxes.count() == 2  # the title box and the legend
        assert page.evaluate(_OPEN) == [False, False]
        assert page.locator(".leaflet-control-layers-expanded").count() == 0
        covered = page.evaluate(_COVERED)
        assert covered < 0.1, f"{covered:.0%} of the map under its boxes"
        page.locator(".gridwork-legend summary").first.click()
        assert page.evaluate(_OPEN) == [True, False]
        assert page.locator(".gridwork-legend details[open] div").count() >= 2  # the workers
        assert page.locator(".leaflet-control-scale-line").count() == 1  # metres only
        page.locator(".leaflet-control-layers").hover()  # a tap, on a phone
        assert page.locator(".leaflet-control-layers-expanded").count() == 1

        admin.page.set_viewport_size(ViewportSize(width=1280, height=860))
        page = admin.open("/maps/workload")
        page.wait_for_selector(".gridwork-legend details")
        assert page.evaluate(_OPEN) == [True, True]
        assert page.locator(".leaflet-control-layers-expanded").count() == 1


_OPEN = "[...document.querySelectorAll('.gridwork-legend details')].map(d => d.open)"
#: The share of the map's area under its legends, title box and layer control.
_COVERED = """() => {
  const area = r => r.width * r.height;
  const map = document.querySelector('.folium-map').getBoundingClientRect();
  const boxes = [...document.querySelectorAll('.gridwork-legend, .leaflet-control-layers')]
    .map(e => e.getBoundingClientRect());
  return boxes.reduce((s, r) => s + area(r), 0) / area(map);
}"""


@pytest.mark.parametrize("lang", LANGS)
def test_the_case_list_is_a_card_per_case_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
    strips: Gridded,
    lang: str,
) -> None:
    """Seven columns squeezed a category into a column two characters wide ("老人需 / 要探 /
    访") and a status into one ("新 / 上 / 报"). On a phone each case is a card: "#id
    category" on one line, then each figure beside its heading."""
    lon, lat = inside(strips.engine, "131208-G02")
    with _on_a_phone(browser, server, WORKER, lang) as worker:
        page = worker.open("/app/incidents/new")
        # Reporting from the spot: "use my location", the photo and sending are thumb-sized
        # (the first two were 24 px tall).
        controls = page.locator("form.report").locator("button, select, input[type=file]")
        sizes = controls.evaluate_all("cs => cs.map(c => c.getBoundingClientRect().height)")
        assert len(sizes) >= 4 and min(sizes) >= 44, sizes
        body = {"category": "elder_visit", "lon": lon, "lat": lat, "description": "a visit"}
        made = page.request.post(f"{server.url}/cases", data=body)
        assert made.status == 201, made.text()
        case = made.json()["id"]
        page = worker.open("/app/incidents")
        card = page.locator(f"table.cases tr:has(a[href='/app/incidents/{case}'])")
        assert page.locator("table.cases thead").is_hidden()
        category = card.locator("td.lead a").last
        assert category.evaluate(LINES) == 1, "the category wraps"
        assert (
            card.locator("td.lead a").first.evaluate("a => getComputedStyle(a, '::before').content")
            == '"#"'
        )
        status = card.locator("td[data-label]").first
        assert status.get_attribute("data-label") == ("状态" if lang == "zh_CN" else "Status")
        assert status.evaluate(LINES) == 1
        assert card.locator("td.code").inner_text() == "131208-G02"
        assert card.locator("td.code").evaluate(LINES) == 1, "the grid's code breaks"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, f"cases-phone-{lang}")
        # its page: every move is a thumb's size (the accept button was 32 px tall)
        page = worker.open(f"/app/incidents/{case}")
        heights = page.locator("section.actions button").evaluate_all(
            "bs => bs.map(b => b.getBoundingClientRect().height)"
        )
        assert heights and min(heights) >= 44, heights
        # and so is sending a photo from the spot (its button was 24 px tall)
        photo = page.locator("section.photos").locator("button, input[type=file]")
        sizes = photo.evaluate_all("bs => bs.map(b => b.getBoundingClientRect().height)")
        assert len(sizes) == 2 and min(sizes) >= 44, sizes
        chooser = page.locator("section.photos input[type=file]").evaluate(
            "i => getComputedStyle(i, '::file-selector-button').minHeight"
        )
        assert chooser == "44px", chooser


def test_the_audit_log_is_a_card_per_entry_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
) -> None:
    """Five columns at 390 px stacked a reader's name and the household codes they read a few
    characters a line; each entry is a card, its when and who first, every other cell's
    value flowing beside its heading (the links and the "and 170 more" note in one text)."""
    with _on_a_phone(browser, server, "g-admin", "en") as admin:
        admin.open("/app/households?grid=131208-G01")  # a read of residents: an entry at least
        page = admin.open("/app/audit")
        assert page.locator("table.audit thead").is_hidden()
        entry = page.locator("table.audit tbody tr").first
        assert entry.locator("td.lead").count() == 2
        about = entry.locator("td[data-label]").first
        assert about.get_attribute("data-label") == "About"
        assert about.evaluate("td => getComputedStyle(td).display") not in ("flex", "grid")
        # each household's code on one line (they broke at their hyphens: E- / 209635018-1)
        codes = about.locator(".code").evaluate_all(f"cs => cs.map({LINES})")
        assert len(codes) >= 5 and set(codes) == {1}, codes
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, "audit-phone-en")
        # the accounts likewise: the name and role, then area, worker record and state
        page = admin.open("/app/accounts")
        assert page.locator("table.accounts thead").is_hidden()
        card = page.locator("table.accounts tbody tr").first
        labels = card.locator("td[data-label]").evaluate_all("tds => tds.map(t => t.dataset.label)")
        assert labels == ["Area", "Worker record", "State"]


#: Each labelled cell of a card at least as tall as its heading (a heading on two lines ran
#: into the next cell's); the heights that are not.
LABEL_OVERRUNS = """rows => rows.flatMap(td => {
  const label = parseFloat(getComputedStyle(td, '::before').height);
  const cell = td.getBoundingClientRect().height;
  return cell + 0.5 >= label ? [] : [[td.dataset.label, cell, label]];
})"""


def test_the_coverage_glance_is_a_card_per_kind_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
    strips: Gridded,
) -> None:
    """Four columns at 390 px broke "88 % (793 / 900)" over four lines; as cards, the long
    Chinese heading 可步行到达的户数比例 wraps in its own column and its cell grows with it."""
    with _on_a_phone(browser, server, "g-coordinator", "zh_CN") as coordinator:
        page = coordinator.open("/maps/coverage")
        assert page.locator("#coverage-glance thead").is_hidden()
        cells = page.locator("#coverage-glance td[data-label]")
        assert cells.count() >= 3
        assert cells.evaluate_all(LABEL_OVERRUNS) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # the case figures likewise: a card per area, seven columns no longer to scroll
        lon, lat = inside(strips.engine, "131208-G03")
        body = {"category": "street_light", "lon": lon, "lat": lat, "description": "dark"}
        made = page.request.post(f"{server.url}/cases", data=body)
        assert made.status == 201, made.text()
        page = coordinator.open("/app/incidents/figures")
        assert page.locator("table.figures thead").is_hidden()
        cells = page.locator("table.figures td[data-label]")
        assert cells.count() >= 6
        assert cells.evaluate_all(LABEL_OVERRUNS) == []


def test_the_plans_are_a_card_per_plan_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
) -> None:
    """Eight columns at 390 px broke a plan's state a character a line (已 / 发 / 布) and pushed
    the drawing time off the screen; each plan is a card: number and community, then each
    figure beside its heading."""
    with _on_a_phone(browser, server, "g-planner", "zh_CN") as planner:
        page = planner.open("/app/plans")
        made = page.request.post(f"{server.url}/plans", data={"community": "131208"})
        assert made.status == 201, made.text()
        page = planner.open("/app/plans")
        assert page.locator("#plans thead").is_hidden()
        card = page.locator("#plans tbody tr").first
        assert card.locator("td.lead").count() == 2
        # the community's code after its name stays plain grey, not bold like the name
        weight = card.locator("td.lead .muted").evaluate("e => getComputedStyle(e).fontWeight")
        assert weight == "400", weight
        cells = card.locator("td[data-label]")
        assert cells.count() == 6
        assert cells.first.get_attribute("data-label") == "状态"
        assert cells.first.locator("a").evaluate(LINES) == 1, "the state wraps"
        assert page.locator("#plans td[data-label]").evaluate_all(LABEL_OVERRUNS) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # Two plans compared: the row headings keep a readable width beside the long values
        # (户数在 / 范围内 / 的网格, three characters a line).
        other = page.request.post(f"{server.url}/plans", data={"community": "131208", "seed": 2})
        assert other.status == 201, other.text()
        a, b = made.json()["id"], other.json()["id"]
        page = planner.open(f"/app/plans/compare?a={a}&b={b}")
        assert page.evaluate(SQUEEZED) == []
        # On the three small maps no grid's label lies over another's (they piled up in the
        # phone's 358 px: 131213-G02 over G04 over G03); a hidden one shows on zooming in.
        wait_until(page, "document.querySelectorAll('#map-b .grid-label').length > 1")
        page.wait_for_timeout(400)  # the fit, then the labels sorted out
        assert page.evaluate(LABELS_OVERLAPPING) == []
        _shot(page, "plans-compare-phone")


#: Pairs of visible grid labels on one map whose boxes overlap (their text, by map).
LABELS_OVERLAPPING = r"""() => [...document.querySelectorAll('.leaflet-container')].flatMap(m => {
  const shown = [...m.querySelectorAll('.grid-label')]
    .filter(l => getComputedStyle(l).visibility !== 'hidden' && l.offsetParent);
  const boxes = shown.map(l => [l.innerText.replace(/\s+/g, ' '), l.getBoundingClientRect()]);
  const out = [];
  boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, s]) => {
    if (r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom)
      out.push(m.id + ': ' + a + ' / ' + b);
  }));
  return out;
})"""


@pytest.mark.parametrize("lang", LANGS)
def test_the_household_register_reads_each_code_on_one_line_on_a_phone(
    browser: Browser,  # noqa: F811
    server: Live,
    strips: Gridded,
    lang: str,
) -> None:
    """A household's code broke at its hyphens ("E- / 209635015- / 1"), read as two codes and
    made a grid of 180 households 12,000 px long. Each code is on one line, and the whole row
    fits the phone in both languages: the Source column ("estimated from buildings" pushed it
    off the screen in English) folds into a mark after the code, which the key explains."""
    with strips.engine.connect() as conn:
        estimated = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE h.estimated) FROM household h "
                "JOIN grid g ON g.id = h.grid_id WHERE g.code = '131208-G01'"
            )
        ).scalar_one()
    assert estimated > 0, "the grid should hold estimated households"
    with _on_a_phone(browser, server, "g-admin", lang) as admin:
        page = admin.open("/app/households?grid=131208-G01")
        codes = page.locator("table.households tbody td:first-child a")
        assert codes.count() > 100
        lines = codes.evaluate_all(f"codes => codes.map({LINES})")
        assert set(lines) == {1}, "a code wraps"
        right = page.locator("table.households").evaluate(
            "t => Math.max(...[...t.rows[1].cells].filter(c => c.offsetParent)"
            ".map(c => c.getBoundingClientRect().right))"
        )
        assert right <= PHONE["width"], "the last column is off the screen"
        marks = page.locator("table.households tbody td:first-child .gw-est")
        assert marks.count() == estimated
        assert marks.first.is_visible() and page.locator(".gw-est-key").is_visible()
        _shot(page, f"households-phone-{lang}")


def test_a_photo_over_the_limit_is_made_smaller_on_the_phone_before_it_is_sent(
    browser: Browser,  # noqa: F811
    server: Live,
    strips: Gridded,
    tmp_path: Path,
) -> None:
    """A phone's photo over the case's 8 MB was refused with the whole report (over 10 MB,
    as problem JSON). The report form shrinks it in the browser, says so, and the case keeps
    it; a photo within the limit is sent as it is (tests/incidents/test_photos.py)."""
    big = tmp_path / "IMG_0001.png"
    noise = np.random.default_rng(7).integers(0, 256, (1800, 2200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big, compress_level=1)
    assert big.stat().st_size > 8 * 1024 * 1024
    lon, lat = inside(strips.engine, "131208-G03")
    with _on_a_phone(browser, server, WORKER, "zh_CN") as worker:
        worker.context.grant_permissions(["geolocation"], origin=server.url)
        worker.context.set_geolocation({"longitude": lon, "latitude": lat})
        page = worker.open("/app/incidents/new")
        page.select_option("#category", "street_light")
        page.fill("#description", "路灯不亮，附照片")
        page.click("#locate")
        wait_until(page, "document.getElementById('lon').value !== ''", "no place from the phone")
        page.set_input_files("#photo", str(big))
        wait_until(page, "/→/.test(document.querySelector('.photo-fit').textContent)", "not shrunk")
        said = page.inner_text(".photo-fit")
        assert said.startswith("照片已缩小以便发送：") and said.endswith(" MB。"), said
        size, kind = page.evaluate(
            "(f => [f.size, f.type])(document.getElementById('photo').files[0])"
        )
        assert size <= 8 * 1024 * 1024 and kind == "image/jpeg", (size, kind)
        _shot(page, "report-photo-shrunk")
        # A 48-megapixel mode's photo may be under the bytes and over the server's 40 million
        # pixels (refused beside the box): shrunk too. Plain white: 48 Mpx in a few KB.
        many = tmp_path / "IMG_0002.png"
        Image.new("L", (8000, 6000), 255).save(many)
        assert many.stat().st_size < 1024 * 1024
        page.set_input_files("#photo", str(many))
        wait_until(page, "/→/.test(document.querySelector('.photo-fit').textContent)", "not shrunk")
        shrunk = page.evaluate(
            "createImageBitmap(document.getElementById('photo').files[0])"
            ".then(b => [b.width, b.height])"
        )
        assert shrunk == [2560, 1920], shrunk
        page.set_input_files("#photo", str(big))
        before = f"{big.stat().st_size / 1048576:.1f} MB →"
        wait_until(page, f"document.querySelector('.photo-fit').textContent.includes('{before}')")
        page.click("form.report button[type=submit]")
        page.wait_for_url(re.compile(r".*/app/incidents/\d+$"))
        case = int(page.url.rsplit("/", 1)[1])
    with strips.engine.connect() as conn:
        width, height, content_type = conn.execute(
            text("SELECT width, height, content_type FROM case_photo WHERE case_id = :c"),
            {"c": case},
        ).one()
    # drawn again whole (not cropped), at most 2560 px on its long side
    assert content_type == "image/jpeg" and width in (2200, 1920, 1280), width
    assert abs(height - round(width * 1800 / 2200)) <= 1, (width, height)
