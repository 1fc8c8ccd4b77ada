"""Planners' work end to end on real Porto data: split, adjust, compare, publish, history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from babel.dates import format_datetime
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from data.db import alembic_config, make_engine
from data.models import Role
from tests.api.conftest import PASSWORD, STAFF, make_settings
from tests.factory import Account, add_accounts, database, make_app, signed_in

COMMUNITY = "131208"  # Miragaia, 899 estimated households


@pytest.fixture(scope="module")
def plans_engine(server_url: str) -> Iterator[Engine]:
    """A Porto database of this module's own: publishing changes grids for good."""
    url = database(server_url, "gridwork_test_plans", "porto")
    engine = make_engine(url)
    add_accounts(engine, [STAFF["planner"], STAFF["coordinator"]])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def planner(plans_engine: Engine) -> Iterator[TestClient]:
    # No snapping: a neighbour's households 10 m away must not count into these grids.
    app = make_app(plans_engine, snap_tolerance_m=0.0)
    with signed_in(app, STAFF["planner"].username) as client:
        yield client


def _draft(client: TestClient, **body: object) -> dict:
    r = client.post("/plans", json={"community": COMMUNITY, **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_split_puts_every_grid_in_the_band(planner: TestClient, plans_engine: Engine) -> None:
    plan = _draft(planner)
    with plans_engine.connect() as conn:
        inside = conn.execute(
            text(
                "SELECT count(*) FROM household h JOIN community c ON c.code = :c "
                "AND ST_Covers(c.geom, h.geom)"
            ),
            {"c": COMMUNITY},
        ).scalar()
    m = plan["metrics"]
    assert plan["status"] == "draft"
    assert m["in_band_share"] == 1.0
    assert m["contiguous_share"] == 1.0
    assert 150 <= m["households_min"] <= m["households_max"] <= 180
    # Households count where they are: a building astride the boundary counts on both sides.
    assert sum(g["households"] for g in plan["grids"]) == inside
    assert all(g["code"].startswith(f"{COMMUNITY}-G") for g in plan["grids"])


def test_same_seed_same_plan(planner: TestClient) -> None:
    a, b = _draft(planner, seed=7), _draft(planner, seed=7)
    assert [g["households"] for g in a["grids"]] == [g["households"] for g in b["grids"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min": 200, "max": 180}, "min"),
        ({"min": 0}, "min"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_name_the_field(planner: TestClient, body: dict, field: str) -> None:
    r = planner.post("/plans", json={"community": COMMUNITY, **body})
    assert r.status_code == 422
    assert field in r.json()["detail"]


def test_unknown_community_is_404(planner: TestClient) -> None:
    r = planner.post("/plans", json={"community": "NOPE"})
    assert r.status_code == 404
    assert r.json()["field"] == "community"


def test_a_move_that_breaks_the_band_is_refused_with_reasons_unless_forced(
    planner: TestClient,
) -> None:
    plan = _draft(planner)
    grids = planner.get(f"/plans/{plan['id']}/grids").json()["features"]
    assert len(grids) >= 2
    # A unit of the first grid that borders the second: try each until one is adjacent.
    units = list(range(600))
    target = grids[1]["properties"]["code"]
    refused = None
    for unit in units:
        r = planner.post(f"/plans/{plan['id']}/moves", json={"units": [unit], "to_grid": target})
        if r.status_code == 409 and any("households" in p for p in r.json()["problems"]):
            refused = unit
            break
    assert refused is not None, "no move was refused for the band"
    forced = planner.post(
        f"/plans/{plan['id']}/moves", json={"units": [refused], "to_grid": target, "force": True}
    )
    assert forced.status_code == 200
    assert forced.json()["moved"] is True
    after = planner.get(f"/plans/{plan['id']}").json()
    assert after["metrics"]["in_band_share"] < 1.0


def test_locked_grid_refuses_moves(planner: TestClient, plans_engine: Engine) -> None:
    """A unit of an unlocked grid, touching a locked one, may not be moved into it, even
    forced; once unlocked the same forced move goes through (so the lock was the reason)."""
    plan = _draft(planner)
    units = planner.get(f"/plans/{plan['id']}/units").json()
    grid_of = {f["properties"]["unit"]: f["properties"]["grid"] for f in units["features"]}
    unit, code = next(
        (a, grid_of[b])
        for u, v in units["edges"]
        for a, b in ((u, v), (v, u))
        if grid_of[a] != grid_of[b]
    )
    assert planner.post(f"/plans/{plan['id']}/locks", json={"grids": [code]}).status_code == 200
    move = {"units": [unit], "to_grid": code, "force": True}
    r = planner.post(f"/plans/{plan['id']}/moves", json=move)
    assert r.status_code == 409
    assert f"grid {code} is locked" in r.json()["problems"]
    assert not any("already" in p for p in r.json()["problems"])
    assert _grid_of_unit(planner, plan["id"], unit) == grid_of[unit]  # nothing moved

    unlock = {"grids": [code], "locked": False}
    assert planner.post(f"/plans/{plan['id']}/locks", json=unlock).status_code == 200
    r = planner.post(f"/plans/{plan['id']}/moves", json=move)
    assert r.status_code == 200, r.text
    assert r.json()["moved"] is True
    assert _grid_of_unit(planner, plan["id"], unit) == code
    # The page's list of changes says each in the page's language, newest first.
    said = {
        lang: [
            h["text"]
            for h in planner.get(
                f"/app/plans/{plan['id']}/history", headers={"Accept-Language": lang}
            ).json()
        ]
        for lang in ("en", "zh-CN")
    }
    assert said["en"] == [
        f"1 unit(s) moved into {code} despite the checks",
        f"Unlocked {code}",
        f"Locked {code}",
    ]
    # The API says it as data too (plan_step.forced), not only in its English summary.
    steps = planner.get(f"/plans/{plan['id']}/steps").json()["steps"]
    assert [(st["kind"], st["forced"]) for st in steps] == [
        ("move", True),
        ("unlock", False),
        ("lock", False),
    ]
    # Migration 0032 fills the column of the steps stored before it from their summaries.
    config = alembic_config(plans_engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "0031")
    command.upgrade(config, "heads")
    again = planner.get(f"/plans/{plan['id']}/steps").json()["steps"]
    assert [st["forced"] for st in again] == [True, False, False]
    assert said["zh-CN"] == [
        f"1 个单元划入 {code}（未通过检查，强制执行）",
        f"解锁 {code}",
        f"锁定 {code}",
    ]
    # The list of plans says when each was drawn at local time, not as a UTC stamp.
    drawn = datetime.fromisoformat(planner.get(f"/plans/{plan['id']}").json()["created_at"])
    local = format_datetime(drawn, "short", tzinfo=ZoneInfo("Asia/Shanghai"), locale="en")
    page = planner.get("/app/plans", headers={"Accept-Language": "en"}).text
    row = page[page.index(f'href="/app/plans/{plan["id"]}"') :]
    assert re.search(rf"<td[^>]*>{re.escape(local)}</td>", row[: row.index("</tr>")]), (
        local,
        row[:600],
    )


def _grid_of_unit(client: TestClient, plan_id: int, unit: int) -> str:
    features = client.get(f"/plans/{plan_id}/units").json()["features"]
    return next(str(f["properties"]["grid"]) for f in features if f["properties"]["unit"] == unit)


def test_compare_two_plans(planner: TestClient) -> None:
    a, b = _draft(planner, seed=1), _draft(planner, seed=2)
    table = planner.get("/plans/compare", params={"a": a["id"], "b": b["id"]}).json()
    metrics = {r["metric"] for r in table["rows"]}
    assert {"polsby_popper_mean", "road_share", "in_band_share", "n_grids"} <= metrics
    page = planner.get("/maps/plans", params={"a": a["id"], "b": b["id"]}).text
    assert f'src="/maps/plans/{a["id"]}"' in page
    assert planner.get(f"/maps/plans/{a['id']}").status_code == 200


def test_publish_replaces_grids_keeps_history_and_reassigns(
    planner: TestClient, plans_engine: Engine
) -> None:
    first = _draft(planner, seed=3)
    r = planner.post(f"/plans/{first['id']}/publish", json={"effective": "2026-01-01"})
    assert r.status_code == 200, r.text
    assert r.json()["grids_created"] == len(first["grids"])
    second = _draft(planner, seed=4)
    stale = _draft(planner, seed=5)
    r = planner.post(f"/plans/{second['id']}/publish", json={"effective": "2026-06-01"})
    assert r.status_code == 200, r.text
    # A plan drafted before the community's grids changed is refused.
    assert planner.post(f"/plans/{stale['id']}/publish").status_code == 409
    # A published plan cannot be published again.
    assert planner.post(f"/plans/{second['id']}/publish").status_code == 409

    with plans_engine.connect() as conn:
        current = conn.execute(
            text(
                "SELECT g.code, count(h.id) FROM grid g JOIN community c ON c.id = g.community_id "
                "LEFT JOIN household h ON h.grid_id = g.id "
                "WHERE c.code = :c AND g.valid_to IS NULL GROUP BY g.code"
            ),
            {"c": COMMUNITY},
        ).all()
        closed = conn.execute(
            text(
                "SELECT count(*) FROM grid g JOIN community c ON c.id = g.community_id "
                "WHERE c.code = :c AND g.valid_to = DATE '2026-06-01'"
            ),
            {"c": COMMUNITY},
        ).scalar()
        inside = conn.execute(
            text(
                "SELECT count(*) FROM household h JOIN community c ON c.code = :c "
                "AND ST_Covers(c.geom, h.geom)"
            ),
            {"c": COMMUNITY},
        ).scalar()
        statuses: dict[Any, Any] = dict(
            conn.execute(text("SELECT id, status::text FROM plan")).all()
        )
    assert len(current) == len(second["grids"])
    assert closed == len(first["grids"])
    assert sum(n for _, n in current) == inside
    assert all(150 <= n <= 180 for _, n in current)
    assert statuses[first["id"]] == "superseded"
    assert statuses[second["id"]] == "published"

    # Which grid was this address in on date D?
    point = {"lon": -8.6205, "lat": 41.1465}
    march = planner.get("/grids/on", params={**point, "date": "2026-03-01"}).json()
    july = planner.get("/grids/on", params={**point, "date": "2026-07-01"}).json()
    assert march["valid_from"] == "2026-01-01"
    assert july["valid_from"] == "2026-06-01"
    before = planner.get("/grids/on", params={**point, "date": "2025-01-01"})
    assert before.status_code == 404


def test_oversize_report_lists_ungridded_communities_over_the_band(planner: TestClient) -> None:
    body = planner.get("/communities/oversize").json()
    codes = {c["code"] for c in body["communities"]}
    assert {"131213", "131214", "131215"} <= codes
    assert planner.get("/communities/oversize", params={"min": 200, "max": 100}).status_code == 422


def test_coordinators_cannot_plan(plans_engine: Engine, planner: TestClient) -> None:
    url = plans_engine.url.render_as_string(hide_password=False)
    app = create_app(make_settings(url), engine=plans_engine)
    with TestClient(app) as client:
        token = client.post(
            "/token", data={"username": STAFF["coordinator"].username, "password": PASSWORD}
        ).json()["access_token"]
        r = client.post(
            "/plans", json={"community": COMMUNITY}, headers={"Authorization": f"Bearer {token}"}
        )
    assert r.status_code == 403


def test_effective_date_before_current_grids_is_refused(
    planner: TestClient, plans_engine: Engine
) -> None:
    with plans_engine.connect() as conn:
        current = conn.execute(
            text(
                "SELECT count(*) FROM grid g JOIN community c ON c.id = g.community_id "
                "WHERE c.code = :c AND g.valid_to IS NULL"
            ),
            {"c": COMMUNITY},
        ).scalar_one()
    if not current:  # run alone: the community gets grids from today first
        first = _draft(planner, seed=8)
        r = planner.post(f"/plans/{first['id']}/publish", json={"effective": str(date.today())})
        assert r.status_code == 200, r.text
    plan = _draft(planner, seed=9)
    r = planner.post(f"/plans/{plan['id']}/publish", json={"effective": str(date(2020, 1, 1))})
    assert r.status_code == 422
    assert r.json()["field"] == "effective"


def test_a_planner_whose_name_starts_like_the_systems_is_audited_as_a_planner(
    plans_engine: Engine,
) -> None:
    """The switch's audit row took any actor whose name began with "gridwork" for the system
    (role "system"); it is the planner's, by whoever published it."""
    someone = Account("gridwork-ops", Role.planner, STAFF["planner"].scopes)
    add_accounts(plans_engine, [someone])
    with signed_in(make_app(plans_engine, snap_tolerance_m=0.0), someone.username) as client:
        draft = _draft(client, seed=6)
        r = client.post(f"/plans/{draft['id']}/publish", json={"effective": "2026-09-01"})
        assert r.status_code == 200, r.text
    with plans_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT actor, role FROM audit_log WHERE method = 'SWITCH' "
                "AND :p = ANY(subject_ids)"
            ),
            {"p": str(draft["id"])},
        ).one()
    assert tuple(row) == ("gridwork-ops", "planner")
