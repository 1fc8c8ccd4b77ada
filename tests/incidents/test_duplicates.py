"""Possible duplicates on real PostGIS: the same category within 50 m (measured in the
deployment's metric CRS) and 7 days is offered, nothing else; a handler links a case as a
duplicate, the link is in both histories and never chains; the pages offer and record it,
and in a real browser the report form offers the case nearby once a place is picked."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Route, sync_playwright
from sqlalchemy import Engine, text

from data.crs import metric_epsg
from data.db import transaction
from data.incidents import queries as q
from tests.browser.poll import wait_until
from tests.factory import PASSWORD
from tests.gridded import live_server
from tests.incidents.conftest import PEOPLE, inside
from tests.incidents.test_case_browser import ARGS, ARTIFACTS, CHROMIUM

Auth = dict[str, dict[str, str]]
HTML = {"Accept": "text/html", "Accept-Language": "en"}
KIND = "bench_broken"


@pytest.fixture(scope="module", autouse=True)
def bench_category(cases_engine: Engine) -> None:
    """A category of this module's own, so other tests' reports are never suggested here."""
    with transaction(cases_engine) as session:
        q.save_category(
            session,
            {
                "code": KIND,
                "name": "长椅损坏",
                "name_en": "Broken bench",
                "first_level": "grid",
                "department": None,
                "hours_grid": 48,
                "hours_community": 72,
                "hours_street": 96,
                "hours_district": 120,
                "active": True,
            },
        )


def _moved(
    lon: float, lat: float, north_m: float = 0.0, east_m: float = 0.0
) -> tuple[float, float]:
    """A point about ``north_m`` / ``east_m`` metres away (the test measures it exactly)."""
    dlat = north_m / 111_132.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def _metres(engine: Engine, a: tuple[float, float], b: tuple[float, float]) -> float:
    with engine.connect() as conn:
        epsg = metric_epsg(conn)
        return float(
            conn.execute(
                text(
                    "SELECT ST_Distance(ST_Transform(ST_SetSRID(ST_MakePoint(:x1, :y1), 4326), "
                    ":e), ST_Transform(ST_SetSRID(ST_MakePoint(:x2, :y2), 4326), :e))"
                ),
                {"x1": a[0], "y1": a[1], "x2": b[0], "y2": b[1], "e": epsg},
            ).scalar_one()
        )


def _report(
    client: TestClient,
    auth: Auth,
    at: tuple[float, float],
    category: str = KIND,
    who: str = "admin",
) -> int:
    body = {"category": category, "lon": at[0], "lat": at[1], "description": "bench split"}
    r = client.post("/cases", json=body, headers=auth[who])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _nearby(client: TestClient, auth: Auth, at: tuple[float, float], who: str = "community") -> Any:
    r = client.get(
        "/cases/duplicates",
        params={"category": KIND, "lon": at[0], "lat": at[1]},
        headers=auth[who],
    )
    assert r.status_code == 200, r.text
    return r.json()["cases"]


def test_same_category_within_50_m_and_7_days_only(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    base = inside(cases_engine, "131208-G02")
    near = {
        "here": base,
        "30 m north": _moved(*base, north_m=30),
        "47 m east": _moved(*base, east_m=47),
    }
    far = {"54 m north": _moved(*base, north_m=54), "53 m east": _moved(*base, east_m=53)}
    for label, point in near.items():
        assert _metres(cases_engine, base, point) < 49.5, label
    for label, point in far.items():
        assert _metres(cases_engine, base, point) > 50.5, label
    ids = {label: _report(client, auth, p) for label, p in (near | far).items()}
    other_kind = _report(client, auth, _moved(*base, north_m=5), category="rubbish")
    old = _report(client, auth, _moved(*base, north_m=10))
    with cases_engine.begin() as conn:
        conn.execute(
            text("UPDATE incident_case SET opened_at = now() - interval '8 days' WHERE id = :i"),
            {"i": old},
        )
    found = _nearby(client, auth, base)
    assert [c["id"] for c in found] == [ids["here"], ids["30 m north"], ids["47 m east"]]
    for c, point in zip(found, near.values(), strict=True):
        assert c["distance_m"] == pytest.approx(_metres(cases_engine, base, point), abs=0.1)
        assert c["category"] == KIND and c["duplicate_of"] is None
    assert other_kind not in {c["id"] for c in found}
    # Only cases the caller sees: another parish's worker is offered none of them.
    assert _nearby(client, auth, base, who="other_worker") == []
    r = client.get(
        "/cases/duplicates", params={"category": "nope", "lon": 0, "lat": 0}, headers=auth["admin"]
    )
    assert r.status_code == 422 and r.json()["field"] == "category"
    r = client.get(
        "/cases/duplicates", params={"category": KIND, "lon": 200, "lat": 0}, headers=auth["admin"]
    )
    assert r.status_code == 422 and r.json()["field"] == "lon"


def test_a_handler_links_a_duplicate_and_both_histories_say_so(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    base = inside(cases_engine, "131208-G03")
    first = _report(client, auth, base)
    second = _report(client, auth, _moved(*base, north_m=20))
    third = _report(client, auth, _moved(*base, east_m=20))
    shown = client.get(f"/cases/{second}/duplicates", headers=auth["community"]).json()
    assert shown["duplicate_of"] is None
    assert {s["id"] for s in shown["suggestions"]} == {first, third}
    r = client.post(
        f"/cases/{second}/duplicate_of", json={"duplicate_of": first}, headers=auth["planner"]
    )
    assert r.status_code == 403  # planners see cases, they do not handle them
    r = client.post(
        f"/cases/{second}/duplicate_of", json={"duplicate_of": first}, headers=auth["community"]
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"duplicate_of": first, "duplicates": []}
    assert client.get(f"/cases/{first}/duplicates", headers=auth["community"]).json()[
        "duplicates"
    ] == [second]
    assert (
        client.get(f"/cases/{second}/duplicates", headers=auth["community"]).json()["suggestions"]
        == []
    )
    one = client.get(f"/cases/{first}", headers=auth["community"]).json()["history"][-1]
    two = client.get(f"/cases/{second}", headers=auth["community"]).json()["history"][-1]
    assert (one["kind"], one["note"], one["actor"]) == (
        "duplicate_linked",
        f"#{second}",
        "c-community",
    )
    assert (two["kind"], two["note"]) == ("duplicate_of", f"#{first}")
    # No second link, no link to itself, no chains either way; nothing written.
    refusals = [
        (second, third, 409, "already a duplicate"),
        (third, third, 422, "itself"),
        (third, second, 409, f"link to case {first}"),
        (first, third, 409, f"case {second} is a duplicate of case {first}"),
    ]
    for case_id, of, status, says in refusals:
        r = client.post(
            f"/cases/{case_id}/duplicate_of", json={"duplicate_of": of}, headers=auth["admin"]
        )
        assert r.status_code == status, r.text
        assert r.json()["field"] == "duplicate_of" and says in r.json()["detail"], r.text
    with cases_engine.connect() as conn:
        links = conn.execute(
            text("SELECT case_id, duplicate_of FROM case_link WHERE :a IN (case_id, duplicate_of)"),
            {"a": first},
        ).all()
    assert links == [(second, first)]
    r = client.post(
        f"/cases/{third}/duplicate_of", json={"duplicate_of": first}, headers=auth["other_worker"]
    )
    assert r.status_code == 404  # not in their area


def test_the_pages_offer_and_record_the_link(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    base = inside(cases_engine, "131208-G04")
    first = _report(client, auth, base, who="community")
    form_page = client.get("/app/incidents/new", headers=auth["community"] | HTML).text
    assert 'id="dupes"' in form_page and "/static/frame/case_duplicates.js" in form_page
    near = _moved(*base, north_m=15)
    r = client.post(
        "/app/incidents/new",
        data={
            "category": KIND,
            "description": "same bench",
            "lon": str(near[0]),
            "lat": str(near[1]),
            "duplicate_of": str(first),
        },
        headers=auth["community"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    second = int(r.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/app/incidents/{second}", headers=auth["community"] | HTML).text
    assert f'href="/app/incidents/{first}">#{first}</a>' in page and "This case repeats" in page
    third = _report(client, auth, _moved(*base, east_m=10), who="community")
    page = client.get(f"/app/incidents/{third}", headers=auth["community"] | HTML).text
    offered = re.findall(r'name="duplicate_of" value="(\d+)"', page)
    assert offered == [str(first)]  # the second is already a duplicate: not offered
    r = client.post(
        f"/app/incidents/{third}/link",
        data={"duplicate_of": str(first)},
        headers=auth["community"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/app/incidents/{first}", headers=auth["community"] | HTML).text
    assert f'href="/app/incidents/{second}">#{second}</a>, <a href="/app/incidents/{third}"' in page
    assert "Linked as its duplicate" in page


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_the_report_form_offers_the_case_nearby_in_a_browser(
    client: TestClient, auth: Auth, cases_engine: Engine, tmp_path: Path
) -> None:
    """Debian's Chromium, offline: the worker picks the middle of the map (their grid), the
    form offers the bench already reported there; they link to it and attach a photo."""
    earlier = _report(client, auth, inside(cases_engine, "131208-G01"), who="worker")
    picture = tmp_path / "bench.jpg"
    Image.new("RGB", (640, 480), (90, 60, 30)).save(picture, "JPEG")
    url = cases_engine.url.render_as_string(hide_password=False)
    with live_server(url) as live, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # a computer set to another zone than the district's (the footer names the district's)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, locale="en-US", timezone_id="America/New_York"
        )
        outside: list[str] = []
        errors: list[str] = []

        def route(r: Route) -> None:
            if r.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        form: dict[str, str | float | bool] = {"username": PEOPLE["worker"].username}
        form["password"] = PASSWORD
        assert context.request.post(f"{live.url}/login", form=form, max_redirects=0).status == 303
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live.url}/app/incidents/new", wait_until="networkidle")
        assert page.locator("#dupes").is_hidden()
        page.select_option("#category", KIND)
        page.locator("#pickmap").scroll_into_view_if_needed()
        box = page.locator("#pickmap").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        offered = page.locator(f'#dupe-list input[value="{earlier}"]')
        offered.wait_for(timeout=10_000)
        assert page.locator("#dupes").is_visible()
        assert "m away" in page.locator("#dupe-list").inner_text()
        # its time in the district's zone, as the server writes every other time
        opened = client.get(f"/cases/{earlier}", headers=auth["worker"]).json()["opened_at"]
        zone = page.get_attribute("#dupes", "data-zone")
        ours, theirs = (
            page.evaluate(f"new Date({opened!r}).toLocaleString('en-US', {{timeZone: {z!r}}})")
            for z in (zone, "America/New_York")
        )
        assert zone == "Asia/Shanghai" and ours != theirs
        said = page.locator("#dupe-list").inner_text()
        assert ours in said and theirs not in said, (ours, theirs, said)
        offered.check()
        page.fill("#description", "the same bench, split in two")
        page.set_input_files("#photo", str(picture))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "incidents-report-duplicate-390.png"), full_page=True)
        page.click("button[type=submit].primary")
        page.wait_for_url(re.compile(r".*/app/incidents/\d+$"))
        html = page.content()
        assert f'href="/app/incidents/{earlier}">#{earlier}</a>' in html
        assert page.locator("ul.photo-list img").count() == 1
        thumb = page.locator("ul.photo-list img")
        thumb.scroll_into_view_if_needed()  # loaded lazily
        wait_until(page, "document.querySelector('ul.photo-list img').naturalWidth > 0")
        assert thumb.evaluate("i => Math.max(i.naturalWidth, i.naturalHeight)") == 320
        page.screenshot(path=str(ARTIFACTS / "incidents-case-photo-390.png"), full_page=True)
        browser.close()
    assert outside == [] and errors == [], (outside, errors)
