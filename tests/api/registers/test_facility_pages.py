"""The facility register in the browser, as a coordinator keeps it: a new elderly care
station added with a tap (so the coverage map counts it), one renamed and moved, one that
closed removed; refusals beside their fields; other roles read only."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.api.registers.conftest import COORDINATOR, WORKER
from tests.api.registers.test_household_pages import inside
from tests.factory import sign_in

PAGE = {"Accept": "text/html", "Accept-Language": "en"}


@pytest.fixture(scope="module")
def client(households_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(households_app) as c:
        yield c


def stored(engine: Engine, key: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT f.kind, f.name, f.capacity, g.code AS grid FROM facility f "
                    "LEFT JOIN grid g ON g.id = f.grid_id WHERE f.source_id = :k"
                ),
                {"k": key},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def field_error(page: Any, field: str) -> str:
    found = re.search(rf'id="{re.escape(field)}-error" role="alert">([^<]+)</p>', page.text)
    assert found, (field, page.status_code, page.text[:3000])
    return html.unescape(found.group(1))


def test_a_coordinator_adds_changes_and_removes_a_facility(
    client: TestClient, households_engine: Engine
) -> None:
    me = {**sign_in(client, COORDINATOR.username), **PAGE}
    listed = client.get("/app/facilities", headers=me)
    assert listed.status_code == 200 and 'href="/app/facilities/new"' in listed.text
    with households_engine.connect() as conn:
        mine = conn.execute(
            text(
                "SELECT count(*) FROM facility f JOIN grid g ON g.id = f.grid_id "
                "WHERE g.code LIKE '131208-%' AND g.valid_to IS NULL"
            )
        ).scalar_one()
    assert mine > 0
    assert f"{mine} of {mine} facilities of your area" in listed.text  # theirs, no other

    lon, lat = inside(households_engine, "131208-G01")
    form = {"kind": "elderly_care", "name": "Casa  do Largo", "capacity": "20"}
    wrong = client.post(
        "/app/facilities/new",
        data={**form, "kind": "spaceport", "lon": lon, "lat": lat},
        headers=me,
    )
    assert field_error(wrong, "kind") == "Choose one of the kinds listed."
    seats = client.post(
        "/app/facilities/new", data={**form, "capacity": "many", "lon": lon, "lat": lat}, headers=me
    )
    assert field_error(seats, "capacity") == "Places: a whole number."
    far_lon, far_lat = inside(households_engine, "131213-G01")
    far = client.post(
        "/app/facilities/new", data={**form, "lon": far_lon, "lat": far_lat}, headers=me
    )
    assert field_error(far, "lon/lat") == "That place lies outside your area."
    assert 'value="Casa  do Largo"' in far.text  # what was typed is kept

    made = client.post(
        "/app/facilities/new",
        data={**form, "lon": lon, "lat": lat},
        headers=me,
        follow_redirects=False,
    )
    assert made.status_code == 303
    key = made.headers["location"].split("done=")[1].split("~")[0]
    assert key.startswith("gw-")
    assert stored(households_engine, key) == {
        "kind": "elderly_care",
        "name": "Casa do Largo",
        "capacity": 20,
        "grid": "131208-G01",
    }
    shown = client.get(made.headers["location"], headers=me)
    assert "The coverage map counts it from now on." in shown.text
    assert "Elderly care centre" in shown.text

    lon2, lat2 = inside(households_engine, "131208-G02")
    moved = client.post(
        f"/app/facilities/{key}",
        data={"kind": "elderly_care", "name": "Casa do Largo 2", "capacity": "",
              "lon": lon2, "lat": lat2, "moved": "1"},
        headers=me,
        follow_redirects=False,
    )  # fmt: skip
    assert moved.status_code == 303
    assert stored(households_engine, key) == {
        "kind": "elderly_care",
        "name": "Casa do Largo 2",
        "capacity": None,
        "grid": "131208-G02",
    }

    kept = client.post(f"/app/facilities/{key}/remove", data={}, headers=me)
    assert field_error(kept, "confirm") == "Tick that it has closed, to confirm."
    gone = client.post(
        f"/app/facilities/{key}/remove",
        data={"confirm": "yes"},
        headers=me,
        follow_redirects=False,
    )
    assert re.fullmatch(
        r"/app/facilities\?removed=Casa\+do\+Largo\+2~[0-9a-f]{20}", gone.headers["location"]
    )
    said = client.get(gone.headers["location"], headers=me)
    assert "Removed: Casa do Largo 2." in html.unescape(said.text)
    forged = client.get("/app/facilities?removed=Call%20555-0100", headers=me)
    assert "Removed:" not in forged.text
    assert stored(households_engine, key) is None


def test_a_grid_worker_reads_the_facilities_and_changes_none(
    client: TestClient, households_engine: Engine
) -> None:
    worker = {**sign_in(client, WORKER.username), **PAGE}
    page = client.get("/app/facilities", headers=worker)
    assert page.status_code == 200
    assert "/app/facilities/new" not in page.text
    assert client.get("/app/facilities/new", headers=worker).status_code == 403
    with households_engine.connect() as conn:
        key = conn.execute(text("SELECT source_id FROM facility LIMIT 1")).scalar_one()
    assert client.get(f"/app/facilities/{key}", headers=worker).status_code == 403


def test_an_unnamed_facility_is_listed_by_its_key(
    client: TestClient, households_engine: Engine
) -> None:
    """OSM has many unnamed schools and kindergartens: the list said "—" for each, so three
    rows could not be told apart on the page."""
    me = {**sign_in(client, COORDINATOR.username), **PAGE}
    lon, lat = inside(households_engine, "131208-G01")
    made = client.post(
        "/app/facilities/new",
        data={"kind": "school", "name": "", "capacity": "", "lon": lon, "lat": lat},
        headers=me,
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    key = made.headers["location"].split("done=")[1].split("~")[0]
    try:
        listed = client.get("/app/facilities", headers=me).text
        assert f'no name <span class="muted">{key}</span></a>' in listed
        chinese = client.get("/app/facilities", headers={**me, "Accept-Language": "zh-CN"}).text
        assert f'未命名 <span class="muted">{key}</span>' in chinese
    finally:
        with households_engine.begin() as conn:
            conn.execute(text("DELETE FROM facility WHERE source_id = :k"), {"k": key})
