"""``GET /checks`` reports stored assignments that PostGIS ``ST_Covers`` disagrees with, as
``gridwork check`` does: every row to an admin (audited), within their area and without
household identifiers to a planner, nothing to other roles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import transaction
from data.models import Role, ScopeLevel
from geo.assignment.keys import REFUSED_CHARACTERS_SQL, key_problem
from tests.factory import Account, add_accounts, sign_in, stored_before_the_rule

STORED = "131215-G05"  # where the corrupted household is filed, far from where it lies


@dataclass(frozen=True)
class Corrupted:
    code: str
    lon: float
    lat: float
    expected: str  # the grid that covers it


@pytest.fixture
def corrupted(gridded_engine: Engine) -> Iterator[Corrupted]:
    """One household of 131208-G01 filed in 131215-G05 by hand; put back afterwards."""
    with transaction(gridded_engine) as session:
        row = session.execute(
            text(
                "SELECT h.id, h.code, h.grid_id, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat "
                "FROM household h JOIN grid g ON g.id = h.grid_id "
                "WHERE g.code = '131208-G01' AND NOT h.snapped ORDER BY h.id LIMIT 1"
            )
        ).one()
        session.execute(
            text(
                "UPDATE household SET grid_id = (SELECT id FROM grid WHERE code = :g "
                "AND valid_to IS NULL) WHERE id = :id"
            ),
            {"g": STORED, "id": row.id},
        )
    try:
        yield Corrupted(row.code, float(row.lon), float(row.lat), "131208-G01")
    finally:
        with transaction(gridded_engine) as session:
            session.execute(
                text("UPDATE household SET grid_id = :grid WHERE id = :id"),
                {"grid": row.grid_id, "id": row.id},
            )


@pytest.fixture(scope="module")
def area_planners(anon: TestClient, gridded_engine: Engine) -> dict[str, dict[str, str]]:
    """Headers of planners scoped to one parish each, keyed by the parish code."""
    parishes = ("131208", "131214", "131215")
    add_accounts(
        gridded_engine,
        [Account(f"g-planner-{p}", Role.planner, ((ScopeLevel.community, p),)) for p in parishes],
    )
    return {p: sign_in(anon, f"g-planner-{p}") for p in parishes}


def _household_audits(engine: Engine, actor: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT route, subject_ids, reason FROM audit_log "
                    "WHERE actor = :a AND subject_type = 'household' ORDER BY id"
                ),
                {"a": actor},
            )
        )


def test_a_clean_database_has_no_assignment_mismatch(
    admin: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine
) -> None:
    before = len(_household_audits(gridded_engine, "g-admin"))
    r = admin.get("/checks")
    assert r.status_code == 200, r.text
    assert r.json()["assignment_mismatches"] == []
    assert r.json()["ok"] is (r.json()["count"] == 0)
    planner = admin.get("/checks", headers=auth["planner"]).json()
    assert planner["assignment_mismatches"] == []
    assert len(_household_audits(gridded_engine, "g-admin")) == before, "nothing read, no audit"


def test_a_corrupted_household_is_listed_with_its_stored_and_expected_grid(
    admin: TestClient, corrupted: Corrupted, gridded_engine: Engine
) -> None:
    before = len(_household_audits(gridded_engine, "g-admin"))
    r = admin.get("/checks", params={"reason": "monthly check"})
    assert r.status_code == 200, r.text
    [mismatch] = r.json()["assignment_mismatches"]
    assert r.json()["ok"] is False  # even where the topology is clean (count 0)
    assert mismatch == {
        "table": "household",
        "key": corrupted.code,
        "stored": STORED,
        "expected": corrupted.expected,
        "reason": f"covered by {corrupted.expected}, stored {STORED}",
        "lon": pytest.approx(corrupted.lon, abs=1e-12),
        "lat": pytest.approx(corrupted.lat, abs=1e-12),
    }
    # The admin read a household's identity and location: audited like any household read.
    audits = _household_audits(gridded_engine, "g-admin")[before:]
    assert [(a.route, a.subject_ids, a.reason) for a in audits] == [
        ("/checks", [corrupted.code], "monthly check")
    ]
    # The GeoJSON stays the topology layer, as the CLI's --geojson file.
    geojson = admin.get("/checks", params={"format": "geojson"}).json()
    assert geojson["type"] == "FeatureCollection"
    assert corrupted.code not in str(geojson)


def test_a_planner_sees_the_mismatch_of_their_area_without_the_household(
    anon: TestClient,
    auth: dict[str, dict[str, str]],
    area_planners: dict[str, dict[str, str]],
    corrupted: Corrupted,
    gridded_engine: Engine,
) -> None:
    anonymized = {
        "table": "household",
        "key": None,
        "stored": STORED,
        "expected": corrupted.expected,
        "reason": f"covered by {corrupted.expected}, stored {STORED}",
        "lon": None,
        "lat": None,
    }
    planners = ["g-planner", *(f"g-planner-{p}" for p in area_planners)]
    before = {who: len(_household_audits(gridded_engine, who)) for who in planners}
    seen = {
        who: anon.get("/checks", headers=headers)
        for who, headers in {"street": auth["planner"], **area_planners}.items()
    }
    assert {who: r.status_code for who, r in seen.items()} == dict.fromkeys(seen, 200)
    assert {who: r.json()["assignment_mismatches"] for who, r in seen.items()} == {
        "street": [anonymized],  # the whole street
        "131208": [anonymized],  # where it lies (the expected grid)
        "131215": [anonymized],  # where it is filed (the stored grid)
        "131214": [],  # neither: not their area
    }
    for r in seen.values():
        assert corrupted.code not in r.text
    after = {who: len(_household_audits(gridded_engine, who)) for who in planners}
    assert after == before, "nothing personal was read, so nothing is audited"


@pytest.mark.parametrize("who", ["coordinator", "grid_worker", "care_staff", "device", "nobody"])
def test_other_roles_are_refused(
    anon: TestClient, auth: dict[str, dict[str, str]], corrupted: Corrupted, who: str
) -> None:
    r = anon.get("/checks", headers=auth[who])
    assert r.status_code == 403, r.text
    assert corrupted.code not in r.text


def test_anonymous_callers_are_refused(anon: TestClient, corrupted: Corrupted) -> None:
    r = anon.get("/checks")
    assert r.status_code == 401
    assert corrupted.code not in r.text


@dataclass(frozen=True)
class Miscoded:
    household: str  # a household of 131208-G01 coded as before keys were checked
    facility: str  # a facility of a grid of 131214


@pytest.fixture
def miscoded(gridded_engine: Engine) -> Iterator[Miscoded]:
    """A household coded ``12/3`` and a facility coded ``new`` by hand, as a database filled
    before such keys were refused holds them; their codes put back afterwards."""
    with transaction(gridded_engine) as session:
        household = session.execute(
            text(
                "SELECT h.id, h.code FROM household h JOIN grid g ON g.id = h.grid_id "
                "WHERE g.code = '131208-G01' ORDER BY h.id LIMIT 1"
            )
        ).one()
        facility = session.execute(
            text(
                "SELECT f.id, f.source_id FROM facility f JOIN grid g ON g.id = f.grid_id "
                "WHERE g.code LIKE '131214-%' ORDER BY f.id LIMIT 1"
            )
        ).one()
        session.execute(
            text("UPDATE household SET code = '12/3' WHERE id = :id"), {"id": household.id}
        )
        session.execute(
            text("UPDATE facility SET source_id = 'new' WHERE id = :id"), {"id": facility.id}
        )
    try:
        yield Miscoded("12/3", "new")
    finally:
        with transaction(gridded_engine) as session:
            session.execute(
                text("UPDATE household SET code = :c WHERE id = :id"),
                {"c": household.code, "id": household.id},
            )
            session.execute(
                text("UPDATE facility SET source_id = :c WHERE id = :id"),
                {"c": facility.source_id, "id": facility.id},
            )


def test_a_clean_database_has_no_unaddressable_key(admin: TestClient) -> None:
    assert admin.get("/checks").json()["unaddressable_keys"] == []


def test_an_active_account_under_the_systems_own_name_fails_the_check(
    admin: TestClient, gridded_engine: Engine
) -> None:
    """Made before the name was refused, ``gridwork`` in any case is named, and ``ok`` is
    false for monitoring, until the account is disabled."""
    assert admin.get("/checks").json()["system_named_accounts"] == []
    with stored_before_the_rule(gridded_engine, "GRIDWORK"):
        found = admin.get("/checks").json()
        assert found["system_named_accounts"] == ["GRIDWORK"] and found["ok"] is False
        with transaction(gridded_engine) as session:
            session.execute(text("UPDATE app_user SET active = false WHERE username = 'GRIDWORK'"))
        assert admin.get("/checks").json()["system_named_accounts"] == []


def test_keys_no_path_can_open_are_listed_for_recoding(
    admin: TestClient,
    anon: TestClient,
    area_planners: dict[str, dict[str, str]],
    miscoded: Miscoded,
    gridded_engine: Engine,
) -> None:
    before = len(_household_audits(gridded_engine, "g-admin"))
    r = admin.get("/checks", params={"reason": "after the upgrade"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is False
    keys = r.json()["unaddressable_keys"]
    assert [(k["table"], k["key"], k["grid"][:6]) for k in keys] == [
        ("household", "12/3", "131208"),
        ("facility", "new", "131214"),
    ]
    assert "cannot contain '/'" in keys[0]["reason"] and "'new'" in keys[1]["reason"]
    # The household is still there and still cannot be opened: why it must be recoded.
    assert admin.get("/households/12%2F3").status_code == 404
    audits = _household_audits(gridded_engine, "g-admin")[before:]
    assert [(a.subject_ids, a.reason) for a in audits] == [(["12/3"], "after the upgrade")]
    # A planner of the household's parish learns of it without its code; another parish's
    # planner is told of its own facility only.
    seen = {
        p: anon.get("/checks", headers=area_planners[p]).json()["unaddressable_keys"]
        for p in ("131208", "131214")
    }
    assert [(k["table"], k["key"]) for k in seen["131208"]] == [("household", None)]
    assert [(k["table"], k["key"]) for k in seen["131214"]] == [("facility", "new")]


def test_postgis_reads_the_refused_characters_as_the_rule_does(gridded_engine: Engine) -> None:
    """The store's search (``REFUSED_CHARACTERS_SQL`` in PostgreSQL) finds exactly the
    characters the domain's rule refuses, over every ASCII character."""
    with gridded_engine.connect() as conn:
        found = set(
            conn.execute(
                text("SELECT c FROM generate_series(1, 127) c WHERE ('a' || chr(c) || 'b') ~ :p"),
                {"p": REFUSED_CHARACTERS_SQL},
            ).scalars()
        )
    assert found == {c for c in range(1, 128) if key_problem(f"a{chr(c)}b") is not None}
