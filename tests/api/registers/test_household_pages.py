"""The household register in the browser, as a grid worker keeps it from a phone: their
grid's households on a map and in a list, one changed, moved, registered and removed, every
look and change audited, and nobody else's households within reach."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.routers import household_pages
from data.importing.loading import derive_households
from tests.api.registers.conftest import CARE, COORDINATOR, WORKED_GRID, WORKER
from tests.factory import app_settings, sign_in

PAGE = {"Accept": "text/html", "Accept-Language": "en"}


@pytest.fixture(scope="module")
def client(households_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(households_app) as c:
        yield c


@pytest.fixture(scope="module")
def worker(client: TestClient) -> dict[str, str]:
    return {**sign_in(client, WORKER.username), **PAGE}


def inside(engine: Engine, grid: str) -> tuple[float, float]:
    """A point well inside the current grid ``grid``."""
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid "
                "WHERE code = :c AND valid_to IS NULL) s"
            ),
            {"c": grid},
        ).one()
    return float(x), float(y)


def stored(engine: Engine, code: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT h.size, h.lives_alone, h.age_band::text AS age_band, g.code AS grid, "
                    "ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, h.estimated FROM household h "
                    "LEFT JOIN grid g ON g.id = h.grid_id WHERE h.code = :c"
                ),
                {"c": code},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def audited(engine: Engine, code: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT reason FROM audit_log WHERE subject_type = 'household' "
                    "AND subject_ids @> ARRAY[CAST(:c AS varchar)] ORDER BY id"
                ),
                {"c": code},
            ).scalars()
        )


def field_error(page: Any, field: str) -> str:
    found = re.search(rf'id="{re.escape(field)}-error" role="alert">([^<]+)</p>', page.text)
    assert found, (field, page.status_code, page.text[:3000])
    return html.unescape(found.group(1))


def first_household(engine: Engine, grid: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT h.code FROM household h JOIN grid g ON g.id = h.grid_id "
                    'WHERE g.code = :g ORDER BY h.code COLLATE "C" LIMIT 1'
                ),
                {"g": grid},
            ).scalar_one()
        )


def test_a_worker_sees_their_grids_households_on_a_map_and_in_a_list(
    client: TestClient, worker: dict[str, str], households_engine: Engine
) -> None:
    page = client.get("/app/households", headers=worker)
    assert page.status_code == 200
    # Their one grid is opened at once; the list is its households, each audited.
    assert f'<option value="{WORKED_GRID}" selected>' in page.text
    listed = re.findall(r'<a href="/app/households/([^"]+)">', page.text)
    with households_engine.connect() as conn:
        expected = (
            conn.execute(
                text(
                    "SELECT h.code FROM household h JOIN grid g ON g.id = h.grid_id "
                    'WHERE g.code = :g ORDER BY h.code COLLATE "C"'
                ),
                {"g": WORKED_GRID},
            )
            .scalars()
            .all()
        )
    assert listed == list(expected) and len(listed) > 10
    data = re.search(r'<script id="gw-data" type="application/json">(.*?)</script>', page.text)
    assert data and '"Polygon"' in data.group(1)  # the grid's outline for the map
    assert audited(households_engine, listed[0]) == ["household register (page)"]
    # Another grid of the parish is not theirs to keep.
    other = client.get("/app/households?grid=131208-G01", headers=worker)
    assert other.status_code == 404


def test_a_worker_changes_moves_registers_and_removes_a_household(
    client: TestClient, worker: dict[str, str], households_engine: Engine
) -> None:
    code = first_household(households_engine, WORKED_GRID)
    form = client.get(f"/app/households/{code}", headers=worker)
    assert form.status_code == 200 and 'id="gw-hh-form"' in form.text
    before = stored(households_engine, code)
    assert before is not None and before["estimated"]  # the sample's, from its buildings

    changed = client.post(
        f"/app/households/{code}",
        data={"size": "2", "age_band": "80+", "lon": "0", "lat": "0"},
        headers=worker,
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert re.fullmatch(
        rf"/app/households\?grid={WORKED_GRID}&done={code}~[0-9a-f]{{20}}",
        changed.headers["location"],
    )
    after = stored(households_engine, code)
    assert after is not None
    assert (after["size"], after["lives_alone"], after["age_band"]) == (2, False, "80+")
    assert (after["lon"], after["lat"]) == (before["lon"], before["lat"])  # not moved: no tap
    # Corrected on the ground, it is a registered household: a new estimate from the
    # buildings (which replaces the estimated ones) keeps it.
    assert after["estimated"] is False

    lon_out, lat_out = inside(households_engine, "131208-G01")
    away = client.post(
        f"/app/households/{code}",
        data={"size": "2", "lon": str(lon_out), "lat": str(lat_out), "moved": "1"},
        headers=worker,
    )
    assert away.status_code == 422
    assert field_error(away, "lon/lat") == "That place lies outside your grids."
    assert stored(households_engine, code) == after  # nothing was written

    lon_in, lat_in = inside(households_engine, WORKED_GRID)
    moved = client.post(
        f"/app/households/{code}",
        data={"size": "1", "lon": str(lon_in), "lat": str(lat_in), "moved": "1"},
        headers=worker,
        follow_redirects=False,
    )
    assert moved.status_code == 303
    now = stored(households_engine, code)
    assert now is not None and now["grid"] == WORKED_GRID
    assert now["lives_alone"]  # a household of one lives alone
    assert abs(now["lon"] - lon_in) < 1e-6 and abs(now["lat"] - lat_in) < 1e-6

    taken = client.post(
        "/app/households/new",
        data={
            "grid": WORKED_GRID,
            "code": code,
            "size": "3",
            "lon": str(lon_in),
            "lat": str(lat_in),
        },
        headers=worker,
    )
    assert taken.status_code == 409 and code in field_error(taken, "code")
    # "new" would be stored and listed, and its link would open the form for a new one
    reserved = client.post(
        "/app/households/new",
        data={"grid": WORKED_GRID, "code": "new", "size": "3",
              "lon": str(lon_in), "lat": str(lat_in)},
        headers=worker,
    )  # fmt: skip
    assert reserved.status_code == 422
    assert field_error(reserved, "code").startswith("'new' is the register's page for adding")
    assert stored(households_engine, "new") is None
    nowhere = client.post(
        "/app/households/new",
        data={"grid": WORKED_GRID, "code": "NEW-DOOR-1", "size": "3"},
        headers=worker,
    )
    assert field_error(nowhere, "lon/lat") == "Tap the map where the household lives."
    assert 'value="NEW-DOOR-1"' in nowhere.text  # what was typed is kept
    made = client.post(
        "/app/households/new",
        data={"grid": WORKED_GRID, "code": "NEW-DOOR-1", "size": "3", "age_band": "60-79",
              "lon": str(lon_in), "lat": str(lat_in)},
        headers=worker,
        follow_redirects=False,
    )  # fmt: skip
    assert re.fullmatch(
        rf"/app/households\?grid={WORKED_GRID}&done=NEW-DOOR-1~[0-9a-f]{{20}}",
        made.headers["location"],
    )
    new = stored(households_engine, "NEW-DOOR-1")
    assert new is not None and (new["grid"], new["size"], new["estimated"]) == (
        WORKED_GRID,
        3,
        False,
    )

    wrong = client.post(
        "/app/households/NEW-DOOR-1/remove", data={"confirm": "NEW"}, headers=worker
    )
    assert field_error(wrong, "confirm") == "Type the household's code to confirm."
    gone = client.post(
        "/app/households/NEW-DOOR-1/remove",
        data={"confirm": "NEW-DOOR-1"},
        headers=worker,
        follow_redirects=False,
    )
    assert re.fullmatch(
        rf"/app/households\?grid={WORKED_GRID}&removed=NEW-DOOR-1~[0-9a-f]{{20}}",
        gone.headers["location"],
    )
    assert stored(households_engine, "NEW-DOOR-1") is None
    assert audited(households_engine, "NEW-DOOR-1") == ["registered (page)", "removed (page)"]
    assert audited(households_engine, code)[-3:] == [
        "household opened (page)",
        "changed (page)",
        "changed (page); moved to where it was tapped",
    ]
    told = client.get(gone.headers["location"], headers=worker)
    assert "Removed: household NEW-DOOR-1." in html.unescape(told.text)
    # The page says only what it signed: a link made by hand, or altered, says nothing.
    altered = gone.headers["location"].split("removed=")[1].replace("NEW", "OLD")
    for forged in ("NEW-DOOR-1", "X. Call 555-0100 to confirm your account", altered):
        page = client.get(
            f"/app/households?grid={WORKED_GRID}&removed={quote(forged)}", headers=worker
        )
        assert page.status_code == 200 and "Removed:" not in page.text, forged


def test_care_staff_read_the_register_and_others_do_not_reach_it(
    client: TestClient, households_engine: Engine
) -> None:
    care = {**sign_in(client, CARE.username), **PAGE}
    page = client.get(f"/app/households?grid={WORKED_GRID}", headers=care)
    assert page.status_code == 200
    assert "/app/households/new" not in page.text  # reading only
    assert not re.findall(r'<a href="/app/households/[^"?]+">', page.text)
    code = first_household(households_engine, WORKED_GRID)
    assert client.get(f"/app/households/{code}", headers=care).status_code == 403
    coordinator = {**sign_in(client, COORDINATOR.username), **PAGE}
    assert client.get("/app/households", headers=coordinator).status_code == 403


def test_care_staff_find_a_household_by_its_code_and_only_in_their_area(
    client: TestClient, households_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller gives a household's code: its grid opens with its row marked, the look
    audited; a household of another community is "not in your area", its grid not opened.
    Past a few grids the grid is typed, with the codes suggested (a datalist), not scrolled
    through in a list."""
    care = {**sign_in(client, CARE.username), **PAGE}
    code = first_household(households_engine, WORKED_GRID)
    found = client.get(f"/app/households?find={code}", headers=care, follow_redirects=False)
    assert found.status_code == 303
    assert re.fullmatch(
        rf"/app/households\?grid={WORKED_GRID}&found={code}~[0-9a-f]{{20}}#hh-{code}",
        found.headers["location"],
    )
    assert audited(households_engine, code)[-1] == "found by its code (page)"
    page = client.get(found.headers["location"], headers=care)
    assert f'<tr id="hh-{code}" class="gw-done">' in page.text
    assert f"Found: household {code}" in html.unescape(page.text)
    elsewhere = first_household(households_engine, "131215-G01")
    missed = client.get(f"/app/households?find={elsewhere}", headers=care)
    assert missed.status_code == 200
    assert f"No household {elsewhere} in your area" in html.unescape(missed.text)
    assert audited(households_engine, elsewhere) == []

    monkeypatch.setattr(household_pages, "FEW_GRIDS", 2)  # the community's 5 grids are many
    typed = client.get("/app/households", headers=care)
    assert '<input name="grid" list="gw-grids"' in typed.text
    assert typed.text.count('<option value="131208-G') == 5
    # Before a grid is chosen the page says what to do, and that each look is recorded; in
    # Chinese too. Once a grid is open the hint has done its work.
    assert "Choose a grid to see its households" in typed.text
    assert "recorded in the audit log" in typed.text
    zh = client.get("/app/households", headers={**care, "Accept-Language": "zh-CN"}).text
    assert "选择一个网格" in zh and "审计日志" in zh
    opened = client.get(f"/app/households?grid={WORKED_GRID}", headers=care).text
    assert "gw-hh-hint" not in opened


def test_a_household_corrected_on_the_page_outlives_a_new_estimate(
    client: TestClient, worker: dict[str, str], households_engine: Engine
) -> None:
    """A worker's correction is a registered household: deriving households from the
    buildings again replaces the estimated ones, and keeps it as the worker left it."""
    code = first_household(households_engine, WORKED_GRID)
    r = client.post(
        f"/app/households/{code}",
        data={"size": "4", "age_band": "60-79"},
        headers=worker,
        follow_redirects=False,
    )
    assert r.status_code == 303
    derive_households(
        households_engine,
        seed=7,
        settings=app_settings(str(households_engine.url.render_as_string(hide_password=False))),
    )
    kept = stored(households_engine, code)
    assert kept is not None
    assert (kept["size"], kept["age_band"], kept["estimated"]) == (4, "60-79", False)
