"""Departments serve areas: the scope of a department's account is the area it serves, and a
case is handed only to a department serving the case's place (a 4xx naming ``department``
otherwise, nothing changed); the hand-off form offers only those. A department with no
account, or whose account has no scope, serves the whole district. What a department sees
stays the cases handed to it, wherever in its area they lie."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import transaction
from data.incidents.queries import save_department
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, sign_in
from tests.incidents.conftest import inside

Auth = dict[str, dict[str, str]]
HTML = {"Accept": "text/html"}
# community 131208 only; grid 131213-G01 only; an account with no scope; no account (FIRE)
PARKS = Account("c-parks", Role.department, ((ScopeLevel.community, "131208"),))
LAMPS = Account("c-lamps", Role.department, ((ScopeLevel.grid, "131213-G01"),))
ROADS = Account("c-roads", Role.department)


@pytest.fixture(scope="module")
def parks(cases_engine: Engine, client: TestClient) -> dict[str, str]:
    add_accounts(cases_engine, (PARKS, LAMPS, ROADS))
    with transaction(cases_engine) as session:
        save_department(session, "PARKS", "园林", "Parks", "c-parks")
        save_department(session, "LAMPS", "路灯", "Street lamps", "c-lamps")
        save_department(session, "ROADS", "道路", "Roads", "c-roads")
    return sign_in(client, PARKS.username)


def _case(client: TestClient, auth: Auth, engine: Engine, grid: str) -> int:
    lon, lat = inside(engine, grid)
    body = {"category": "rubbish", "lon": lon, "lat": lat, "description": "bags left out"}
    r = client.post("/cases", json=body, headers=auth["admin"])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _hand(client: TestClient, auth: Auth, cid: int, department: str) -> tuple[int, str]:
    r = client.post(f"/cases/{cid}/handoff", json={"department": department},
                    headers=auth["street"])  # fmt: skip
    return r.status_code, r.text


def _trail(engine: Engine, cid: int) -> tuple[int | None, int, int]:
    """The case's department, its history entries and its notices."""
    with engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT department_id, (SELECT count(*) FROM case_event WHERE case_id = :i), "
                    "(SELECT count(*) FROM case_notice WHERE case_id = :i) "
                    "FROM incident_case WHERE id = :i"
                ),
                {"i": cid},
            )
            .one()
            ._tuple()
        )


def test_a_hand_off_to_a_department_not_serving_the_area_is_refused(
    client: TestClient, auth: Auth, cases_engine: Engine, parks: dict[str, str]
) -> None:
    here, there = (_case(client, auth, cases_engine, g) for g in ("131208-G01", "131213-G01"))

    before = _trail(cases_engine, there)
    status, body = _hand(client, auth, there, "PARKS")  # 131213 is not in its community
    assert status == 422 and "department" in body and "does not serve" in body, body
    assert _trail(cases_engine, there) == before  # nothing changed, nothing told

    status, body = _hand(client, auth, here, "LAMPS")  # its one grid is elsewhere
    assert status == 422 and "department" in body, body
    assert _hand(client, auth, here, "PARKS")[0] == 200
    assert _hand(client, auth, there, "LAMPS")[0] == 200
    for cid in (here, there):  # no scope, or no account: the whole district
        for anywhere in ("ROADS", "FIRE"):
            assert _hand(client, auth, cid, anywhere)[0] == 200, (cid, anywhere)


def test_a_department_still_sees_only_the_cases_handed_to_it(
    client: TestClient, auth: Auth, cases_engine: Engine, parks: dict[str, str]
) -> None:
    ours, beside = (_case(client, auth, cases_engine, "131208-G01") for _ in range(2))
    assert _hand(client, auth, ours, "PARKS")[0] == 200
    seen = [c["id"] for c in client.get("/cases", headers=parks).json()["cases"]]
    assert ours in seen and beside not in seen  # its area lends it nothing to see
    assert client.get(f"/cases/{beside}", headers=parks).status_code == 404
    # handed on to another department serving the area: no longer its to see
    assert _hand(client, auth, ours, "FIRE")[0] == 200
    assert client.get(f"/cases/{ours}", headers=parks).status_code == 404


def test_the_hand_off_form_offers_only_departments_serving_the_area(
    client: TestClient, auth: Auth, cases_engine: Engine, parks: dict[str, str]
) -> None:
    here, there = (_case(client, auth, cases_engine, g) for g in ("131208-G01", "131213-G01"))
    offered = {}
    for cid in (here, there):
        r = client.get(f"/app/incidents/{cid}", headers=auth["street"] | HTML)
        assert r.status_code == 200, r.text
        offered[cid] = {code for code in ("PARKS", "LAMPS", "ROADS", "FIRE", "WATER")
                        if f'<option value="{code}"' in r.text}  # fmt: skip
    # WATER's account serves the street PORTO-CH, which holds both
    assert offered[here] == {"PARKS", "ROADS", "FIRE", "WATER"}
    assert offered[there] == {"LAMPS", "ROADS", "FIRE", "WATER"}
