"""Use cases that move data in: import a file, derive households, load the Porto sample.

Each runs in one transaction, so a failure anywhere leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from data.assignment.service import assign_after_import
from data.crs import metric_epsg
from data.db import transaction
from data.district.checks import run_checks
from data.district.hierarchy import attach_buildings_to_communities, district_outline, read_level
from data.importing.importer import TARGETS, ImportReport, upsert
from data.importing.readers import Kind, Progress, read_layer
from data.settings import Settings
from geo.district.households import estimate_households, place_households, scale_to_population

PORTO = Path(__file__).resolve().parent.parent / "samples" / "porto" / "porto.gpkg"


def _after_import(session: Session, kind: str) -> None:
    """Keep derived links current: buildings in their community, the district's outline."""
    if kind in ("buildings", "communities"):
        attach_buildings_to_communities(session.connection())
    if kind == "streets":
        district_outline(session.connection())


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
        report = upsert(
            session,
            kind,
            result.frame,
            source=result.source,
            prior_rejects=result.rejects,
            allow_rejects=allow_rejects,
            progress=progress,
        )
        _after_import(session, kind)
        metric_epsg(session, settings.metric_epsg if settings else None)
        assign_after_import(session, kind, settings=settings)
        # Fresh statistics now, not at autovacuum's next round: a table that grew from
        # nothing is otherwise planned as nearly empty (sequential scans, bad join orders).
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
        upsert(session, "households", frame, source="derive households")
        assign_after_import(session, "households", settings=settings)
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
            f"{len(report.rejects)} rejected"
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
            publish(session, plan_id, effective=date.today(), settings=settings)
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
