"""The department's queue page over HTTP (no browser): the water department's account lands
on it, sees only the cases handed to it (overdue in red), accepts one and gives one back with
a note; a note is required to give back."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.incidents.conftest import inside

Auth = dict[str, dict[str, str]]
HTML = {"Accept": "text/html"}
QUEUE = "/app/incidents/queue"


def _case(client: TestClient, auth: Auth, engine: Engine, department: str | None) -> int:
    lon, lat = inside(engine, "131208-G01")
    body = {"category": "leaking_pipe", "lon": lon, "lat": lat, "description": "pipe burst"}
    r = client.post("/cases", json=body, headers=auth["worker"])
    assert r.status_code == 201, r.text
    cid = int(r.json()["id"])
    if department:
        r = client.post(f"/cases/{cid}/handoff", json={"department": department},
                        headers=auth["community"])  # fmt: skip
        assert r.status_code == 200, r.text
    return cid


def _act(client: TestClient, auth: Auth, cid: int, action: str, note: str = "") -> str:
    r = client.post(
        f"/app/incidents/{cid}/act",
        data={"action": action, "note": note, "back": "queue"},
        headers=auth["water"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, (action, r.status_code, r.text[-400:])
    return str(r.headers["location"])


def _queue(client: TestClient, auth: Auth) -> str:
    r = client.get(QUEUE, headers=auth["water"] | HTML)
    assert r.status_code == 200, r.text
    return r.text


def test_a_department_works_only_its_own_cases_from_its_queue(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    ours, late, fire, nobodys = (
        _case(client, auth, cases_engine, d) for d in ("WATER", "WATER", "FIRE", None)
    )
    with cases_engine.begin() as conn:
        conn.execute(text("UPDATE incident_case SET due_at = now() - interval '2 hours' "
                          "WHERE id = :i"), {"i": late})  # fmt: skip

    # signing in, the department lands on its queue; "my cases" is its queue too
    for path in ("/", "/app/incidents/mine"):
        r = client.get(path, headers=auth["water"] | HTML, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, QUEUE), path
    page = _queue(client, auth)
    assert f'href="{QUEUE}" aria-current="page"' in page
    assert 'href="/app/incidents/mine"' not in page  # not offered to a department
    for cid in (ours, late):
        assert f'id="case-{cid}"' in page
    for cid in (fire, nobodys):
        assert f"/app/incidents/{cid}" not in page
    assert re.search(rf'<li id="case-{late}" class="overdue">', page)
    assert re.search(rf'<li id="case-{ours}" class="due-soon">', page)  # 24 h to go
    assert 'value="accept"' in page and 'value="return"' in page

    # accept, then give back: a note is required, and the case leaves the queue
    assert _act(client, auth, ours, "accept") == QUEUE
    r = client.get(f"/cases/{ours}", headers=auth["water"])
    assert r.json()["status"] == "accepted"
    r = client.post(f"/app/incidents/{ours}/act", data={"action": "return", "back": "queue"},
                    headers=auth["water"] | HTML)  # fmt: skip
    assert r.status_code == 422 and "note" in r.text
    assert f'id="case-{ours}"' in _queue(client, auth)
    assert _act(client, auth, ours, "return", "valve closed, pipe replaced") == QUEUE
    page = _queue(client, auth)
    assert f'id="case-{ours}"' not in page and f'id="case-{late}"' in page
    r = client.get(f"/cases/{ours}", headers=auth["community"])
    assert r.json()["department"] is None
    assert r.json()["history"][-1]["kind"] == "from_department"
    assert "valve closed" in r.json()["history"][-1]["note"]

    # nor can it act on a case it was not given
    r = client.post(f"/app/incidents/{fire}/act", data={"action": "accept", "back": "queue"},
                    headers=auth["water"] | HTML)  # fmt: skip
    assert r.status_code == 404


def test_staff_asking_for_the_queue_get_their_own_cases(client: TestClient, auth: Auth) -> None:
    r = client.get(QUEUE, headers=auth["worker"] | HTML, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/app/incidents/mine")
    r = client.get(QUEUE, headers=auth["planner"] | HTML, follow_redirects=False)
    assert r.status_code == 403  # planners do not handle cases


def test_the_area_sees_the_department_by_its_name_in_the_pages_language(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """The hand-off list offers "供水"; the list and the case page said "WATER" afterwards."""
    cid = _case(client, auth, cases_engine, "WATER")
    for lang, name in (("zh-CN", "供水"), ("en", "Water supply")):
        headers = auth["community"] | HTML | {"Accept-Language": lang}
        listed = client.get("/app/incidents", headers=headers)
        assert listed.status_code == 200, listed.text
        row = re.search(rf'<tr class="[^"]*">\s*<td class="lead"><a href="/app/incidents/{cid}">'
                        r'.*?</tr>', listed.text, re.S)  # fmt: skip
        assert row, listed.text[-2000:]
        assert f">{name}</td>" in row.group(0) and "WATER" not in row.group(0)
        page = client.get(f"/app/incidents/{cid}", headers=headers).text
        facts = re.search(r'<dl class="facts">.*?</dl>', page, re.S)
        assert facts and f" {name}</dd>" in facts.group(0) and "WATER" not in facts.group(0)
    # the API still answers the department's code, for the machines that route on it
    assert client.get(f"/cases/{cid}", headers=auth["community"]).json()["department"] == "WATER"
