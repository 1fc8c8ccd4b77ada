"""The registers driven in Debian's Chromium as their keepers use them: a grid worker on a
phone taps a household on their grid's map, changes it and moves it with a tap; a
coordinator adds a facility with a tap. What was tapped is what is stored, in its grid."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, ViewportSize
from sqlalchemy import Engine, text

from data.db import transaction
from data.district.workers import link_worker_account
from data.models import Role, ScopeLevel
from tests.browser.poll import wait_until
from tests.browser.test_coordinator import ARTIFACTS, Person, _shot, browser  # noqa: F401
from tests.factory import Account, add_accounts
from tests.gridded import Gridded, Live, live_server

pytestmark = pytest.mark.browser

WORKER, GRID = "r-worker", "131208-G01"


@pytest.fixture(scope="module")
def live(strips: Gridded) -> Iterator[Live]:
    """The strips with a grid worker linked to the worker of GRID."""
    add_accounts(strips.engine, [Account(WORKER, Role.grid_worker, ((ScopeLevel.grid, GRID),))])
    with transaction(strips.engine) as session:
        code = session.execute(
            text("SELECT w.code FROM grid g JOIN worker w ON w.id = g.worker_id WHERE g.code = :g"),
            {"g": GRID},
        ).scalar_one()
        link_worker_account(session, code, WORKER)
    with live_server(strips.url) as server:
        yield server


def _inside(engine: Engine, grid: str) -> tuple[float, float]:
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid "
                "WHERE code = :g AND valid_to IS NULL) s"
            ),
            {"g": grid},
        ).one()
    return float(x), float(y)


def _tap(page: Page, map_id: str, lon: float, lat: float) -> tuple[float, float]:
    """Tap the map where ``lon, lat`` is drawn (as a finger would); the place the form then
    holds, checked to lie under the finger (within 2 px: a tap lands on whole pixels)."""
    wait_until(page, "window.gwMap !== undefined")
    page.locator(f"#{map_id}").scroll_into_view_if_needed()
    to_pixel = (
        "([lat, lon]) => { const p = window.gwMap.latLngToContainerPoint([lat, lon]);"
        " return [p.x, p.y]; }"
    )
    x, y = page.evaluate(to_pixel, [lat, lon])
    box = page.locator(f"#{map_id}").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)
    held = float(page.input_value("#gw-lon")), float(page.input_value("#gw-lat"))
    hx, hy = page.evaluate(to_pixel, [held[1], held[0]])
    assert abs(hx - x) <= 2 and abs(hy - y) <= 2, ((x, y), (hx, hy))
    return held


def test_a_worker_changes_and_moves_a_household_on_a_phone(
    browser: object,  # noqa: F811
    live: Live,
    strips: Gridded,
) -> None:
    worker = Person(browser, live, WORKER, "zh_CN")  # type: ignore[arg-type]
    worker.page.set_viewport_size(ViewportSize(width=390, height=844))
    page = worker.open(f"/app/households?grid={GRID}")
    markers = page.locator("#gw-hh-map path.gw-pt")
    with strips.engine.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT count(*) FROM household h JOIN grid g ON g.id = h.grid_id WHERE g.code = :g"
            ),
            {"g": GRID},
        ).scalar_one()
    assert markers.count() == kept > 0  # every household of the grid, on its map
    markers.last.click()  # the last drawn lies on top of any it overlaps
    page.wait_for_selector("#gw-hh-form")
    code = page.url.rsplit("/", 1)[1]
    page.fill("#size", "1")
    lon, lat = _tap(page, "gw-hh-map", *_inside(strips.engine, GRID))
    page.click("#gw-hh-form button[type=submit]")
    page.wait_for_selector("p.saved")
    assert "已保存" in page.inner_text("p.saved")
    page.wait_for_load_state("networkidle")  # the ground drawn
    page.screenshot(path=str(ARTIFACTS / "registers-household-saved-390.png"))  # the top
    with strips.engine.connect() as conn:
        size, alone, grid, x, y = conn.execute(
            text(
                "SELECT h.size, h.lives_alone, g.code, ST_X(h.geom), ST_Y(h.geom) FROM household h "
                "JOIN grid g ON g.id = h.grid_id WHERE h.code = :c"
            ),
            {"c": code},
        ).one()
    assert (size, alone, grid) == (1, True, GRID)
    assert abs(x - lon) < 1e-7 and abs(y - lat) < 1e-7  # where the finger was
    worker.close()


def test_a_coordinator_adds_a_facility_with_a_tap(
    browser: object,  # noqa: F811
    live: Live,
    strips: Gridded,
) -> None:
    coordinator = Person(browser, live, "g-coordinator", "en")  # type: ignore[arg-type]
    page = coordinator.open("/app/facilities/new")
    page.select_option("#kind", "elderly_care")
    page.fill("#name", "Casa do Largo")
    _tap(page, "gw-fac-map", *_inside(strips.engine, "131208-G02"))
    page.click("#gw-fac-form button[type=submit]")
    page.wait_for_selector("p.saved")
    assert "The coverage map counts it from now on." in page.inner_text("p.saved")
    page.wait_for_load_state("networkidle")
    _shot(page, "registers-facility-saved")
    with strips.engine.connect() as conn:
        grid = conn.execute(
            text(
                "SELECT g.code FROM facility f JOIN grid g ON g.id = f.grid_id "
                "WHERE f.name = 'Casa do Largo'"
            )
        ).scalar_one()
    assert grid == "131208-G02"
    coordinator.close()


def test_a_worker_sees_their_whole_grid_around_its_one_facility(
    browser: object,  # noqa: F811
    live: Live,
    strips: Gridded,
) -> None:
    """With one facility in the grid, the map still frames the grid: a map fitted to the one
    point showed a street corner and no grid to say where it was."""
    with strips.engine.connect() as conn:
        grid, west, south, east, north = conn.execute(
            text(
                "SELECT code, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                "FROM grid g WHERE valid_to IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM facility f WHERE f.grid_id = g.id) ORDER BY code LIMIT 1"
            )
        ).one()
    add_accounts(strips.engine, [Account("r-lone", Role.grid_worker, ((ScopeLevel.grid, grid),))])
    lon, lat = _inside(strips.engine, grid)
    with transaction(strips.engine) as session:
        session.execute(
            text(
                "INSERT INTO facility (source_id, kind, name, geom, grid_id) "
                "SELECT 'r-one-pharmacy', 'pharmacy', 'Farmácia do Largo', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), id FROM grid "
                "WHERE code = :g AND valid_to IS NULL"
            ),
            {"lon": lon, "lat": lat, "g": grid},
        )
    worker = Person(browser, live, "r-lone", "zh_CN")  # type: ignore[arg-type]
    worker.page.set_viewport_size(ViewportSize(width=390, height=844))
    page = worker.open("/app/facilities")
    wait_until(page, "window.gwMap !== undefined")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1 and "Farmácia do Largo" in rows.inner_text(), page.inner_text("table")
    shown = page.evaluate(
        "([w, s, e, n]) => window.gwMap.getBounds().contains([[s, w], [n, e]])",
        [west, south, east, north],
    )
    _shot(page, "registers-facilities-phone")
    assert shown, f"the map does not show the whole of {grid}"
    worker.close()
