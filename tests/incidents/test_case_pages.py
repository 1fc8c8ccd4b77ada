"""The case pages as their users drive them over HTTP: a grid worker reports from the form,
accepts on the case page, sees "my cases"; the coordinator's list marks overdue cases; the
figures page; home cards and navigation."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.incidents.conftest import inside

Auth = dict[str, dict[str, str]]
HTML = {"Accept": "text/html"}


def _report_form(client: TestClient, auth: Auth, engine: Engine, **extra: str) -> int:
    lon, lat = inside(engine, "131208-G01")
    form = {"category": "street_light", "description": "lamp out at the corner"}
    form |= {"lon": str(lon), "lat": str(lat)} | extra
    r = client.post(
        "/app/incidents/new", data=form, headers=auth["worker"] | HTML, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/app/incidents/(\d+)", r.headers["location"])
    assert found
    return int(found.group(1))


def test_report_accept_and_history_on_the_page(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    r = client.get("/app/incidents/new", headers=auth["worker"] | HTML)
    assert r.status_code == 200
    options = r.text[r.text.index('<select id="category"') : r.text.index("</select>")]
    assert 'value="street_light"' in options and 'value="elder_visit"' in options
    assert not re.search(r"religio|ethnic|belief|politic|宗教|民族|信仰|政治", options, re.I)
    assert "data-centre=" in r.text
    cid = _report_form(client, auth, cases_engine)
    page = client.get(f"/app/incidents/{cid}", headers=auth["worker"] | HTML)
    assert page.status_code == 200
    assert "lamp out at the corner" in page.text and 'value="accept"' in page.text
    r = client.post(
        f"/app/incidents/{cid}/act",
        data={"action": "accept"},
        headers=auth["worker"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/app/incidents/{cid}", headers=auth["worker"] | HTML)
    assert 'value="accept"' not in page.text and 'value="start"' in page.text
    assert page.text.count("<li><time>") == 2  # reported, accepted
    mine = client.get("/app/incidents/mine", headers=auth["worker"] | HTML)
    assert f"/app/incidents/{cid}" in mine.text


def test_the_form_refuses_a_report_without_a_place(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    with cases_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one()
    r = client.post(
        "/app/incidents/new",
        data={"category": "rubbish", "description": "bags", "lon": "", "lat": ""},
        headers=auth["worker"] | HTML,
    )
    assert r.status_code == 422 and "lon" in r.text
    with cases_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one() == before


def test_overdue_cases_are_red_in_the_list(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    cid = _report_form(client, auth, cases_engine)
    with cases_engine.begin() as conn:
        conn.execute(
            text("UPDATE incident_case SET due_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": cid},
        )
    r = client.get("/app/incidents?due=overdue", headers=auth["community"] | HTML)
    assert r.status_code == 200
    row = re.search(rf'<tr class="([^"]*)">\s*<td><a href="/app/incidents/{cid}">', r.text)
    assert row and row.group(1) == "overdue"
    r = client.get("/app/incidents?status=closed", headers=auth["community"] | HTML)
    assert f'href="/app/incidents/{cid}"' not in r.text
    assert (
        client.get(f"/app/incidents/{cid}", headers=auth["other_worker"] | HTML).status_code == 404
    )


def test_figures_page_and_home(client: TestClient, auth: Auth, cases_engine: Engine) -> None:
    _report_form(client, auth, cases_engine)
    r = client.get("/app/incidents/figures?level=grid", headers=auth["community"] | HTML)
    assert r.status_code == 200 and "131208-G01" in r.text
    home = client.get("/", headers=auth["community"] | HTML)
    assert 'href="/app/incidents?status=open"' in home.text and 'href="/app/incidents"' in home.text
    home = client.get("/", headers=auth["worker"] | HTML)
    assert 'href="/app/incidents/mine"' in home.text
    home = client.get("/", headers=auth["planner"] | HTML)
    assert 'href="/app/incidents/mine"' not in home.text
    assert client.get("/app/incidents/mine", headers=auth["planner"] | HTML).status_code == 403
