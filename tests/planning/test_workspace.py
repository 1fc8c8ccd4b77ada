"""The planner's workspace through the API and pages (issue 16): units as GeoJSON, moves
kept as steps with undo and redo, locks the splitter honours, exports, the pages; and the
same plan from the same data and seed in any process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, sign_in

COMMUNITY = "131208"
PLANNER = Account("t-wplanner", Role.planner, ((ScopeLevel.community, COMMUNITY),))
OTHER = Account("t-oplanner", Role.planner, ((ScopeLevel.community, "131213"),))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    url = database(server_url, "gridwork_test_plan_workspace", "porto")
    eng = make_engine(url)
    add_accounts(eng, [PLANNER, OTHER])
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)) as c:
        c.headers.update(sign_in(c, PLANNER.username))
        yield c


def _draft(client: TestClient, seed: int = 1) -> dict:
    r = client.post("/plans", json={"community": COMMUNITY, "seed": seed})
    assert r.status_code == 201, r.text
    return r.json()


def _counts(client: TestClient, plan_id: int) -> dict[str, int]:
    return {g["code"]: g["households"] for g in client.get(f"/plans/{plan_id}").json()["grids"]}


def _border_unit(units: dict, source: str, target: str) -> int:
    grid = {f["properties"]["unit"]: f["properties"]["grid"] for f in units["features"]}
    for u, v in units["edges"]:
        for a, b in ((u, v), (v, u)):
            if grid[a] == source and grid[b] == target:
                return a
    raise AssertionError(f"{source} does not touch {target}")


def test_units_undo_redo_lock_and_resplit(client: TestClient, engine: Engine) -> None:
    plan = _draft(client)
    pid = plan["id"]
    units = client.get(f"/plans/{pid}/units").json()
    assert units["type"] == "FeatureCollection" and units["edges"]
    props = units["features"][0]["properties"]
    assert {"unit", "grid", "households", "level", "locked", "current_grid"} <= set(props)
    assert sum(f["properties"]["households"] for f in units["features"]) == sum(
        g["households"] for g in plan["grids"]
    )
    codes = sorted(g["code"] for g in plan["grids"])
    before = _counts(client, pid)
    # A forced move (the band breaks) is stored as a step; undo and redo replay it exactly.
    unit = _border_unit(units, codes[0], codes[1])
    check = client.post(
        f"/plans/{pid}/moves", json={"units": [unit], "to_grid": codes[1], "check_only": True}
    )
    assert check.status_code in (200, 409)
    assert _counts(client, pid) == before
    r = client.post(
        f"/plans/{pid}/moves", json={"units": [unit], "to_grid": codes[1], "force": True}
    )
    assert r.status_code == 200, r.text
    moved = _counts(client, pid)
    assert moved != before and sum(moved.values()) == sum(before.values())
    assert client.post(f"/plans/{pid}/undo").status_code == 200
    assert _counts(client, pid) == before
    # Kept with the plan: a new client (a reload) can redo it.
    with TestClient(client.app) as other:
        other.headers.update(sign_in(other, PLANNER.username))
        assert other.get(f"/plans/{pid}/steps").json()["can_redo"] is True
        assert other.post(f"/plans/{pid}/redo").status_code == 200
    assert _counts(client, pid) == moved
    assert client.post(f"/plans/{pid}/undo").status_code == 200
    assert client.post(f"/plans/{pid}/undo").status_code == 409  # nothing left
    steps = client.get(f"/plans/{pid}/steps").json()["steps"]
    assert [s["state"] for s in steps] == ["undone"] and steps[0]["author"] == PLANNER.username

    # Lock one grid; re-split the rest: the locked grid keeps exactly its units.
    kept = codes[0]
    assert client.post(f"/plans/{pid}/locks", json={"grids": [kept]}).status_code == 200
    mine = sorted(
        f["properties"]["unit"] for f in units["features"] if f["properties"]["grid"] == kept
    )
    r = client.post(f"/plans/{pid}/resplit", json={"seed": 5})
    assert r.status_code == 200, r.text
    after = client.get(f"/plans/{pid}/units").json()
    assert (
        sorted(
            f["properties"]["unit"] for f in after["features"] if f["properties"]["grid"] == kept
        )
        == mine
    )
    assert all(
        f["properties"]["locked"] for f in after["features"] if f["properties"]["grid"] == kept
    )
    kinds = [s["kind"] for s in client.get(f"/plans/{pid}/steps").json()["steps"]]
    assert kinds[:2] == ["resplit", "lock"]
    # Undoing the re-split gives the old assignment back.
    assert client.post(f"/plans/{pid}/undo").status_code == 200
    back = client.get(f"/plans/{pid}/units").json()
    assert [f["properties"]["grid"] for f in back["features"]] == [
        f["properties"]["grid"] for f in units["features"]
    ]


def test_exports_and_pages(client: TestClient, tmp_path: Path) -> None:
    plan = _draft(client, seed=2)
    pid = plan["id"]
    csv_text = client.get(f"/plans/{pid}/export.csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("unit,grid,")
    gj = client.get(f"/plans/{pid}/export.geojson").json()
    assert len(gj["features"]) == len(plan["grids"])
    gpkg = tmp_path / "p.gpkg"
    gpkg.write_bytes(client.get(f"/plans/{pid}/export.gpkg").content)
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert {"grids", "units"} <= layers
    assert client.get(f"/plans/{pid}/export.shp").status_code == 422
    home = client.get("/app/plans")
    assert home.status_code == 200 and COMMUNITY in home.text
    # Plans are named by their community's name, as the chooser names it.
    assert f'<td>Miragaia <span class="muted">{COMMUNITY}</span></td>' in home.text
    editor = client.get(f"/app/plans/{pid}")
    assert editor.status_code == 200 and 'id="planmap"' in editor.text
    assert re.search(rf"<h1>[^<]*Miragaia \({COMMUNITY}\)</h1>", editor.text)
    assert client.get(f"/app/plans/{pid}/print", params={"paper": "A3"}).status_code == 200
    other = _draft(client, seed=3)
    cmp = client.get("/app/plans/compare", params={"a": pid, "b": other["id"]})
    assert cmp.status_code == 200 and "map-b" in cmp.text
    assert re.search(rf"<h1>[^<]*Miragaia \({COMMUNITY}\)</h1>", cmp.text)
    # The plans to compare with are offered with their state in the page's language, on the
    # compare page and in the editor's own "compare with".
    for path in (f"/app/plans/compare?a={pid}", f"/app/plans/{pid}"):
        zh = client.get(path, headers={"Accept-Language": "zh-CN"}).text
        offered = re.findall(r'<option value="\d+"[^>]*>方案 \d+ \(([^)]*)\)</option>', zh)
        states = {"草案", "已发布", "已被替换", "等待生效"}
        assert offered and set(offered) <= states, (path, offered)


def test_plans_of_a_community_not_held_are_404(client: TestClient, engine: Engine) -> None:
    plan = _draft(client, seed=4)
    with TestClient(client.app) as c:
        c.headers.update(sign_in(c, OTHER.username))
        for path in ("/units", "/steps", "/export.csv"):
            assert c.get(f"/plans/{plan['id']}{path}").status_code == 404
        assert c.post(f"/plans/{plan['id']}/undo").status_code == 404
        assert c.get(f"/app/plans/{plan['id']}").status_code == 404


SCRIPT = """
import hashlib, sys
from data.db import make_engine, transaction
from data.planning.service import _community, community_units
from data.settings import Settings
from geo.planning.split import split_community
url = sys.argv[1]
engine = make_engine(url)
with transaction(engine) as s:
    c = _community(s, "131208")
    units = community_units(s, c, epsg=32629, snap_m=0.0)
r = split_community(units, seed=1, code_prefix="G")
print(hashlib.sha256(repr(sorted(r.assignment.items())).encode()).hexdigest())
"""


def _plan_in_process(url: str, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_same_data_and_seed_give_the_same_plan_in_any_process(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    first = _plan_in_process(url, "1")
    assert _plan_in_process(url, "4242") == first
    # The same rows stored in another physical order (as a second load, or any UPDATE,
    # leaves them): the plan must not follow the heap's order.
    with engine.begin() as conn:
        conn.execute(text("UPDATE building SET households = households WHERE id % 2 = 0"))
        conn.execute(text("UPDATE household SET geom = geom WHERE id % 3 = 0"))
        conn.execute(text("UPDATE road_segment SET geom = geom WHERE id % 2 = 1"))
    assert _plan_in_process(url, "99") == first
