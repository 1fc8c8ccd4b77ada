"""Role × route × area: every route of the OpenAPI document (and /ogc items and tiles), asked
by every role — scoped to one community and to one grid — about a target inside and outside
that area, over real HTTP on a real PostGIS.

The expected answer is derived from the policy (:mod:`data.policy`), never copied here: each
route names its :class:`~data.policy.Action` (``require(action).gridwork_action``), and

* signed out → 401;
* a role the policy does not allow the action → 403;
* allowed, target outside the caller's area → the route *kind*'s refusal: 404 for a row,
  403 for writing a point outside one's area, a withheld/absent entry for lists and
  ``/assign``, a 422 reject for bulk uploads (the row untouched);
* allowed and inside → 2xx (a few body-only exemptions, listed in ``BODY_EXEMPT``);
* ``/ogc`` is district-wide only: scoped callers get 403 (``/viewer`` sends them to their
  area's grid map instead).

"Inside" for a plan, and for any ``plan_grids`` act (redrawing a grid, drafting a plan),
means holding the community (street or community scope), not one grid of it (``data.policy``
module docstring). Each route's cells are collected and asserted once, so a failure reads as
a list of (role, area, expected, got).
"""

from __future__ import annotations

import io
import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text

from api.app import create_app
from data.care.queries import NewAlert, insert_alerts
from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.incidents import queries as cases_q
from data.models import Role, ScopeLevel
from data.policy import Action, roles_for
from data.settings import Settings
from tests.factory import PASSWORD, Account, add_accounts, add_key, database, make_app, sign_in
from tests.policy.routes import action_of, walk

SCOPED_ROLES = (Role.planner, Role.coordinator, Role.grid_worker, Role.care_staff)
# A department's account (职能部门) sees and handles the cases handed to its department, and
# nothing by area: it gets a community scope (the in-area community: the area it serves, so
# cases there may be handed to it) to show that a scope lends it nothing to see. For it, "in"
# and "out" are about hand-over, not place (see ``_case_target``). MX-OTHER has no account:
# it serves everywhere, so staff hand out-of-area cases to it.
DEPT, OTHER_DEPT = "MX-DEPT", "MX-OTHER"
CASE_CATEGORY = "street_light"  # seeded (migration 0012), first level: grid
AREAS = ("in", "out")
OPEN = {"/health", "/token"}  # answer without credentials on purpose
SELF = {"/me"}  # any signed-in caller, about their own account
# /viewer draws the district-wide tiles for unrestricted callers and sends scoped staff to
# their area's grid map (303 → /maps/grids), so it is asked like a list of their area.
DISTRICT_WIDE: set[str] = set()
OGC_VIEWS = (
    "streets",
    "communities",
    "grids",
    "roads",
    "facilities",
)  # migration 0005  # like /ogc: unrestricted callers only (api.ogc.district_wide)
CONSENT = {"given_by": "the elder", "given_on": "2026-01-05", "scope": "locate when lost"}

# Routes whose valid body cannot be built from the targets alone: inside the area, an
# allowed caller may get these 4xx (caused by the body), never 401/403/404.
BODY_EXEMPT: dict[tuple[str, str], set[int]] = {
    # A valid move needs units on a shared edge with a neighbouring grid of the draft.
    ("POST", "/plans/{plan_id}/moves"): {409, 422},
    # The plan's own state decides these: a fresh draft has nothing to redo, is not waiting
    # for a date to withdraw, and has no new grids whose workers to confirm.
    ("POST", "/plans/{plan_id}/redo"): {409},
    ("POST", "/plans/{plan_id}/withdraw"): {409},
    ("POST", "/plans/{plan_id}/workers"): {409, 422},
}


# --- the routes and the action each names -------------------------------------------------


def _document() -> list[tuple[str, str, Action | None]]:
    app = create_app(Settings(state_dir=Path(tempfile.mkdtemp(prefix="gridwork-matrix-"))))
    actions = {
        (method, path): action_of(route)
        for path, route in walk(app.routes)
        for method in route.methods or ()
    }
    rows = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            rows.append((method.upper(), path, actions.get((method.upper(), path))))
    # OGC API Features and Tiles (tipg, mounted at /ogc): each served view's items and tiles
    for view in OGC_VIEWS:
        rows.append(("GET", f"/ogc/collections/ogc.{view}/items", None))
        rows.append(("GET", f"/ogc/collections/ogc.{view}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
                     None))  # fmt: skip
    rank = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
    # Reads first, destruction last, publishing (which replaces a community's grids) at the end.
    rows.sort(key=lambda r: (r[1].endswith("/publish"), rank.get(r[0], 5), r[1]))
    return rows


ROUTES = _document()


# --- who is asking ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    name: str
    role: Role | None
    scope: str | None  # "community", "grid", or None (admin: everywhere; device; anonymous)

    def __str__(self) -> str:
        return self.name


WHO = [
    Who("signed-out", None, None),
    Who("device", Role.device, None),
    Who("admin", Role.admin, None),
    *[Who(f"{r.value}@{s}", r, s) for r in SCOPED_ROLES for s in ("community", "grid")],
    Who("department@community", Role.department, "community"),
]


@dataclass(frozen=True)
class Place:
    street: str
    community: str
    grid: str
    grid_id: int
    worker: str | None
    lon: float
    lat: float


@dataclass
class World:
    client: TestClient
    engine: Engine
    places: dict[str, Place]
    headers: dict[str, dict[str, str]]
    user_ids: dict[str, int] = field(default_factory=dict)  # Who.name → app_user.id
    shared: dict[tuple[str, str], Any] = field(default_factory=dict)
    serial: Iterator[int] = field(default_factory=itertools.count)

    @property
    def admin(self) -> dict[str, str]:
        return self.headers["admin"]

    def ok(self, method: str, url: str, **kw: Any) -> Any:
        r = self.client.request(method, url, headers=self.admin, **kw)
        assert r.status_code < 300, f"setup {method} {url}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    # fresh targets, made by an admin through the API
    def household(self, area: str) -> str:
        p, code = self.places[area], f"MX-H-{area}-{next(self.serial)}"
        self.ok("POST", "/households", json={"code": code, "lon": p.lon, "lat": p.lat})
        return code

    def facility(self, area: str) -> str:
        p, sid = self.places[area], f"MX-F-{area}-{next(self.serial)}"
        self.ok("POST", "/facilities", json={"source_id": sid, "kind": "clinic", "lon": p.lon,
                                            "lat": p.lat})  # fmt: skip
        return sid

    def incident(self, area: str) -> str:
        p, sid = self.places[area], f"MX-I-{area}-{next(self.serial)}"
        self.ok("POST", "/incidents", json={"source_id": sid, "category": "noise", "lon": p.lon,
                                           "lat": p.lat})  # fmt: skip
        return sid

    def elder(self, area: str) -> dict[str, Any]:
        n = next(self.serial)
        body = {
            "display_name": f"Elder {area} {n}",
            "household_code": self.shared[("home", area)],
            "device": {"device_id": f"mx-watch-{area}-{n}", "datum": "wgs84"},
            "consent": CONSENT,
        }
        return dict(self.ok("POST", "/elders", json=body))

    def alert(self, area: str) -> int:
        elder = self.shared[("elder", area)]
        grid_id = self.places[area].grid_id
        with transaction(self.engine) as session:
            (alert_id,) = insert_alerts(
                session,
                [NewAlert(elder["id"], "sos", datetime.now(UTC), None, grid_id, grid_id, "m")],
            )
        return alert_id

    def case(self, area: str, department: str | None = None) -> int:
        """A case reported by an admin at the area's place (routed to its grid's worker),
        handed to ``department`` when one is named."""
        p = self.places[area]
        body = {"category": CASE_CATEGORY, "lon": p.lon, "lat": p.lat,
                "description": f"matrix case {area} {next(self.serial)}",
                "reporter_contact": "+351 000"}  # fmt: skip
        case_id = int(self.ok("POST", "/cases", json=body)["id"])
        if department is not None:
            self.ok("POST", f"/cases/{case_id}/handoff", json={"department": department})
        return case_id

    def notice(self, case_id: int, *, level: str = "grid", user_id: int | None = None) -> int:
        """A notice about a case: to one account, or (no account) to the staff of a level."""
        with transaction(self.engine) as session:
            cases_q.add_notice(session, case_id, at=datetime.now(UTC), level=level,
                               kind="escalated", user_id=user_id)  # fmt: skip
            return int(
                session.execute(
                    text("SELECT max(id) FROM case_notice WHERE case_id = :c"), {"c": case_id}
                ).scalar_one()
            )

    def plan(self, area: str) -> int:
        body = {"community": self.places[area].community, "min": 1, "max": 10_000}
        return int(self.ok("POST", "/plans", json=body)["id"])

    def user(self, area: str) -> str:
        name = f"mx-victim-{area}-{next(self.serial)}"
        add_accounts(self.engine, [Account(name, Role.coordinator)])
        return name

    def key(self, area: str) -> str:
        name = f"mx-key-{area}-{next(self.serial)}"
        add_key(self.engine, name)
        return name


def _place(engine: Engine, community: str, street: str) -> Place:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT g.code, g.id, w.code, ST_X(p), ST_Y(p) FROM grid g "
                "LEFT JOIN worker w ON w.id = g.worker_id "
                "CROSS JOIN LATERAL ST_PointOnSurface(g.geom) AS p "
                "WHERE g.code LIKE :c || '-%' AND g.valid_to IS NULL ORDER BY g.code LIMIT 1"
            ),
            {"c": community},
        ).one()
    return Place(street, community, row[0], int(row[1]), row[2], float(row[3]), float(row[4]))


@pytest.fixture(scope="module")
def world(server_url: str) -> Iterator[World]:
    """Porto cut into grids in a database of this module's own; accounts and targets."""
    url = database(server_url, "gridwork_test_matrix", "porto_strips")
    engine = make_engine(url)
    with engine.connect() as conn:
        communities = conn.execute(
            text(
                "SELECT c.code, coalesce(s.code, '') FROM community c "
                "LEFT JOIN street s ON s.id = c.street_id "
                "WHERE EXISTS (SELECT 1 FROM grid g WHERE g.community_id = c.id) ORDER BY c.code"
            )
        ).all()
    (a_code, a_street), (b_code, b_street) = communities[0], communities[-1]
    places = {"in": _place(engine, a_code, a_street), "out": _place(engine, b_code, b_street)}
    scopes = {
        "community": ((ScopeLevel.community, a_code),),
        "grid": ((ScopeLevel.grid, places["in"].grid),),
    }
    add_accounts(
        engine,
        [Account("mx-admin", Role.admin)]
        + [Account(f"mx-{w.name}", w.role, scopes[w.scope]) for w in WHO if w.scope and w.role],
    )
    # Grid workers read the households of the grids they are the worker of (data.policy):
    # the grid-scoped one is the worker of the in-area grid, the community-scoped one the
    # worker of another grid of the community (so the in-area households are not theirs).
    with engine.connect() as conn:
        other = conn.execute(
            text(
                "SELECT w.code FROM grid g JOIN worker w ON w.id = g.worker_id "
                "WHERE g.code LIKE :c || '-%' AND w.code <> :w AND g.valid_to IS NULL "
                "ORDER BY g.code LIMIT 1"
            ),
            {"c": a_code, "w": places["in"].worker},
        ).scalar_one()
    with transaction(engine) as session:
        link_worker_account(session, str(places["in"].worker), "mx-grid_worker@grid")
        link_worker_account(session, other, "mx-grid_worker@community")
        cases_q.save_department(session, DEPT, "矩阵部门", "Matrix department",
                                "mx-department@community")  # fmt: skip
        cases_q.save_department(session, OTHER_DEPT, "其他部门", "Another department", None)
    with engine.connect() as conn:
        user_ids = {
            "admin" if name == "mx-admin" else name.removeprefix("mx-"): int(uid)
            for name, uid in conn.execute(text("SELECT username, id FROM app_user")).all()
        }
    app = make_app(engine, ingest_per_minute=1_000_000, care_tick_seconds=0)
    with TestClient(app) as client:
        headers: dict[str, dict[str, str]] = {"signed-out": {}}
        for who in WHO:
            if who.role is None or who.role == Role.device:
                continue
            user = "mx-admin" if who.role == Role.admin else f"mx-{who.name}"
            headers[who.name] = sign_in(client, user)
        w = World(client, engine, places, headers, user_ids)
        for area in AREAS:
            w.shared[("household", area)] = w.household(area)
            w.shared[("home", area)] = w.household(area)
            w.shared[("facility", area)] = w.facility(area)
            w.shared[("incident", area)] = w.incident(area)
            elder = w.elder(area)
            w.shared[("elder", area)] = elder
            w.shared[("alert", area)] = w.alert(area)
            plan = w.plan(area)
            w.shared[("plan", area)] = plan
            w.shared[("plan_grid", area)] = w.ok("GET", f"/plans/{plan}")["grids"][0]["code"]
            # one fix, so that the location can be read
            p = places[area]
            r = client.get("/ingest/osmand", params={
                "id": elder["device_id"], "lat": p.lat, "lon": p.lon,
                "timestamp": int(datetime.now(UTC).timestamp()),
            }, headers={"X-API-Key": elder["api_key"]})  # fmt: skip
            assert r.status_code == 200 and r.json()["stored"] == 1, r.text
            # a facility filed in the wrong grid: an assignment mismatch for /checks
            sid = w.facility(area)
            w.shared[("mismatch", area)] = sid
            with transaction(engine) as session:
                session.execute(
                    text(
                        "UPDATE facility SET grid_id = (SELECT id FROM grid WHERE code <> :g "
                        "AND community_id = (SELECT community_id FROM grid WHERE code = :g) "
                        "AND valid_to IS NULL ORDER BY code LIMIT 1) WHERE source_id = :s"
                    ),
                    {"g": p.grid, "s": sid},
                )
            with engine.connect() as conn:
                w.shared[("road", area)] = conn.execute(
                    text(
                        "SELECT r.source_id FROM road_segment r JOIN grid g ON g.code = :g "
                        "AND ST_Within(r.geom, g.geom) ORDER BY r.id LIMIT 1"
                    ),
                    {"g": p.grid},
                ).scalar_one()
        # cases: one of each area (no department), and the department's pair (_case_target):
        # one handed to it, one handed to another department, both in the area of its scope
        for area in AREAS:
            w.shared[("case", area)] = w.case(area)
        w.shared[("dept_case", "in")] = w.case("in", DEPT)
        w.shared[("dept_case", "out")] = w.case("in", OTHER_DEPT)
        # the newest notices, to the staff of the grid and of the community of each case
        # (only those whose area holds the case may read them)
        for area in AREAS:
            for level in ("grid", "community"):
                w.shared[("notice", area)] = w.notice(w.shared[("case", area)], level=level)
            # and to the district's: an account of the whole district reads only those
            w.notice(w.shared[("case", area)], level="district")
        headers["device"] = {"X-API-Key": w.shared[("elder", "in")]["api_key"]}
        yield w
    engine.dispose()


# --- what each route is asked, by kind ----------------------------------------------------


@dataclass
class Ask:
    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    files: Any = None
    form: Any = None
    kind: str = "row"  # row | create | list | assign | upload | open | self | district_wide
    #                    | create_row | ingest | pass_on
    target: str = ""  # the target kind ("plan" is held by communities)
    marker: Any = None  # what a list shows for the target (str: quoted; (key, int); a test)
    untouched: Any = None  # (table, key column, key, grid id): for upload rejects


def _csv(key: str, value: str, p: Place, extra: str = "") -> Any:
    head = f"{key},lon,lat{',' + extra.split('=')[0] if extra else ''}\n"
    row = f"{value},{p.lon},{p.lat}{',' + extra.split('=')[1] if extra else ''}\n"
    return {"file": ("rows.csv", io.BytesIO((head + row).encode()), "text/csv")}


def mercantile_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return t.x, t.y


def ask(w: World, method: str, path: str, who: Who, area: str, fresh: bool) -> Ask:
    p, s = w.places[area], w.shared
    today = date.today().isoformat()
    reason = {"reason": "matrix test"}

    def get(kind: str) -> Any:
        return getattr(w, kind)(area) if fresh else s[(kind, area)]

    route = (method, path)
    if path == "/token":
        return Ask(method, path, form={"username": "mx-admin", "password": PASSWORD}, kind="open")
    if path in OPEN:
        return Ask(method, path, kind="open")
    if path in SELF:
        return Ask(method, path, kind="self")
    if path.startswith("/ogc/"):
        if path.endswith("/items"):
            bbox = f"{p.lon - 0.001},{p.lat - 0.001},{p.lon + 0.001},{p.lat + 0.001}"
            return Ask(method, path, params={"bbox": bbox}, kind="district_wide")
        tile = mercantile_tile(p.lon, p.lat, 15)
        url = path.replace("{z}", "15").replace("{x}", str(tile[0])).replace("{y}", str(tile[1]))
        return Ask(method, url, kind="district_wide")
    if path in DISTRICT_WIDE:
        return Ask(method, path, kind="district_wide")
    if path == "/assign":
        return Ask(method, path, json={"points": [[p.lon, p.lat]]}, kind="assign", target="grid")
    if path == "/locate":
        return Ask(method, path, params={"lon": p.lon, "lat": p.lat}, target="grid")
    if path.startswith("/ingest/"):
        elder = s[("elder", area)]
        fix = {"id": elder["device_id"], "lat": p.lat, "lon": p.lon,
               "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
        if path == "/ingest/batch":
            return Ask(method, path, json={"fixes": [fix]}, kind="ingest", target="device")
        return Ask(method, path, params=fix, kind="ingest", target="device")
    if path == "/basemap":  # roads and outlines, "no personal data, the same for all staff"
        bbox = f"{p.lon - 0.002},{p.lat - 0.002},{p.lon + 0.002},{p.lat + 0.002}"
        return Ask(method, path, params={"bbox": bbox, "zoom": 16}, kind="list")
    if path == "/viewer":  # unrestricted: the tiles; scoped: sent on to their grid map
        return Ask(method, path, kind="list")
    if path in ("/audit", "/metrics"):  # admins only; no rows of an area (counts, latencies)
        return Ask(method, path, kind="list")
    if path in ("/admin/users", "/admin/keys"):
        return Ask(method, path, kind="list")
    if path.startswith("/admin/users/"):
        name = w.user(area) if fresh else "mx-nobody"
        return Ask(method, path.replace("{username}", name), target="user")
    if path == "/admin/keys/{name}":
        return Ask(method, path.replace("{name}", w.key(area) if fresh else "mx-nokey"))
    # plans
    if route == ("POST", "/plans"):
        return Ask(method, path, json={"community": p.community, "min": 1, "max": 10_000},
                   kind="create_row", target="community")  # fmt: skip
    if route == ("GET", "/plans"):
        return Ask(method, path, kind="list", target="plan", marker=("id", s[("plan", area)]))
    if path == "/plans/compare":
        plan = s[("plan", area)]
        return Ask(method, path, params={"a": plan, "b": plan}, target="plan")
    if path.startswith("/plans/{plan_id}"):
        own = who.role == Role.admin or (who.scope == "community" and area == "in")
        plan = w.plan(area) if fresh and own and path.endswith("/publish") else s[("plan", area)]
        url = path.replace("{plan_id}", str(plan)).replace("{fmt}", "geojson")
        body: Any = None
        if path.endswith("/moves"):
            body = {"units": [0], "to_grid": s[("plan_grid", area)]}
        elif path.endswith("/locks"):
            body = {"grids": [s[("plan_grid", area)]], "locked": True}
        elif path.endswith("/publish"):
            body = {}
        elif path.endswith("/workers") and method == "POST":
            body = {"workers": {s[("plan_grid", area)]: None}}
        return Ask(method, url, json=body, target="plan")
    if path == "/grids/on":
        return Ask(method, path, params={"lon": p.lon, "lat": p.lat, "date": today},
                   target="grid")  # fmt: skip
    if path == "/communities/oversize":
        # community-level rows: shown for communities held, not for one grid of them
        return Ask(method, path, params={"min": 1, "max": 2}, kind="list", target="held",
                   marker=p.grid)  # fmt: skip
    # layers and reports: the target's own row (or grid) in the answer, or not
    layer_markers = {
        # the two communities may share a street: then it says nothing about the area
        "/streets": p.street if area == "in" or p.street != w.places["in"].street else None,
        "/communities": p.community,
        "/grids": p.grid,
        "/roads": s[("road", area)],
        "/facilities": s[("facility", area)],
        "/incidents": s[("incident", area)],
        "/elders": ("id", s[("elder", area)]["id"]),
        "/alerts": ("id", s[("alert", area)]),
        "/checks": s[("mismatch", area)],
        "/grids/out-of-band": p.grid,
        "/maps/grids": p.grid,
        "/maps/workload": p.grid,
        "/maps/incidents": p.grid,
        "/maps/coverage": p.grid,
        "/coverage": p.grid,
    }
    if method == "GET" and path in layer_markers:
        params: dict[str, Any] = {}
        if path == "/grids/out-of-band":
            params = {"band": "1,2"}
        elif path in ("/maps/coverage", "/coverage"):
            params = {"kind": "clinic"}
        elif path == "/maps/incidents":
            params = {"days": 30}
        return Ask(method, path, params=params, kind="list", marker=layer_markers[path])
    # grids
    if path.startswith("/grids/{code}"):
        url = path.replace("{code}", p.grid)
        if method == "PATCH":
            return Ask(method, url, json={"worker_code": p.worker}, target="grid")
        return Ask(method, url, params=reason if "households" in path else {}, target="grid")
    # households, facilities, incidents
    for kind, key, create in (
        ("household", "code", {"size": 1}),
        ("facility", "source_id", {"kind": "clinic"}),
        ("incident", "source_id", {"category": "noise"}),
    ):
        base = f"/{kind}s" if kind != "facility" else "/facilities"
        if route == ("POST", base):
            body = {key: f"MX-NEW-{kind}-{next(w.serial)}", **create, "lon": p.lon, "lat": p.lat}
            return Ask(method, path, json=body, kind="create", target=kind)
        if path == base + "/{" + key + "}":
            value = get(kind)
            update = {"household": {"size": 2}, "facility": {"capacity": 5},
                      "incident": {"status": "in_progress"}}[kind]  # fmt: skip
            return Ask(method, path.replace("{" + key + "}", value),
                       json=update if method == "PATCH" else None, target=kind)  # fmt: skip
        if path == base + "/upload":
            extra = {"household": "", "facility": "kind=clinic", "incident": "category=noise"}
            inside = w.places["in"] if who.role != Role.admin else p
            if area == "in":
                rows = _csv(key, f"MX-UP-{next(w.serial)}", p, extra[kind])
                return Ask(method, path, files=rows, kind="upload", target=kind)
            # the attack of issue 13 row 1: an existing key from elsewhere, placed in my area
            value = get(kind)
            table = {"household": "household", "facility": "facility", "incident": "incident"}
            return Ask(method, path, files=_csv(key, value, inside, extra[kind]), kind="upload",
                       target=kind, untouched=(table[kind], key, value, p.grid_id))  # fmt: skip
    # elders and alerts
    if route == ("POST", "/elders"):
        body = {"display_name": "new", "household_code": s[("home", area)],
                "device": {"device_id": f"mx-new-{next(w.serial)}", "datum": "wgs84"}}  # fmt: skip
        return Ask(method, path, json=body, kind="create_row", target="elder")
    if path == "/elders/{elder_id}/consents/{consent_id}/scan":
        # a consent of its own (recorded by an admin), its scan put there first for a read
        elder = w.elder(area) if fresh else s[("elder", area)]
        made = w.ok("POST", f"/elders/{elder['id']}/consent", json=CONSENT)
        url = path.replace("{elder_id}", str(elder["id"]))
        url = url.replace("{consent_id}", str(made["consent_id"]))
        if method == "GET":
            w.ok("PUT", url, files=_scan())
            return Ask(method, url, params=reason, target="elder")
        return Ask(method, url, files=_scan(), target="elder")
    if path.startswith("/elders/{elder_id}"):
        elder = w.elder(area) if fresh else s[("elder", area)]
        url = path.replace("{elder_id}", str(elder["id"]))
        params = {}
        body = None
        if (method == "GET" and path != "/elders/{elder_id}") or (
            route == ("DELETE", path) and (path == "/elders/{elder_id}")
        ):
            params = reason
        if path.endswith("/consent") and method == "POST":
            body = CONSENT
        elif path.endswith("/device") and method == "PUT":
            body = {"device_id": elder["device_id"], "datum": "wgs84"}
        elif path.endswith("/zone"):
            body = {"kind": "home_grid", "buffer_m": 100}
        return Ask(method, url, params=params, json=body, target="elder")
    if path.startswith("/alerts/{alert_id}"):
        alert = w.alert(area) if fresh else s[("alert", area)]
        return Ask(method, path.replace("{alert_id}", str(alert)), target="alert")
    if path == "/cases" or path.startswith("/cases/"):
        return _ask_case(w, method, path, who, area, fresh)
    raise AssertionError(f"no matrix kind for {method} {path}: add it to tests/policy/test_matrix")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 90, 20)).save(out, "PNG")
    return out.getvalue()


PNG = _png()  # a case photo (api.routers.case_photos)


def _scan() -> Any:
    """A scanned consent form (api.routers.consent_scans), as a fresh upload each time."""
    return {"scan": ("consent.png", io.BytesIO(PNG), "image/png")}


def _case_target(w: World, who: Who, area: str, fresh: bool, *, handed: bool = False) -> int:
    """The case a cell asks about.

    Staff: a case at the area's place (``handed``: one with a department serving it, for
    routes that need one). A department's account: "in" is a case handed to its department,
    "out" one handed to another department, both inside its scope (the area it serves). So
    for every /cases route about one case the department's answer is decided by hand-over
    alone: the route kind's in-area answer for a case it holds, its out-of-area answer
    (404 for a row, withheld for a list) for one it does not, at the same place."""
    if who.role == Role.department:
        if not fresh:
            return int(w.shared[("dept_case", area)])
        return w.case("in", DEPT if area == "in" else OTHER_DEPT)
    if not fresh:
        return int(w.shared[("case", area)])
    return w.case(area, _serving(area) if handed else None)


def _serving(area: str) -> str:
    """A department serving the area's place: the matrix department serves the in-area
    community only (its account's scope); the other serves everywhere."""
    return DEPT if area == "in" else OTHER_DEPT


def _ask_case(w: World, method: str, path: str, who: Who, area: str, fresh: bool) -> Ask:
    """The /cases routes (api.routers.cases). Rows answer 404 outside (the same answer as no
    case), lists and figures leave out what is not the caller's, a report outside the area is
    refused (403, like writing a point). For a department's account "in"/"out" mean handed to
    its department or not (``_case_target``), per kind:

    * row (one case, its moves, escalation, hand-over, return): 2xx for a case handed to it,
      404 for one that is not, even inside its scope;
    * list (``/cases``, ``/cases/notices``) and figures: its cases shown, others withheld;
    * the catalogue and the departments: no target, the same for every viewer;
    * reporting (``POST /cases``) and the catalogue's changes are not its actions: 403.
    """
    p, s = w.places[area], w.shared
    route = (method, path)
    mine = who.role == Role.department
    body: Any = None
    if route == ("GET", "/cases"):
        return Ask(method, path, kind="list", target="case",
                   marker=("id", _case_target(w, who, area, False)))  # fmt: skip
    if route == ("POST", "/cases"):
        body = {"category": CASE_CATEGORY, "lon": p.lon, "lat": p.lat,
                "description": f"matrix report {next(w.serial)}"}  # fmt: skip
        return Ask(method, path, json=body, kind="create", target="case")
    if path in ("/cases/categories", "/cases/departments"):
        return Ask(method, path, kind="list")  # the same catalogue for every viewer
    if path == "/cases/categories/{code}":
        code = f"mx-cat-{area}-{next(w.serial)}" if fresh else "mx-nocat"
        body = {"code": code, "name": "矩阵", "name_en": "Matrix", "first_level": "grid",
                "department": DEPT, "hours_grid": 24, "hours_community": 48,
                "hours_street": 72, "hours_district": 96}  # fmt: skip
        return Ask(method, path.replace("{code}", code), json=body, target="catalogue")
    if path == "/cases/departments/{code}":
        code = f"MX-D-{area}-{next(w.serial)}" if fresh else "MX-NODEPT"
        body = {"code": code, "name": "矩阵部门", "name_en": "Matrix"}
        return Ask(method, path.replace("{code}", code), json=body, target="catalogue")
    if route == ("GET", "/cases/notices"):
        # staff: the notices to the grid's and the community's staff (world); a department:
        # the one the hand-over sent it, not another department's
        return Ask(method, path, kind="list", target="case",
                   marker=("case_id", _case_target(w, who, area, False)))  # fmt: skip
    if path == "/cases/notices/{notice_id}/read":
        # a notice addressed to the caller: still unreadable when its case is not theirs
        notice = (
            w.notice(_case_target(w, who, area, False), user_id=w.user_ids[who.name])
            if fresh
            else s[("notice", area)]
        )
        return Ask(method, path.replace("{notice_id}", str(notice)), target="case")
    if route == ("GET", "/cases/figures"):
        now = datetime.now(UTC)
        level, code = ("department", DEPT if area == "in" else OTHER_DEPT) if mine else (
            "grid", p.grid)  # fmt: skip
        params = {"level": level, "code": code, "since": (now - timedelta(days=1)).isoformat(),
                  "until": (now + timedelta(days=1)).isoformat()}  # fmt: skip
        # the area's cases counted, or none of them (all zero)
        return Ask(method, path, params=params, kind="list", target="case", marker=_opened)
    if route == ("GET", "/cases/duplicates"):
        # asked at the target case's own place (0 m, same category): shown, or withheld
        case = _case_target(w, who, area, False)
        at = w.places["in" if mine else area]
        params = {"category": CASE_CATEGORY, "lon": str(at.lon), "lat": str(at.lat)}
        return Ask(method, path, params=params, kind="list", target="case", marker=("id", case))
    if path.startswith("/cases/{case_id}/photos"):
        case = _case_target(w, who, area, fresh)
        url = path.replace("{case_id}", str(case))
        if "{photo_id}" in path:
            if ("photo", str(case)) not in s:
                made = w.ok("POST", f"/cases/{case}/photos", files={"photo": ("m.png", PNG)})
                s[("photo", str(case))] = made["id"]
            url = url.replace("{photo_id}", str(s[("photo", str(case))]))
        files = {"photo": ("m.png", PNG, "image/png")} if method == "POST" else None
        return Ask(method, url, files=files, target="case")
    if path == "/cases/{case_id}/duplicate_of":
        case = _case_target(w, who, area, fresh)
        other = _case_target(w, who, area, fresh) if fresh else case  # refused before the body
        body = {"duplicate_of": other}
        return Ask(method, path.replace("{case_id}", str(case)), json=body, target="case")
    if path.startswith("/cases/{case_id}"):
        case = _case_target(w, who, area, fresh, handed=path.endswith("/return"))
        url = path.replace("{case_id}", str(case)).replace("{action}", "accept")
        if path.endswith("/escalate"):
            body = {"reason": "matrix test"}
        elif path.endswith("/handoff"):
            # staff hand a case to the department; a department tries to pass its case on
            body = {"department": OTHER_DEPT if mine else _serving(area), "note": "matrix test"}
            if mine and area == "in":
                # Departments give a case back (/return), they do not pass it on: the area's
                # handlers decide where it goes next (service.hand_to_department: 403, the
                # case still with its department).
                return Ask(method, url, json=body, kind="pass_on", target="case", marker=case)
        elif path.endswith("/return"):
            body = {"note": "matrix test done"}
        elif path.endswith("/{action}"):
            body = {"note": "matrix test"}
        return Ask(method, url, json=body, target="case")
    raise AssertionError(f"no matrix kind for {method} {path}: add it to tests/policy/test_matrix")


class _Opened:
    """``/cases/figures`` counted at least one case opened (the area's, or the department's)."""

    def __call__(self, body: Any) -> bool:
        return bool(body.get("opened"))

    def __repr__(self) -> str:
        return "opened > 0"


_opened = _Opened()


# --- what the policy expects -------------------------------------------------------------------

OUT_FORM = {
    "row": "404",
    "create_row": "404",
    "create": "403",  # api.routers.points._place: writing a point outside one's area
    "list": "withheld",
    "assign": "withheld",
    "upload": "reject",
    "ingest": "403",  # api.routers.ingest: "this key may not report for device …"
}
HOUSEHOLD_ACTIONS = (Action.read_households, Action.edit_households)


def _inside(who: Who, area: str, a: Ask, action: Action | None) -> bool:
    if who.role in (Role.admin, Role.device):  # admins: everywhere; a device: its own device
        return who.role == Role.admin or area == "in"
    if who.role == Role.department:  # "in": a case handed to its department (_case_target)
        return area == "in"
    if area == "out":
        return False
    if who.role == Role.grid_worker and action in HOUSEHOLD_ACTIONS:
        return who.scope == "grid"  # the worker of the in-area grid (see ``world``)
    # Plans belong to communities: a grid of one is not enough (data.policy).
    held = a.target in ("plan", "held") or action == Action.plan_grids
    return not (who.scope == "grid" and held)


def expected(who: Who, area: str, a: Ask, action: Action | None, route: tuple[str, str]) -> str:
    if a.kind == "open":
        return "ok"
    if who.role is None:
        return "401"
    if a.kind == "district_wide":
        return "ok" if who.role == Role.admin else "403"
    if a.kind == "self":
        return "ok"
    assert action is not None, f"{route} names no policy action"
    if who.role not in roles_for(action):
        return "403"
    if a.kind == "pass_on":  # a department's own case, passed on: refused, kept (_ask_case)
        return "kept"
    if a.kind == "list" and a.marker is None:
        return "ok"
    if _inside(who, area, a, action):
        return "ok"
    if a.target in ("grid", "community") and action == Action.plan_grids and area == "in":
        # visible (one grid of it is in the area) but not held: refused, not hidden
        return "403"
    return OUT_FORM[a.kind]


def _shows(r: Any, marker: Any) -> bool:
    if callable(marker):
        return bool(marker(r.json()))
    if isinstance(marker, tuple):
        key, value = marker

        def walk(node: Any) -> bool:
            if isinstance(node, dict):
                return node.get(key) == value or any(walk(v) for v in node.values())
            if isinstance(node, list):
                return any(walk(v) for v in node)
            return False

        return walk(r.json())
    if "html" in r.headers.get("content-type", ""):
        return marker in r.text
    return json.dumps(marker) in r.text


def judge(w: World, expect: str, a: Ask, r: Any, route: tuple[str, str]) -> str | None:
    """None when the answer is the expected one, else what was wrong."""
    code = r.status_code
    if expect == "ok":
        if code in BODY_EXEMPT.get(route, set()) or 200 <= code < 300:
            if (
                a.kind == "list"
                and a.marker is not None
                and code == 200
                and not _shows(r, a.marker)
            ):
                return f"{code} without the in-area row {a.marker!r}"
            if a.kind == "assign" and r.json()["results"][0]["withheld"]:
                return f"{code} but withheld"
            return None
        return f"{code} {r.text[:160]}"
    if expect == "withheld":
        if code != 200:
            return f"{code} {r.text[:160]}"
        if a.kind == "assign":
            return None if r.json()["results"][0]["withheld"] else "200, not withheld"
        return f"200 showing {a.marker!r}" if _shows(r, a.marker) else None
    if expect == "kept":
        with w.engine.connect() as conn:
            now = conn.execute(
                text(
                    "SELECT d.code FROM incident_case c LEFT JOIN department d "
                    "ON d.id = c.department_id WHERE c.id = :id"
                ),
                {"id": a.marker},
            ).scalar()
        if now != DEPT:
            return f"{code}; the case went from {DEPT} to {now}"
        return None if code == 403 else f"{code} {r.text[:160]}"
    if expect == "reject" and a.untouched is None:  # a new row outside what is mine
        return None if code == 422 else f"{code} {r.text[:160]}"
    if expect == "reject":
        table, key, value, grid_id = a.untouched
        with w.engine.connect() as conn:
            now = conn.execute(
                text(f"SELECT grid_id FROM {table} WHERE {key} = :k"),
                {"k": value},
            ).scalar()
        if now != grid_id:
            return f"{code}; the row moved from grid {grid_id} to {now}"
        return None if code == 422 else f"{code} {r.text[:160]}"
    return None if str(code) == expect else f"{code} {r.text[:160]}"


@pytest.mark.parametrize(
    ("method", "path", "action"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_route(world: World, method: str, path: str, action: Action | None) -> None:
    failures = []
    for who in WHO:
        allowed = action is not None and who.role in roles_for(action)
        for area in AREAS:
            a = ask(world, method, path, who, area, fresh=allowed and method != "GET")
            expect = expected(who, area, a, action, (method, path))
            r = world.client.request(
                a.method, a.url, params=a.params, json=a.json, files=a.files, data=a.form,
                headers=world.headers[who.name],
            )  # fmt: skip
            wrong = judge(world, expect, a, r, (method, path))
            if wrong:
                failures.append(f"  {who} / {area}: expected {expect}, got {wrong}")
    assert not failures, f"{method} {path} ({action}):\n" + "\n".join(failures)
