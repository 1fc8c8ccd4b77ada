"""A report is stored and read back in one statement (``queries.REPORT_SQL``): its answer is
the case as ``GET /cases/{id}`` reads it, refusals name the same field in the same order as
the step-by-step checks did, and a refused report stores nothing."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from api.state import app_state
from tests.incidents.conftest import inside

Auth = dict[str, dict[str, str]]


def _count(engine: Engine) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM incident), (SELECT count(*) FROM incident_case), "
                    "(SELECT count(*) FROM case_event), (SELECT count(*) FROM case_notice)"
                )
            )
            .one()
            ._tuple()
        )


def _post(client: TestClient, auth: Auth, who: str, body: dict[str, Any]) -> Any:
    return client.post("/cases", json=body, headers=auth[who])


def test_the_answer_is_the_case_as_read_back(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    lon, lat = inside(cases_engine, "131208-G01")
    for who, category, extra in (
        ("worker", "leaking_pipe", {"reporter_name": "Ana", "reporter_contact": "+351 912"}),
        ("community", "road_damage", {}),  # starts at community level: nobody assigned
        ("admin", "rubbish", {"reporter_contact": "ana@example.org"}),
    ):
        body = {"category": category, "lon": lon, "lat": lat, "description": " pipe  "} | extra
        before = _count(cases_engine)
        r = _post(client, auth, who, body)
        assert r.status_code == 201, r.text
        assert _count(cases_engine) == tuple(n + 1 for n in before)
        answered = r.json()
        read = client.get(f"/cases/{answered['id']}", headers=auth[who])
        assert read.status_code == 200 and answered == read.json(), (answered, read.json())
        assert answered["grid"] == "131208-G01" and answered["description"] == "pipe"
        assert answered["level"] == ("community" if category == "road_damage" else "grid")
        assert (answered["assignee"] is None) == (category == "road_damage")
        assert [h["kind"] for h in answered["history"]] == ["reported"]


def test_refusals_name_the_first_bad_field_and_store_nothing(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    lon, lat = inside(cases_engine, "131208-G01")
    good = {"category": "rubbish", "lon": lon, "lat": lat, "description": "bags"}
    before = _count(cases_engine)
    for who, change, status, field, says in (
        # an unknown category is named before a bad point or an empty description
        ("worker", {"category": "nope", "lat": 95.0}, 422, "category", "unknown category"),
        ("worker", {"category": "nope", "description": " "}, 422, "category", "unknown"),
        ("worker", {"category": "nope"}, 422, "category", "unknown category"),
        ("worker", {"lat": 95.0, "description": " "}, 422, "lat", "between"),
        ("worker", {"description": " "}, 422, "description", "required"),
        ("admin", {"lon": -40.0, "lat": 10.0}, 422, "lon", "outside every grid"),
        ("worker", {"lon": -40.0, "lat": 10.0}, 422, "lon", "outside every grid"),
        ("other_worker", {}, 403, "lon", "outside your area"),
    ):
        r = _post(client, auth, who, good | change)
        assert r.status_code == status and field in r.text and says in r.text, (change, r.text)
    assert _count(cases_engine) == before


def test_a_report_is_one_statement_and_its_own_transaction(
    client: TestClient, auth: Auth, cases_engine: Engine, cases_app: FastAPI
) -> None:
    """With no reporter named, a report costs the database one statement, run as its own
    transaction (autocommit: no BEGIN, no COMMIT round trips); a named reporter read back by
    a handler is audited in the same transaction as the report."""
    lon, lat = inside(cases_engine, "131208-G01")
    sent: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append((" ".join(statement.split())[:40], cursor.connection.autocommit))

    assert client.get("/cases/categories", headers=auth["worker"]).status_code == 200  # signed in
    engine = app_state(cases_app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        body = {"category": "rubbish", "lon": lon, "lat": lat, "description": "bags"}
        alone = _post(client, auth, "worker", body)
        statements, sent[:] = list(sent), []
        named = _post(client, auth, "worker", body | {"reporter_name": "Ana"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert alone.status_code == named.status_code == 201
    assert statements == [("WITH k AS ( SELECT k.id, k.code, k.name,", True)]
    assert [s.split()[0:3] for s, _ in sent] == [
        ["WITH", "k", "AS"],
        ["INSERT", "INTO", "audit_log"],
    ]
    assert {autocommit for _, autocommit in sent} == {False}  # one transaction for both
    with cases_engine.connect() as conn:  # both committed before the answers
        found = conn.execute(
            text("SELECT count(*) FROM incident_case WHERE id IN (:a, :b)"),
            {"a": alone.json()["id"], "b": named.json()["id"]},
        ).scalar_one()
    assert found == 2
