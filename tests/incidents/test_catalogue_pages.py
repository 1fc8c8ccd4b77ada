"""The incident catalogue in the browser, as a district's administrator keeps it: a new
category with the hours of each level, a report under it with those deadlines, a category
retired, a department added; refusals beside their fields in the page's language; nobody
but an administrator reaches it."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.incidents.conftest import inside

EN = {"Accept": "text/html", "Accept-Language": "en"}
ZH = {"Accept": "text/html", "Accept-Language": "zh-CN"}


def field_error(page: Any, field: str) -> str:
    found = re.search(rf'id="{re.escape(field)}-error" role="alert">([^<]+)</p>', page.text)
    assert found, (field, page.status_code, page.text[-3000:])
    return html.unescape(found.group(1))


CATEGORY = {
    "code": "t_pothole",
    "name": "路面坑洼",
    "name_en": "Pothole",
    "first_level": "community",
    "department": "WATER",
    "hours_grid": "12",
    "hours_community": "24",
    "hours_street": "48",
    "hours_district": "96",
    "active": "on",
}


def test_an_administrator_adds_a_category_and_reports_use_its_hours(
    client: TestClient, auth: dict[str, dict[str, str]], cases_engine: Engine
) -> None:
    admin = {**auth["admin"], **EN}
    listed = client.get("/app/categories", headers=admin)
    assert listed.status_code == 200 and 'href="/app/categories/new"' in listed.text
    assert client.get("/app/categories/new", headers=admin).status_code == 200

    bad = client.post("/app/categories", data={**CATEGORY, "code": "Pot Hole"}, headers=admin)
    assert bad.status_code == 422
    assert (
        field_error(bad, "code") == "Letters, digits, '_' and '-' only (a category's: lower-case)."
    )
    hours = client.post(
        "/app/categories",
        data={**CATEGORY, "hours_street": "soon"},
        headers={**auth["admin"], **ZH},
    )
    assert field_error(hours, "hours_street") == "必须是整数"
    assert 'value="路面坑洼"' in hours.text  # what was typed is kept

    saved = client.post("/app/categories", data=CATEGORY, headers=admin, follow_redirects=False)
    assert saved.status_code == 303
    assert re.fullmatch(r"/app/categories\?done=t_pothole~[0-9a-f]{20}", saved.headers["location"])
    listed = client.get("/app/categories", headers=admin)
    row = re.search(r"Pothole</a>.*?</tr>", listed.text, re.S)
    cells = dict(re.findall(r'<td data-label="([^"]+)">([^<]*)</td>', row.group(0) if row else ""))
    assert cells["First handled by"] == "Community" and cells["Street (hours)"] == "48", cells
    # The department by its name in the page's language, not its code (WATER).
    with cases_engine.connect() as conn:
        name, name_en = conn.execute(
            text("SELECT name, name_en FROM department WHERE code = 'WATER'")
        ).one()
    assert cells["Department"] == name_en
    zh = client.get("/app/categories", headers={**auth["admin"], **ZH}).text
    row = re.search(r"路面坑洼</a>.*?</tr>", zh, re.S)
    assert row and f'<td data-label="职能部门">{name}</td>' in row.group(0)
    # Its form still chooses the department by its code.
    form = client.get("/app/categories/t_pothole", headers=admin).text
    assert re.search(r'<option value="WATER"[^>]*selected', form), form[-2000:]

    # A worker's report under it is first the community's, due in its 24 hours.
    lon, lat = inside(cases_engine, "131208-G01")
    case = client.post(
        "/cases",
        json={"category": "t_pothole", "lon": lon, "lat": lat, "description": "坑"},
        headers=auth["worker"],
    )
    assert case.status_code == 201, case.text
    answer = case.json()
    given = datetime.fromisoformat(answer["due_at"]) - datetime.fromisoformat(answer["opened_at"])
    assert (answer["level"], given) == ("community", timedelta(hours=24))

    # The new-category form does not overwrite the category of a code already taken.
    again = client.post("/app/categories", data={**CATEGORY, "hours_grid": "1"}, headers=admin)
    assert again.status_code == 409
    assert field_error(again, "code") == "A category with this code exists: open it to change it."

    # Changed and retired from its own page: the code stays; reports under it are refused.
    page = client.get("/app/categories/t_pothole", headers=admin)
    assert 'name="existing" value="t_pothole"' in page.text
    retired = {**CATEGORY, "existing": "t_pothole", "code": "", "active": ""}
    assert client.post("/app/categories", data=retired, headers=admin).status_code == 200
    refused = client.post(
        "/cases",
        json={"category": "t_pothole", "lon": lon, "lat": lat, "description": "坑"},
        headers=auth["worker"],
    )
    assert refused.status_code == 422
    # The case already open under it still climbs, by the hours it was given.
    up = client.post(
        f"/cases/{answer['id']}/escalate",
        json={"reason": "需要街道协调"},
        headers=auth["community"],
    )
    assert up.status_code == 200, up.text
    climbed = up.json()
    given = datetime.fromisoformat(climbed["due_at"]) - datetime.fromisoformat(
        climbed["history"][-1]["at"]
    )
    assert climbed["level"] == "street" and abs(given - timedelta(hours=48)) < timedelta(seconds=5)
    with cases_engine.connect() as conn:
        said = (
            conn.execute(
                text(
                    "SELECT reason FROM audit_log WHERE subject_type = 'category' "
                    "AND subject_ids = ARRAY['t_pothole']::varchar[] ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
    assert said == [
        "category saved, first level community; grid 12 h; community 24 h; street 48 h; "
        "district 96 h; department WATER",
        "category saved, first level community; grid 12 h; community 24 h; street 48 h; "
        "district 96 h; department WATER; retired",
    ]


def test_an_administrator_adds_a_department(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    admin = {**auth["admin"], **EN}
    page = client.get("/app/departments", headers=admin)
    assert page.status_code == 200 and "Water supply" in page.text
    assert '<option value="c-water">' in page.text  # department accounts are offered
    done = client.post(
        "/app/departments",
        data={"code": "ROADS", "name": "道路", "name_en": "Roads"},
        headers=admin,
        follow_redirects=False,
    )
    assert re.fullmatch(r"/app/departments\?done=ROADS~[0-9a-f]{20}", done.headers["location"])
    assert "Roads" in client.get("/app/departments", headers=admin).text
    nameless = client.post("/app/departments", data={"code": "PARKS"}, headers=admin)
    assert nameless.status_code == 422 and field_error(nameless, "name")


def test_only_an_administrator_reaches_the_catalogue(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    for who in ("community", "street", "water", "worker"):
        headers = {**auth[who], **EN}
        assert client.get("/app/categories", headers=headers).status_code == 403, who
        assert client.get("/app/departments", headers=headers).status_code == 403, who
        assert client.post("/app/categories", data=CATEGORY, headers=headers).status_code == 403
