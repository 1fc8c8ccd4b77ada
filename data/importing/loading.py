"""Use cases that move data in: import a file, derive households, load the Porto sample.

Each runs in one transaction, so a failure anywhere leaves the database as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from data.access.reasons import said
from data.assignment.service import assign_after_import, load_grid_index, placement_columns
from data.care.service import mend_home_zones
from data.crs import metric_epsg
from data.db import transaction
from data.district.checks import run_checks
from data.district.hierarchy import attach_buildings_to_communities, district_outline, read_level
from data.importing.importer import TARGETS, ImportReport, upsert
from data.importing.readers import Kind, Progress, read_layer
from data.incidents.service import follow_grid_workers
from data.models import Role
from data.settings import Settings
from geo.district.households import estimate_households, place_households, scale_to_population

PORTO = Path(__file__).resolve().parent.parent / "samples" / "porto" / "porto.gpkg"


def _after_import(session: Session, kind: str) -> None:
    """Keep derived links current: buildings in their community, the district's outline."""
    if kind in ("buildings", "communities"):
        attach_buildings_to_communities(session.connection())
    if kind == "streets":
        district_outline(session.connection())


def _placed_before_write(
    session: Session, kind: str, frame: gpd.GeoDataFrame, settings: Settings | None
) -> gpd.GeoDataFrame | None:
    """Households with their grid decided before they are written, so that the upsert stores
    each row once with its grid (issue 19); None for the other kinds, whose hook reassigns
    the whole table after the write, and for a frame that is not all points.

    The grids are indexed in the import's own transaction, as the after-write hook indexed
    them: a household import changes no grid, so the answer is the hook's, row for row. Rows
    the upsert will refuse are placed too (assigning a point costs about a microsecond);
    they are dropped with the rest of their row.
    """
    if kind != "households" or frame.empty:
        return None
    points = frame.geometry.to_numpy()
    if not bool((shapely.get_type_id(points) == 0).all()):
        return None  # not what the readers give; the hook will read whatever was stored
    index = load_grid_index(session, settings=settings)
    return frame.assign(**placement_columns(index, shapely.get_x(points), shapely.get_y(points)))


def _written_keys(kind: str, frame: gpd.GeoDataFrame, report: ImportReport) -> list[str] | None:
    """The households an import wrote (the file's rows less those refused), so that only they
    are assigned when they were not placed before the write; None, the whole table, for the
    other kinds.

    Households are the table that grows to millions and arrives district by district; the
    facility and incident tables are small and keep their whole-table pass.
    """
    if kind != "households":
        return None
    refused = {r.row for r in report.rejects}
    kept = frame[~frame["_row"].isin(refused)] if refused else frame
    return list(dict.fromkeys(str(k) for k in kept[TARGETS[kind].key] if k is not None))


def import_file(
    engine: Engine,
    kind: Kind,
    path: Path,
    *,
    layer: str | None = None,
    id_field: str | None = None,
    crs: str | int | None = None,
    allow_rejects: bool = False,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Read, validate and upsert one layer; all-or-nothing unless ``allow_rejects``."""
    result = read_layer(
        path,
        kind=kind,
        layer=layer,
        id_field=id_field,
        crs=crs,
        progress=progress,
    )
    with transaction(engine) as session:
        placed = _placed_before_write(session, kind, result.frame, settings)
        report = upsert(
            session,
            kind,
            result.frame if placed is None else placed,
            source=result.source,
            prior_rejects=result.rejects,
            allow_rejects=allow_rejects,
            progress=progress,
            placed=placed is not None,
        )
        _after_import(session, kind)
        epsg = metric_epsg(session, settings.metric_epsg if settings else None)
        if placed is None:
            assign_after_import(
                session, kind, settings=settings, keys=_written_keys(kind, result.frame, report)
            )
        if kind in ("households", "grids") and epsg is not None:
            # Households moved or grids replaced: elders' "home grid" zones follow (their home
            # grid already did, by 0036's trigger), as they do after a plan or a register edit.
            mend_home_zones(session, epsg=epsg)
        if kind == "grids":  # new outlines or workers: open cases go to the grid's worker
            follow_grid_workers(
                session,
                None,  # every current grid
                actor="gridwork (grid import)",
                webhook_url=settings.case_webhook_url if settings else None,
            )
        # Fresh statistics now, not at autovacuum's next round: a table that grew from
        # nothing is otherwise planned as nearly empty (sequential scans, bad join orders).
        # A file that changed no row leaves them as they are.
        if report.inserted or report.updated:
            session.execute(text(f"ANALYZE {TARGETS[kind].table}"))
    return report


@dataclass(frozen=True)
class CommunityHouseholds:
    community: str
    buildings: int
    households: int
    scaled: bool


def derive_households(
    engine: Engine, *, seed: int, settings: Settings
) -> list[CommunityHouseholds]:
    """Replace the estimated households with a fresh, seeded estimate; keep registered ones.

    Buildings of communities with a known census population are scaled to it, so that the
    total matches the census while the footprint decides where people live.
    """
    with transaction(engine) as session:
        conn = session.connection()
        epsg = metric_epsg(session, settings.metric_epsg)
        buildings = read_level(conn, "buildings")
        communities = read_level(conn, "communities")
        if epsg is None or buildings.empty:
            return []
        metric = buildings.to_crs(epsg).set_index("source_id")
        metric["building"] = metric["building"].fillna("yes")
        estimated = estimate_households(metric)
        populations = {
            r.code: int(r.population)
            for r in communities.itertuples()
            if pd.notna(r.population) and r.code in set(estimated["community_code"].dropna())
        }
        scaled = scale_to_population(estimated, populations, community_col="community_code")
        points = place_households(
            scaled,
            scaled["households"],
            seed,
            community_col="community_code",
            populations=populations,
        ).to_crs(4326)
        session.execute(text("DELETE FROM household WHERE estimated"))
        session.execute(
            text(
                "UPDATE building SET households = NULL, households_estimated = false "
                "WHERE households_estimated"
            )
        )
        frame = gpd.GeoDataFrame(
            {
                "code": [
                    f"E-{b}-{h + 1}"
                    for b, h in zip(points["building_id"], points["household"], strict=True)
                ],
                "size": points["size"].to_numpy(),
                "lives_alone": points["lives_alone"].to_numpy(),
                "building_source_id": points["building_id"].astype(str).to_numpy(),
                "estimated": True,
                "_row": range(1, len(points) + 1),
            },
            geometry=points.geometry.values,
            crs=4326,
        )
        # A registered household keeps its code: an estimate of the same code (the household
        # of that building and number, corrected by a worker since) is not written over it.
        registered = set(
            session.execute(
                text("SELECT code FROM household WHERE code = ANY(:codes)"),
                {"codes": frame["code"].tolist()},
            ).scalars()
        )
        if registered:
            frame = frame[~frame["code"].isin(registered)]
        placed = _placed_before_write(session, "households", frame, settings)
        upsert(
            session,
            "households",
            frame if placed is None else placed,
            source="derive households",
            placed=placed is not None,
        )
        if placed is None:
            assign_after_import(session, "households", settings=settings, keys=list(frame["code"]))
        counts = scaled["households"]
        session.execute(
            text(
                "UPDATE building SET households = :n, households_estimated = true "
                "WHERE source_id = :sid"
            ),
            [{"n": int(n), "sid": str(sid)} for sid, n in counts.items() if n > 0],
        )
    summary = scaled.groupby("community_code").agg(
        buildings=("households", lambda s: int((s > 0).sum())), households=("households", "sum")
    )
    return [
        CommunityHouseholds(str(code), int(r.buildings), int(r.households), code in populations)
        for code, r in summary.iterrows()
    ]


PORTO_DISTRICT = ("PORTO", "Porto")
PORTO_STREET = ("PORTO-CH", "Centro Histórico (Miragaia, São Nicolau, Sé, Vitória)")


def load_porto(engine: Engine, *, settings: Settings) -> Iterator[str]:
    """The demo city: OSM parishes as communities under one street, roads, buildings, facilities.

    The four parishes were merged in 2013 into one union parish; gridwork shows them as
    communities of one street (街道) that is their union, which is how a 街道 relates to its
    社区. Codes are the parishes' INE codes. Idempotent: a second run updates in place.
    """
    communities = read_layer(
        PORTO, kind="communities", layer="communities", id_field="ref_code", crs=None
    )
    union = communities.frame.geometry.union_all()
    with transaction(engine) as session:
        session.execute(
            text(
                "INSERT INTO district (code, name) VALUES (:c, :n) "
                "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name"
            ),
            {"c": PORTO_DISTRICT[0], "n": PORTO_DISTRICT[1]},
        )
        street = gpd.GeoDataFrame(
            {
                "code": [PORTO_STREET[0]],
                "name": [PORTO_STREET[1]],
                "district_code": [PORTO_DISTRICT[0]],
                "_row": [1],
            },
            geometry=[union],
            crs=4326,
        )
        upsert(session, "streets", street, source="porto street")
        district_outline(session.connection())
        frame = communities.frame.assign(street_code=PORTO_STREET[0])
        upsert(session, "communities", frame, source=communities.source)
    yield f"communities: {len(communities.frame)} under street {PORTO_STREET[0]}"
    layers: tuple[tuple[Kind, str], ...] = (
        ("roads", "streets"),
        ("buildings", "buildings"),
        ("facilities", "facilities"),
    )
    for kind, layer in layers:
        report = import_file(engine, kind, PORTO, layer=layer, id_field="osm_id", settings=settings)
        yield (
            f"{kind}: {report.inserted} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejects)} rejected"
        )
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM household")).scalar_one()
    if have:
        # Re-estimating would renumber every household and void the published grids' history.
        yield f"households: {have} kept (delete them and rerun to estimate afresh)"
    else:
        for row in derive_households(engine, seed=1, settings=settings):
            yield f"households in {row.community}: {row.households} (estimated from buildings)"
    checks = run_checks(engine, settings=settings)
    yield f"topology checks: {len(checks.issues)} issue(s)"


def plan_ungridded(engine: Engine, *, settings: Settings, author: str) -> Iterator[str]:
    """Give every community without grids planner-made grids, and publish them.

    This is how the demo gets its grids: no hand-drawn polygons, the same split a planner
    would run (150-180 households, seed 1). Communities that have grids are left alone, so
    a second run changes nothing.
    """
    from data.planning.service import draft_plan, plan_summary, publish

    with engine.connect() as conn:
        codes = (
            conn.execute(
                text(
                    "SELECT c.code FROM community c WHERE NOT EXISTS (SELECT 1 FROM grid g "
                    "WHERE g.community_id = c.id AND g.valid_to IS NULL) ORDER BY c.code"
                )
            )
            .scalars()
            .all()
        )
    for code in codes:
        with transaction(engine) as session:
            plan_id = draft_plan(
                session,
                code,
                min_households=settings.household_min,
                max_households=settings.household_max,
                seed=1,
                author=author,
                settings=settings,
            )
            metrics = plan_summary(session, plan_id)["metrics"]
            publish(session, plan_id, effective=settings.today(), settings=settings)
        yield (
            f"community {code}: plan {plan_id} published, {metrics['n_grids']} grids, "
            f"{metrics['in_band_share']:.0%} in band, households "
            f"{metrics['households_min']}-{metrics['households_max']}"
        )


#: Fictional grid workers' names for the demo (no real person): family + given name.
_DEMO_FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_DEMO_GIVEN = ("敏", "静", "伟", "芳", "磊", "洋", "丽", "军", "霞", "杰", "婷", "强", "燕", "涛")


def staff_the_grids(engine: Engine) -> Iterator[str]:
    """Give every current grid without a worker a fictional worker of its community (demo).

    Worker codes are ``DW-<grid code>``; a second run finds every grid staffed and changes
    nothing.
    """
    with transaction(engine) as session:
        grids = session.execute(
            text(
                "SELECT g.id, g.code, g.community_id FROM grid g "
                "WHERE g.valid_to IS NULL AND g.worker_id IS NULL ORDER BY g.code"
            )
        ).all()
        for n, (grid_id, code, community_id) in enumerate(grids):
            name = (
                _DEMO_FAMILY[n % len(_DEMO_FAMILY)]
                + _DEMO_GIVEN[(n // len(_DEMO_FAMILY) + n) % len(_DEMO_GIVEN)]
            )
            worker_id = session.execute(
                text(
                    "INSERT INTO worker (code, display_name, community_id) VALUES (:c, :n, :m) "
                    "ON CONFLICT (code) DO UPDATE SET display_name = EXCLUDED.display_name "
                    "RETURNING id"
                ),
                {"c": f"DW-{code}", "n": name, "m": community_id},
            ).scalar_one()
            session.execute(
                text("UPDATE grid SET worker_id = :w WHERE id = :g"), {"w": worker_id, "g": grid_id}
            )
    yield f"grid workers: {len(grids)} grids given a (fictional) worker"


# --------------------------------------------------------------------------- the demo world

SYNTHETIC_DISTRICT = (
    Path(__file__).resolve().parent.parent
    / "samples"
    / "synthetic-district"
    / "synthetic-district.gpkg"
)
#: The order the synthetic district's layers import in: each level needs its parent, grids
#: name their worker, buildings hold the households.
SAMPLE_LAYERS: tuple[Kind, ...] = (
    "streets",
    "communities",
    "workers",
    "grids",
    "roads",
    "buildings",
    "facilities",
    "households",
)


def load_sample(
    engine: Engine,
    *,
    settings: Settings,
    path: Path = SYNTHETIC_DISTRICT,
    layers: tuple[Kind, ...] = SAMPLE_LAYERS,
) -> Iterator[str]:
    """The synthetic district (or another file with the same layers), layer by layer in the
    order that works; idempotent (rows are upserted by their codes)."""
    for kind in layers:
        report = import_file(engine, kind, path, layer=kind, settings=settings)
        yield (
            f"{kind}: {report.inserted} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejects)} rejected"
        )
    checks = run_checks(engine, settings=settings)
    yield f"topology checks: {len(checks.issues)} issue(s)"


@dataclass(frozen=True)
class DemoElder:
    """A fictional elder of the demo and their watch; ``key`` is the watch's API key."""

    elder_id: int
    device_code: str
    datum: str
    key: str
    wanders: bool  # the one whose walks leave the safe zone
    home_lon: float
    home_lat: float


DEMO_DEVICE = "DEMO-WATCH-{}"
DEMO_CLIENT = "gridwork demo"
#: The wanderer's safe zone: a circle this wide around home, so that a walk leaves it in a
#: few minutes of the demo rather than an hour.
DEMO_WANDER_RADIUS_M = 150.0
_DEMO_ELDER_NAMES = ("王奶奶", "李爷爷", "张奶奶", "刘爷爷", "陈奶奶")


def _demo_user(session: Session, username: str) -> tuple[int, Role, Any] | None:
    from data.access.queries import find_user, resolve_scope

    user = find_user(session, username)
    if user is None:
        return None
    return user.id, user.role, resolve_scope(session, user.role, user.id)


def enrol_demo_elders(
    engine: Engine,
    *,
    settings: Settings,
    keys: Mapping[str, str],
    count: int = 4,
    care_user: str = "demo-care",
    gcj02: bool = False,
) -> list[DemoElder]:
    """``count`` fictional elders in the area of ``care_user``, each enrolled through the
    care service with a (fictional, marked demo) consent, a watch with its key and a safe
    zone around home (the first elder's a 150 m circle: the one who wanders off).

    A second run finds the watches enrolled and reuses them: with the key in ``keys`` when
    it is still live, else a new key for the same watch (keys are stored only as digests).
    With ``gcj02`` the second watch reports in GCJ-02 (in China only).
    """
    from data.access.queries import find_api_keys, write_audit
    from data.care import queries as care_q
    from data.care import service as care
    from data.models.care import DeviceDatum

    out: list[DemoElder] = []
    with transaction(engine) as session:
        user = _demo_user(session, care_user)
        epsg = metric_epsg(session, settings.metric_epsg)
        if user is None or epsg is None:
            return []
        _, role, scope = user
        grid_ids = scope.sql_ids("grid")
        homes = session.execute(
            text(
                "SELECT code, lon, lat FROM (SELECT DISTINCT ON (h.grid_id) h.code, g.code AS g, "
                "ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat FROM household h "
                "JOIN grid g ON g.id = h.grid_id AND g.valid_to IS NULL "
                "WHERE (CAST(:ids AS int[]) IS NULL OR h.grid_id = ANY(:ids)) "
                "ORDER BY h.grid_id, h.lives_alone DESC, h.code) s ORDER BY g LIMIT :n"
            ),
            {"ids": grid_ids, "n": count},
        ).all()
        live = find_api_keys(session, list(keys.values()))
        for n, (household, lon, lat) in enumerate(homes, start=1):
            code = DEMO_DEVICE.format(n)
            datum = DeviceDatum.gcj02 if gcj02 and n == 2 else DeviceDatum.wgs84
            elder_id = care_q.device_owner(session, code)
            key = keys.get(code)
            if elder_id is None:
                enrolled = care.enrol(
                    session,
                    display_name=f"（演示）{_DEMO_ELDER_NAMES[(n - 1) % 5]} {n} — demo, fictional",
                    household_code=household,
                    emergency_contact="演示：虚构，无真实联系人 / demo: fictional, no real contact",
                    device_code=code,
                    datum=datum,
                    consent=care.ConsentRecord(
                        given_by=(
                            f"演示：虚构的监护人（非真人） / DEMO: fictional guardian of demo "
                            f"elder {n} (not a real person)"
                        ),
                        given_on=settings.today() - timedelta(days=30 + n),
                        scope=(
                            "演示：走失时定位，通知网格员 / DEMO (fictional): locate when "
                            "lost; alert the grid worker"
                        ),
                    ),
                    by=care_user,
                    scope=scope,
                    epsg=epsg,
                    today=settings.today(),
                )
                elder_id, key = enrolled.elder_id, enrolled.api_key
                if n == 1:
                    care.circle_zone(
                        session,
                        elder_id,
                        lon=float(lon),
                        lat=float(lat),
                        radius_m=DEMO_WANDER_RADIUS_M,
                        epsg=epsg,
                    )
                write_audit(
                    session,
                    actor=care_user,
                    role=role.value,
                    method="CLI",
                    route="gridwork demo",
                    subject_type="elder",
                    subject_ids=[elder_id],
                    reason=said("demo_elder"),
                )
            elif key is None or key not in live:
                key = care.replace_device(session, elder_id, device_code=code, datum=datum)
            datum_now = session.execute(
                text("SELECT datum::text FROM device WHERE device_code = :c"), {"c": code}
            ).scalar_one()
            out.append(
                DemoElder(elder_id, code, str(datum_now), key, n == 1, float(lon), float(lat))
            )
    return out


#: The demo's cases: category, what was seen, and where the case is taken to.
DEMO_CASES: tuple[tuple[str, str, str], ...] = (
    ("street_light", "路灯不亮 / street light out at the corner", "new"),
    ("leaking_pipe", "人行道下漏水 / water seeping from under the pavement", "accepted"),
    ("rubbish", "垃圾堆在路边 / rubbish bags left at the kerb", "resolved"),
    ("elder_visit", "独居老人需要探访 / an elder living alone asked for a visit", "accepted"),
    ("fire_access", "消防通道被车辆堵住 / a van parked across the fire lane", "in_progress"),
    ("dispute", "邻里噪音纠纷 / neighbours in dispute over noise", "new"),
    ("road_damage", "路面坑洞 / a pothole in the road", "overdue"),
    ("street_light", "路灯闪烁 / street light flickering", "closed"),
    ("rubbish", "建筑垃圾 / building rubble dumped", "department"),
    ("leaking_pipe", "消火栓漏水 / hydrant dripping", "escalated"),
    ("elder_visit", "老人多日未出门 / an elder not seen for days", "new"),
    ("road_damage", "井盖松动 / a loose manhole cover", "accepted"),
)


def report_demo_incidents(engine: Engine, *, now: datetime) -> Iterator[str]:
    """A dozen fictional cases reported through the case flow (data.incidents.service) at
    points inside the demo coordinator's grids, taken to various states: some accepted or
    in progress, one resolved, one closed, one overdue (reported days ago, so the sweep
    escalates it), one escalated by hand, one with a department. Skipped when the demo's
    cases exist already."""
    from data.incidents import service as cases

    with transaction(engine) as session:
        have = session.execute(
            text("SELECT count(*) FROM incident_case WHERE client = :c"), {"c": DEMO_CLIENT}
        ).scalar_one()
        if have:
            yield f"incidents: {have} demo cases kept"
            return
        coordinator = _demo_user(session, "demo-coordinator")
        worker = _demo_user(session, "demo-worker")
        if coordinator is None:
            yield "incidents: no demo-coordinator, no demo cases"
            return
        worker_grids = set(worker[2].sql_ids("grid") or ()) if worker else set()
        grids = session.execute(
            text(
                "SELECT id FROM grid WHERE valid_to IS NULL "
                "AND (CAST(:ids AS int[]) IS NULL OR id = ANY(:ids)) ORDER BY code"
            ),
            {"ids": coordinator[2].sql_ids("grid")},
        ).scalars()
        ordered = sorted(grids, key=lambda g: (g not in worker_grids, 0))
        if not ordered:
            yield "incidents: the demo area has no grids, no demo cases"
            return
        states: Counter[str] = Counter()
        for i, (category, what, state) in enumerate(DEMO_CASES):
            grid_id = ordered[i % len(ordered)]
            lon, lat = session.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 1, "
                    ":seed))).geom AS p FROM grid WHERE id = :g) s"
                ),
                {"g": grid_id, "seed": i + 1},
            ).one()
            mine = worker is not None and grid_id in worker_grids
            who_id, _, who_scope = worker if mine and worker else coordinator
            name = "demo-worker" if mine else "demo-coordinator"
            opened = now - (
                timedelta(days=10) if state == "overdue" else timedelta(minutes=30 + 5 * i)
            )
            case_id = cases.report_case(
                session,
                actor=name,
                category=category,
                lon=float(lon),
                lat=float(lat),
                description=f"（演示）{what} — demo, fictional",
                now=opened,
                scope=who_scope,
                client=DEMO_CLIENT,
            )["id"]
            viewer = cases.viewer(session, who_scope, who_id, name)
            later = opened + timedelta(minutes=5)
            steps = {
                "accepted": ["accept"],
                "in_progress": ["accept", "start"],
                "resolved": ["accept", "resolve"],
                "closed": ["accept", "resolve", "close"],
            }.get(state, [])
            for n, action in enumerate(steps):
                note = "demo: done" if action == "resolve" else None
                cases.act(session, viewer, case_id, action, note, later + timedelta(minutes=n))
            if state == "escalated":
                cases.escalate(session, viewer, case_id, "demo: needs the community", later)
            if state == "department":
                cases.hand_to_department(session, viewer, case_id, None, "demo", later)
            states[state] += 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    yield f"incidents: {len(DEMO_CASES)} demo cases reported ({shown})"
