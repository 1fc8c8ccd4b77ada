"""The case flow over HTTP on real PostGIS: report → routed to the grid's worker → deadline
passes (test clock) → community → street, each told → department and back → resolve, close,
reopen; every step in the history, which nobody can rewrite."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api import care_tasks
from data.access.queries import AreaScope
from data.incidents import queries as q
from data.incidents import service
from tests.incidents.conftest import inside

Auth = dict[str, dict[str, str]]
FORBIDDEN = re.compile(r"ethnic|religio|belief|politic|民族|宗教|信仰|政治", re.I)


def _report(client: TestClient, auth: Auth, who: str, grid: str, engine: Engine, **kw: Any) -> Any:
    lon, lat = inside(engine, grid)
    body = {"category": "leaking_pipe", "lon": lon, "lat": lat, "description": "water on road"}
    return client.post("/cases", json=body | kw, headers=auth[who])


def _notices(client: TestClient, auth: Auth, who: str) -> list[int]:
    r = client.get("/cases/notices", headers=auth[who])
    assert r.status_code == 200, r.text
    return [n["case_id"] for n in r.json()["notices"]]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one())


def test_catalogue_is_seeded_with_place_and_service_categories(
    client: TestClient, auth: Auth
) -> None:
    r = client.get("/cases/categories", headers=auth["worker"])
    assert r.status_code == 200
    cats = {c["code"]: c for c in r.json()["categories"]}
    assert {
        "street_light",
        "leaking_pipe",
        "elder_visit",
        "fire_access",
        "rubbish",
        "dispute",
    } <= set(cats)
    assert cats["leaking_pipe"]["department"] == "WATER"
    assert cats["leaking_pipe"]["first_level"] == "grid"
    for c in cats.values():
        assert not FORBIDDEN.search(" ".join(str(v) for v in c.values()))


def test_only_admins_manage_the_catalogue(client: TestClient, auth: Auth) -> None:
    body = {
        "code": "graffiti",
        "name": "乱涂乱画",
        "name_en": "Graffiti",
        "first_level": "grid",
        "department": "URBAN",
        "hours_grid": 48,
        "hours_community": 72,
        "hours_street": 96,
        "hours_district": 120,
    }
    assert (
        client.put("/cases/categories/graffiti", json=body, headers=auth["street"]).status_code
        == 403
    )
    r = client.put(
        "/cases/categories/graffiti", json=body | {"first_level": "moon"}, headers=auth["admin"]
    )
    assert r.status_code == 422 and "first_level" in r.text
    r = client.put(
        "/cases/categories/graffiti", json=body | {"department": "NOPE"}, headers=auth["admin"]
    )
    assert r.status_code == 422 and "department" in r.text
    r = client.put("/cases/categories/graffiti", json=body, headers=auth["admin"])
    assert r.status_code == 200, r.text
    codes = [
        c["code"]
        for c in client.get("/cases/categories", headers=auth["worker"]).json()["categories"]
    ]
    assert "graffiti" in codes


def test_the_whole_flow(client: TestClient, auth: Auth, cases_engine: Engine) -> None:
    r = _report(client, auth, "worker", "131208-G01", cases_engine, reporter_contact="+351 9")
    assert r.status_code == 201, r.text
    case = r.json()
    cid = case["id"]
    assert (case["status"], case["level"], case["grid"], case["assignee"]) == (
        "new",
        "grid",
        "131208-G01",
        "c-worker",
    )
    assert case["community"] == "131208" and case["street"] == "PORTO-CH"
    assert [h["kind"] for h in case["history"]] == ["reported"]
    assert cid in _notices(client, auth, "worker")
    assert cid not in _notices(client, auth, "community")  # not theirs yet

    for action, to in (("accept", "accepted"), ("start", "in_progress")):
        r = client.post(f"/cases/{cid}/{action}", json={}, headers=auth["worker"])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == to

    # the grid's 24 hours pass: the sweep (test clock) sends it to the community
    opened = datetime.fromisoformat(case["opened_at"])
    early = opened + timedelta(hours=23)
    service.sweep(cases_engine, now=early)
    assert client.get(f"/cases/{cid}", headers=auth["worker"]).json()["level"] == "grid"
    t1 = opened + timedelta(hours=25)
    service.sweep(cases_engine, now=t1)
    got = client.get(f"/cases/{cid}", headers=auth["community"]).json()
    assert (got["level"], got["status"], got["assignee"]) == ("community", "new", None)
    step = got["history"][-1]
    assert (step["actor"], step["kind"], step["from_level"], step["to_level"]) == (
        "system",
        "escalated",
        "grid",
        "community",
    )
    assert step["from_status"] == "in_progress" and step["to_status"] == "new"
    assert cid in _notices(client, auth, "community")
    assert cid not in _notices(client, auth, "street")

    # the community does nothing for 48 hours: the street gets it
    service.sweep(cases_engine, now=t1 + timedelta(hours=49))
    got = client.get(f"/cases/{cid}", headers=auth["street"]).json()
    assert got["level"] == "street" and got["top_level"] == "street" and got["escalations"] == 2
    assert cid in _notices(client, auth, "street")

    # the water department cannot see it before it is handed over
    assert client.get(f"/cases/{cid}", headers=auth["water"]).status_code == 404
    r = client.post(f"/cases/{cid}/handoff", json={"note": "main pipe"}, headers=auth["street"])
    assert r.status_code == 200, r.text
    assert r.json()["department"] == "WATER"
    assert cid in _notices(client, auth, "water")
    assert cid in [c["id"] for c in client.get("/cases", headers=auth["water"]).json()["cases"]]
    r = client.post(f"/cases/{cid}/return", json={"note": "valve replaced"}, headers=auth["water"])
    assert r.status_code == 200, r.text
    assert r.json()["department"] is None
    assert client.get(f"/cases/{cid}", headers=auth["water"]).status_code == 404  # given back

    r = client.post(
        f"/cases/{cid}/resolve", json={"note": "fixed, road dry"}, headers=auth["street"]
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert r.json()["resolved_in_time"] is False  # it missed the grid's deadline
    r = client.post(f"/cases/{cid}/close", json={}, headers=auth["street"])
    assert r.json()["status"] == "closed"
    with cases_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT status::text FROM incident WHERE id = :i"), {"i": cid}
            ).scalar()
            == "closed"
        )
    r = client.post(f"/cases/{cid}/reopen", json={"note": "leaking again"}, headers=auth["street"])
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    with cases_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT status::text FROM incident WHERE id = :i"), {"i": cid}
            ).scalar()
            == "in_progress"
        )

    kinds = [
        h["kind"] for h in client.get(f"/cases/{cid}", headers=auth["street"]).json()["history"]
    ]
    for k in (
        "reported",
        "accept",
        "start",
        "escalated",
        "to_department",
        "from_department",
        "resolve",
        "close",
        "reopen",
    ):
        assert k in kinds
    assert kinds.count("escalated") == 2

    # the history is append-only, even for the server's own role
    with pytest.raises(DBAPIError, match="append-only"), cases_engine.begin() as conn:
        conn.execute(text("UPDATE case_event SET note = 'x' WHERE case_id = :i"), {"i": cid})
    with pytest.raises(DBAPIError, match="append-only"), cases_engine.begin() as conn:
        conn.execute(text("DELETE FROM case_event WHERE case_id = :i"), {"i": cid})


def test_a_handler_escalates_with_a_reason(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    cid = _report(client, auth, "worker", "131208-G01", cases_engine).json()["id"]
    r = client.post(f"/cases/{cid}/escalate", json={"reason": ""}, headers=auth["worker"])
    assert r.status_code == 422 and "reason" in r.text
    r = client.post(
        f"/cases/{cid}/escalate", json={"reason": "needs a road closure"}, headers=auth["worker"]
    )
    assert r.status_code == 200, r.text
    assert r.json()["level"] == "community"
    assert r.json()["history"][-1]["note"] == "needs a road closure"
    assert cid in _notices(client, auth, "community")


def test_bad_input_names_the_field_and_stores_nothing(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    before = _count(cases_engine)
    r = _report(client, auth, "worker", "131208-G01", cases_engine, category="religion")
    assert r.status_code == 422 and "category" in r.text
    r = client.post(
        "/cases",
        json={"category": "rubbish", "lon": -40.0, "lat": 10.0, "description": "x"},
        headers=auth["admin"],
    )
    assert r.status_code == 422 and "lon" in r.text and "outside every grid" in r.text
    r = _report(client, auth, "worker", "131208-G01", cases_engine, description="   ")
    assert r.status_code == 422 and "description" in r.text
    r = _report(client, auth, "worker", "131208-G01", cases_engine, lat=95.0)
    assert r.status_code == 422 and "lat" in r.text
    r = _report(client, auth, "worker", "131213-G01", cases_engine)  # not their grid
    assert r.status_code == 403
    r = _report(client, auth, "planner", "131208-G01", cases_engine)  # planners do not report
    assert r.status_code == 403
    assert _count(cases_engine) == before

    cid = _report(client, auth, "worker", "131208-G01", cases_engine).json()["id"]
    assert client.post(f"/cases/{cid}/close", json={}, headers=auth["worker"]).status_code == 409
    r = client.post(f"/cases/{cid}/resolve", json={"note": ""}, headers=auth["worker"])
    assert r.status_code == 422 and "note" in r.text
    assert client.post(f"/cases/{cid}/fly", json={}, headers=auth["worker"]).status_code == 422
    assert client.post(f"/cases/{cid}/accept", json={}, headers=auth["care"]).status_code == 403


def test_area_and_reporter_contact(client: TestClient, auth: Auth, cases_engine: Engine) -> None:
    r = _report(
        client,
        auth,
        "worker",
        "131208-G01",
        cases_engine,
        reporter_name="Ana",
        reporter_contact="+351 912",
    )
    cid = r.json()["id"]
    assert client.get(f"/cases/{cid}", headers=auth["other_worker"]).status_code == 404
    assert (
        client.post(f"/cases/{cid}/accept", json={}, headers=auth["other_worker"]).status_code
        == 404
    )
    assert cid not in [
        c["id"] for c in client.get("/cases", headers=auth["other_worker"]).json()["cases"]
    ]
    seen = client.get(f"/cases/{cid}", headers=auth["care"]).json()
    assert "reporter" not in seen and "+351 912" not in str(seen)
    with cases_engine.connect() as conn:
        before = conn.execute(
            text(
                "SELECT count(*) FROM audit_log "
                "WHERE subject_type = 'case_reporter' AND actor = 'c-community'"
            )
        ).scalar_one()
    got = client.get(f"/cases/{cid}", headers=auth["community"]).json()
    assert got["reporter"] == {"name": "Ana", "contact": "+351 912"}
    with cases_engine.connect() as conn:
        after = conn.execute(
            text(
                "SELECT count(*) FROM audit_log "
                "WHERE subject_type = 'case_reporter' AND actor = 'c-community'"
            )
        ).scalar_one()
    assert after == before + 1


def test_list_filters(client: TestClient, auth: Auth, cases_engine: Engine) -> None:
    cid = _report(client, auth, "worker", "131208-G01", cases_engine, category="rubbish").json()[
        "id"
    ]

    def ids(**p: Any) -> list[int]:
        r = client.get("/cases", params=p, headers=auth["community"])
        return [c["id"] for c in r.json()["cases"]]

    assert cid in ids(category="rubbish", status="new", grid="131208-G01")
    assert cid not in ids(category="street_light")
    assert cid not in ids(status="closed")
    assert cid in ids(due_within_hours=25)
    assert cid not in ids(overdue=True)
    assert (
        client.get("/cases", params={"status": "lost"}, headers=auth["community"]).status_code
        == 422
    )


def test_the_periodic_task_runs_the_sweep(cases_app: Any) -> None:
    done = care_tasks.run_once(cases_app, purge_now=False)
    assert "cases_escalated" in done


def test_figures_match_the_history(client: TestClient, auth: Auth, cases_engine: Engine) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    made = [
        _report(client, auth, "admin", "131214-G02", cases_engine, category="rubbish").json()["id"]
        for _ in range(3)
    ]
    a, b, _open = made
    client.post(f"/cases/{a}/resolve", json={"note": "cleared"}, headers=auth["admin"])
    client.post(f"/cases/{a}/close", json={}, headers=auth["admin"])
    client.post(
        f"/cases/{b}/escalate", json={"reason": "too big for the grid"}, headers=auth["admin"]
    )
    client.post(f"/cases/{b}/resolve", json={"note": "lorry came"}, headers=auth["admin"])
    until = datetime.now(UTC) + timedelta(minutes=1)
    r = client.get(
        "/cases/figures",
        params={
            "level": "grid",
            "code": "131214-G02",
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
        headers=auth["admin"],
    )
    assert r.status_code == 200, r.text
    f = r.json()
    histories = {
        i: client.get(f"/cases/{i}", headers=auth["admin"]).json()["history"] for i in made
    }
    opened = sum(1 for h in histories.values() if h[0]["kind"] == "reported")
    closed = sum(1 for h in histories.values() if any(e["to_status"] == "closed" for e in h))
    resolved = {i: h for i, h in histories.items() if any(e["to_status"] == "resolved" for e in h)}
    hours = [
        (
            datetime.fromisoformat(next(e["at"] for e in h if e["to_status"] == "resolved"))
            - datetime.fromisoformat(h[0]["at"])
        ).total_seconds()
        / 3600
        for h in resolved.values()
    ]
    at_grid = sum(1 for h in resolved.values() if not any(e["kind"] == "escalated" for e in h))
    assert (f["opened"], f["closed"], f["resolved"]) == (opened, closed, len(resolved)) == (3, 1, 2)
    assert f["median_hours"] == pytest.approx(statistics.median(hours), abs=1e-6)
    assert f["at_grid"] == pytest.approx(at_grid / len(resolved)) == 0.5
    assert f["escalated"] == pytest.approx(0.5)
    assert f["in_time"] == pytest.approx(1.0)


def test_the_figures_of_many_areas_in_one_statement_count_each_areas_cases(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """The figures page reads every area's figures at once (``figures_by_area``): each
    area's counts are its own cases', as a plain count says, and an area without cases is
    there with zeros."""
    since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    everyone = q.Viewer(AreaScope.everywhere(), None, None, "test")
    with cases_engine.connect() as conn:
        counted: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT m.code, count(*) FROM incident_case c "
                    "JOIN community m ON m.id = c.community_id GROUP BY 1"
                )
            ).all()
        )
        assert counted  # the flow tests above reported cases
        codes = [*sorted(counted), "NO-SUCH-AREA"]
        rows = q.figures_by_area(conn, everyone, "community", codes, since, until)
    assert [r["code"] for r in rows] == codes
    assert {r["code"]: r["opened"] for r in rows[:-1]} == counted
    assert (rows[-1]["opened"], rows[-1]["resolved"], rows[-1]["median_hours"]) == (0, 0, None)


def test_a_district_account_is_told_of_cases_that_reach_the_district_only(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """The API told a district-wide account of every level's notices (each grid's new case),
    while its page told it of the district's; both now say what came to the district."""
    cid = _report(client, auth, "worker", "131208-G01", cases_engine).json()["id"]
    assert cid in _notices(client, auth, "worker")
    # grid → community → street → district; each level's staff are told, the district not
    for who, up in (("worker", "community"), ("community", "street"), ("street", None)):
        r = client.post(f"/cases/{cid}/escalate", json={"reason": "too big"}, headers=auth[who])
        assert r.status_code == 200, (who, r.text)
        if up:
            assert cid in _notices(client, auth, up)
            assert cid not in _notices(client, auth, "admin"), f"told of the {up}'s case"
    assert client.get(f"/cases/{cid}", headers=auth["admin"]).json()["level"] == "district"
    assert cid in _notices(client, auth, "admin")
    page = client.get("/app/incidents/mine", headers=auth["admin"] | {"Accept": "text/html"})
    assert f'href="/app/incidents/{cid}"' in page.text
