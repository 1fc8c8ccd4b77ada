"""Every map in a real headless Chromium (Debian's), signed in like a person, cut off from
the internet: no JavaScript error, every grid drawn, a tooltip naming a grid, a screenshot
in ``artifacts/``, and not one request that leaves 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from sqlalchemy import text

from maps.grids import band_colour
from maps.style import OTHER_COLOUR, categorical_colours
from tests.browser.poll import wait_until
from tests.gridded import PASSWORD, Gridded, Live

pytestmark = pytest.mark.browser


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL for MapLibre without a GPU: ANGLE on SwiftShader, the software renderer.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MAPS = {
    "grids": "/maps/grids",
    "workload": "/maps/workload",
    "incidents": "/maps/incidents?days=30",
    "coverage": "/maps/coverage?kind=pharmacy&minutes=5",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/setup.sh"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Session:
    """A signed-in page that refuses (and records) every request not to the live server."""

    def __init__(self, browser: Browser, live: Live) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        r = self.context.request.post(
            f"{live.url}/login",
            form={"username": "g-admin", "password": PASSWORD},
            max_redirects=0,
        )
        assert r.status == 303, r.text()
        self.live = live

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(browser: Browser, live: Live) -> Iterator[Session]:
    s = Session(browser, live)
    yield s
    s.close()
    assert s.outside == [], f"requests left the machine: {s.outside}"
    assert s.errors == [], f"JavaScript errors: {s.errors}"


def _hover_a_grid(page: Page) -> str:
    """Hover grid polygons until one shows its tooltip; return the tooltip's text."""
    paths = page.locator("path.gw-grid")
    for i in range(min(paths.count(), 10)):
        try:
            paths.nth(i).hover(timeout=2000)
        except Exception:
            continue
        tooltip = page.locator(".leaflet-tooltip")
        if tooltip.count():
            return tooltip.first.inner_text()
    raise AssertionError("no grid showed a tooltip")


@pytest.mark.parametrize("name", list(MAPS))
def test_map_in_chromium(session: Session, strips: Gridded, name: str) -> None:
    page = session.page
    page.goto(f"{session.live.url}{MAPS[name]}", wait_until="load")
    page.wait_for_selector("path.gw-grid")
    assert page.locator("path.gw-grid").count() == strips.grids
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator(".gridwork-legend").count() >= 1
    assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
    tip = _hover_a_grid(page)
    assert re.search(r"1312\d\d-G\d\d", tip), tip
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(5, 5)
    page.screenshot(path=str(ARTIFACTS / f"map-{name}.png"))


_LEGENDS = "document.querySelectorAll('.gridwork-legend summary').length"


def test_the_closed_incidents_legend_shows_only_with_its_layer(
    session: Session, strips: Gridded
) -> None:
    """The closed layer starts hidden; its legend stood on the map all the same."""
    page = session.page
    page.goto(f"{session.live.url}/maps/incidents?days=30", wait_until="load")
    page.wait_for_selector("path.gw-grid")
    legends = page.locator(".gridwork-legend summary")
    titles = legends.all_inner_texts()
    assert any(t.startswith("open") for t in titles), titles
    assert not any(t.startswith("closed") for t in titles), titles
    page.locator(".leaflet-control-layers").hover()
    closed = page.get_by_label("closed incidents")
    closed.check()
    wait_until(page, f"{_LEGENDS} === {len(titles) + 1}")
    assert any(t.startswith("closed") for t in legends.all_inner_texts())
    closed.uncheck()
    wait_until(page, f"{_LEGENDS} === {len(titles)}")
    assert not any(t.startswith("closed") for t in legends.all_inner_texts())


def _circle_fills(page: Page) -> list[str | None]:
    """The fill of every CircleMarker (an SVG path drawn with arcs)."""
    return page.eval_on_selector_all(
        "path.leaflet-interactive",
        "els => els.filter(e => /a/.test(e.getAttribute('d') || ''))"
        ".map(e => e.getAttribute('fill'))",
    )


@pytest.mark.parametrize("path", ["/maps/coverage?kind=pharmacy&minutes=5", "/maps/hierarchy"])
def test_facilities_are_filled_circles_in_their_kind_colour(
    session: Session, strips: Gridded, path: str
) -> None:
    page = session.page
    page.goto(f"{session.live.url}{path}", wait_until="load")
    page.wait_for_selector("path.leaflet-interactive")
    fills = _circle_fills(page)
    with strips.engine.connect() as conn:
        kind = "pharmacy" if "pharmacy" in path else None
        kinds: list[str | None] = list(
            conn.execute(
                text("SELECT kind FROM facility WHERE CAST(:k AS text) IS NULL OR kind = :k"),
                {"k": kind},
            ).scalars()
        )
    # The most frequent kinds each get their own palette colour, the rest share "other":
    # as many circles of each colour as there are facilities of that kind.
    colours = categorical_colours(kinds)
    expected = Counter(OTHER_COLOUR if k is None else colours[k] for k in kinds)
    assert Counter(fills) == expected, fills
    if kind is None:
        assert len(expected) >= 5  # the whole map: many kinds, many colours


def test_grids_are_filled_in_their_band_colour(session: Session, strips: Gridded) -> None:
    """The styles are looked up in the browser by each grid's class: every grid's fill is the
    colour of its households against the band, as many of each as the database says."""
    page = session.page
    page.goto(f"{session.live.url}/maps/grids", wait_until="load")
    page.wait_for_selector("path.gw-grid")
    fills = page.eval_on_selector_all("path.gw-grid", "els => els.map(e => e.getAttribute('fill'))")
    with strips.engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT count(h.id) FROM grid g LEFT JOIN household h ON h.grid_id = g.id "
                "WHERE g.valid_to IS NULL GROUP BY g.id"
            )
        ).scalars()
        expected = Counter(band_colour(int(n), low=150, high=180) for n in counts)
    assert Counter(fills) == expected
    assert len(expected) >= 2  # not one colour for every grid


def test_vector_tile_viewer(session: Session, strips: Gridded) -> None:
    page = session.page
    page.goto(f"{session.live.url}/viewer", wait_until="load")
    wait_until(page, "window.gwReady === true")
    assert page.evaluate("window.gwErrors || []") == []
    drawn = page.evaluate(
        "new Set(gwMap.queryRenderedFeatures({layers: ['grids-fill']})"
        ".map(f => f.properties.code)).size"
    )
    assert drawn == strips.grids
    facilities = page.evaluate("gwMap.queryRenderedFeatures({layers: ['facilities']}).length")
    assert facilities > 0
    with strips.engine.connect() as conn:
        code, lon, lat = conn.execute(
            text(
                "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p "
                "FROM grid ORDER BY code LIMIT 1) g"
            )
        ).one()
    x, y = page.evaluate(
        # The map sits in the page's frame, below the header: add its offset.
        f"(() => {{ const p = gwMap.project([{lon}, {lat}]);"
        " const r = gwMap.getContainer().getBoundingClientRect();"
        " return [p.x + r.left, p.y + r.top]; })()"
    )
    page.mouse.move(x, y)
    page.wait_for_selector(".gw-popup")
    assert code in page.locator(".gw-popup").inner_text()
    assert page.locator("#gw-zoom-hint").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer.png"))

    # Close in, the ground as on every other map: buildings, and the names of roads and grids
    # drawn in the device's fonts (the style has no glyph server to ask).
    page.evaluate(f"window.gwReady = false; gwMap.jumpTo({{center: [{lon}, {lat}], zoom: 17}});"
                  " gwMap.once('idle', () => { window.gwReady = true; })")  # fmt: skip
    wait_until(page, "window.gwReady === true")
    assert page.evaluate("window.gwErrors || []") == []
    for layer in ("buildings", "road-names", "grid-codes"):
        placed = page.evaluate(f"gwMap.queryRenderedFeatures({{layers: ['{layer}']}}).length")
        assert placed > 0, layer
    names = page.evaluate(
        "gwMap.queryRenderedFeatures({layers: ['road-names']}).map(f => f.properties.name)"
    )
    assert all(names), names
    page.screenshot(path=str(ARTIFACTS / "viewer-close.png"))

    # Zoomed far out: a district this small fits in one tile at any zoom (its grids are far
    # under tipg's cut, maps.viewer.feature_minzoom), so its grids stay, with no hint to zoom
    # in; the grid's words close with the zoom; the streets' outlines are drawn.
    page.evaluate("window.gwReady = false; gwMap.jumpTo({zoom: 8});"
                  " gwMap.once('idle', () => { window.gwReady = true; })")  # fmt: skip
    wait_until(page, "window.gwReady === true")
    assert page.evaluate("gwMap.getStyle().sources.grids.minzoom") == 0
    assert page.locator("#gw-zoom-hint").is_hidden()
    assert page.locator(".gw-popup").count() == 0
    assert page.evaluate("gwMap.queryRenderedFeatures({layers: ['grids-fill']}).length") > 0
    assert page.evaluate("gwMap.queryRenderedFeatures({layers: ['streets-line']}).length") > 0
    page.screenshot(path=str(ARTIFACTS / "viewer-zoomed-out.png"))


def test_the_viewer_says_to_zoom_in_below_the_grids_zoom(session: Session) -> None:
    """In a city too dense for low-zoom grid tiles (the full megacity: from tile zoom 10) the
    viewer asks for none below that zoom and says to zoom in. The live district is far too
    small for that, so its page is served with the grid tiles' min zoom set to 13, as
    :func:`maps.viewer.feature_minzoom` would set it for a denser city."""
    page = session.page
    grids_source = re.compile(
        r'(ogc\.grids/tiles/WebMercatorQuad/\{z\}/\{x\}/\{y\}"\], *"minzoom": *)0'
    )

    def dense(route: Route) -> None:
        original = route.fetch()
        body, found = grids_source.subn(r"\g<1>13", original.text())
        assert found == 1, "the viewer's grid source was not found in its page"
        route.fulfill(response=original, body=body)

    page.route(re.compile(r".*/viewer$"), dense)
    page.goto(f"{session.live.url}/viewer", wait_until="load")
    wait_until(page, "window.gwReady === true")
    assert page.evaluate("gwMap.getStyle().sources.grids.minzoom") == 13
    for zoom, hinted in ((11, True), (15, False)):
        page.evaluate(f"window.gwReady = false; gwMap.jumpTo({{zoom: {zoom}}});"
                      " gwMap.once('idle', () => { window.gwReady = true; })")  # fmt: skip
        wait_until(page, "window.gwReady === true")
        hint = page.locator("#gw-zoom-hint")
        assert hint.is_visible() is hinted, zoom
        drawn = page.evaluate("gwMap.queryRenderedFeatures({layers: ['grids-fill']}).length")
        assert (drawn == 0) is hinted, (zoom, drawn)
        if hinted:
            assert hint.inner_text() == "放大地图以查看网格"  # the deployment's zh-CN
            streets = "gwMap.queryRenderedFeatures({layers: ['streets-line']}).length"
            assert page.evaluate(streets) > 0  # the outlines stay
            page.screenshot(path=str(ARTIFACTS / "viewer-zoom-hint.png"))


def test_maps_show_the_ground_roads_names_and_buildings(session: Session, strips: Gridded) -> None:
    """A grid on a map is somewhere people know: roads with their names under it."""
    page = session.page
    page.goto(f"{session.live.url}/maps/grids", wait_until="load")
    page.wait_for_selector("path.gw-grid")
    name = page.evaluate("Object.values(window).find(v => v instanceof L.Map) ? 1 : 0")
    assert name == 1
    # Zoom into the centre of the district, where Porto's streets are dense.
    page.evaluate(
        "(() => { const m = Object.values(window).find(v => v instanceof L.Map);"
        " m.setView([41.1420, -8.6135], 17); })()"
    )
    deadline = time.monotonic() + 15
    while page.locator(".gw-road-label").count() == 0:
        assert time.monotonic() < deadline, "no road names drawn"
        page.wait_for_timeout(200)
    labels = page.locator(".gw-road-label").all_inner_texts()
    assert any(label.startswith("Rua") for label in labels), labels
    drawn = page.evaluate("document.querySelectorAll('.leaflet-gwBasemap-pane path').length")
    assert drawn > 100  # buildings and roads
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map-grids-basemap.png"))
