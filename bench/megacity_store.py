"""The megacity in a store: imported through gridwork's own import path, then assigned.

``python -m bench.megacity load --scale S`` (issue 19) generates the city when
``.gridwork/megacity/`` does not hold that scale, drops and recreates the database
``gridwork_bench_megacity`` and imports every layer with :func:`data.importing.loading.
import_file`, the code ``gridwork import`` runs (streets as :func:`~data.importing.loading.
load_porto` imports them, since a street file cannot name its district). Each layer's time is
split into the product's own steps, timed where they are called (:class:`Steps`): reading and
validating the file, the upsert, the derived links, and the assignment hook.

Then the households' assignment is timed on its own, from a cleared ``grid_id``, three ways
over the same stored points:

* gridwork: :func:`data.assignment.service.reassign`'s steps (the grid index, a binary
  ``COPY`` out, the in-process index, a ``COPY`` in and one ``UPDATE``), what
  ``gridwork assign`` runs;
* ``geopandas.sjoin(predicate="covered_by")`` over the same points in memory, the lowest
  code kept where a point lies on a shared edge (the same rule);
* set-based SQL, ``UPDATE household SET grid_id = grid_covering(geom)``.

Households are also written once with ``GeoDataFrame.to_postgis`` into a scratch table: the
obvious way to put a file into PostGIS, with no validation, no upsert and no assignment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
import sqlalchemy.exc
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from bench.bench_db import fresh_database
from data.assignment.service import (
    assigned_grid_ids,
    load_grid_index,
    read_points,
    write_changes,
)
from data.cluster import LocalCluster
from data.db import make_engine, migrate, transaction
from data.district.hierarchy import district_outline
from data.importing import loading
from data.importing.importer import upsert
from data.importing.loading import import_file, load_sample
from data.importing.readers import Kind, read_layer
from data.settings import Settings

DATABASE = "gridwork_bench_megacity"
DISTRICT_DATABASE = "gridwork_bench_district"
#: Layers after the streets, in the order that works (each level needs its parent, the
#: households their buildings), with the column holding each row's id where it is not found.
LAYERS: tuple[tuple[Kind, str | None], ...] = (
    ("communities", None),
    ("grids", None),
    ("roads", None),
    ("buildings", "building_id"),
    ("facilities", None),
    ("households", None),
)
#: Generator file → stored table, for the counts.
TABLES = {
    "districts": "district",
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "roads": "road_segment",
    "buildings": "building",
    "facilities": "facility",
    "households": "household",
}
STEPS = ("read", "upsert", "derive", "assign")


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# --- timing the product's own steps ---------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall seconds, this process's CPU seconds and the CPU seconds of the database's own
    backends (read from ``/proc``, so the server must run on this machine).

    On a machine shared with other work the wall clock grows with everyone's load; CPU
    seconds grow only with the work done, which is what a per-unit comparison between two
    scales needs.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def now(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), self._server_cpu()

    def _server_cpu(self) -> float:
        with self.engine.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
            total = 0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # gone, or the server is elsewhere
                    continue
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICK


@dataclass
class Spent:
    """Wall and CPU seconds (client, server) of one step."""

    wall: float = 0.0
    client: float = 0.0
    server: float = 0.0

    @property
    def cpu(self) -> float:
        return self.client + self.server

    def add(self, start: tuple[float, float, float], end: tuple[float, float, float]) -> None:
        self.wall += end[0] - start[0]
        self.client += end[1] - start[1]
        self.server += end[2] - start[2]


@contextmanager
def measured(meter: Meter, spent: Spent) -> Iterator[Spent]:
    start = meter.now()
    try:
        yield spent
    finally:
        spent.add(start, meter.now())


class Steps:
    """Time spent in named functions of a module while :meth:`timing` is open.

    The functions are wrapped where the module calls them and put back afterwards: the
    import runs exactly as ``gridwork import`` runs it, only timed step by step.
    """

    def __init__(self, meter: Meter, module: ModuleType, names: dict[str, str]) -> None:
        self.meter = meter
        self.module = module
        self.names = names  # function name in the module -> step

    @contextmanager
    def timing(self) -> Iterator[dict[str, Spent]]:
        originals = {name: getattr(self.module, name) for name in self.names}
        spent = {step: Spent() for step in self.names.values()}
        for name, original in originals.items():
            setattr(self.module, name, self._timed(spent[self.names[name]], original))
        try:
            yield spent
        finally:
            for name, original in originals.items():
                setattr(self.module, name, original)

    def _timed(self, spent: Spent, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with measured(self.meter, spent):
                return fn(*args, **kwargs)

        return timed


IMPORT_STEPS = {
    "read_layer": "read",
    "_placed_before_write": "assign",  # households: placed before the upsert (0cc7d80)
    "upsert": "upsert",
    "_after_import": "derive",
    "assign_after_import": "assign",  # the other kinds: after the write
}


class LayerLoad(NamedTuple):
    """One layer imported: the rows written, its time, and its time in each step."""

    kind: str
    rows: int
    total: Spent
    steps: dict[str, Spent]


# --- the load ---------------------------------------------------------------------------------


def load_megacity(engine: Engine, source: Path, settings: Settings) -> list[LayerLoad]:
    """Every layer of the generated city under ``source`` into an empty, migrated store."""
    meter = Meter(engine)
    done = [_districts_and_streets(engine, source, meter)]
    steps = Steps(meter, loading, IMPORT_STEPS)
    for kind, id_field in LAYERS:
        with measured(meter, Spent()) as total, steps.timing() as spent:
            report = import_file(
                engine, kind, source / f"{kind}.fgb", id_field=id_field, settings=settings
            )
        done.append(LayerLoad(kind, report.inserted + report.updated, total, spent))
    return done


def _districts_and_streets(engine: Engine, source: Path, meter: Meter) -> LayerLoad:
    """Districts by code, then the streets under them, as :func:`load_porto` does it."""
    spent = {step: Spent() for step in STEPS}
    with measured(meter, Spent()) as total:
        with measured(meter, spent["read"]):
            result = read_layer(source / "streets.fgb", kind="streets")
        parents = pyogrio.read_dataframe(
            source / "streets.fgb", columns=["code", "district_code"], read_geometry=False
        )
        district_of = dict(zip(parents["code"], parents["district_code"], strict=True))
        districts = pyogrio.read_dataframe(
            source / "districts.fgb", columns=["code"], read_geometry=False
        )
        with transaction(engine) as session:
            session.execute(
                text("INSERT INTO district (code, name) VALUES (:c, :c)"),
                [{"c": str(c)} for c in districts["code"]],
            )
            frame = result.frame.assign(district_code=result.frame["code"].map(district_of))
            with measured(meter, spent["upsert"]):
                report = upsert(session, "streets", frame, source=result.source)
            with measured(meter, spent["derive"]):
                district_outline(session.connection())
    return LayerLoad("streets", report.inserted, total, spent)


def store_counts(engine: Engine) -> dict[str, int]:
    """Rows per generator layer in the store, and households still without a grid."""
    with engine.connect() as conn:
        counts = {
            name: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for name, table in TABLES.items()
        }
        counts["households without a grid"] = int(
            conn.execute(text("SELECT count(*) FROM household WHERE grid_id IS NULL")).scalar_one()
        )
    return counts


# --- the assignment, three ways -------------------------------------------------------------


@dataclass
class Assignment:
    """Each way of assigning the stored households, and how far the others agree."""

    households: int
    grids: int
    steps: dict[str, Spent]  # gridwork, step by step
    sjoin: Spent
    sjoin_differ: int
    sql: Spent | None
    sql_differ: int

    @property
    def gridwork(self) -> Spent:
        total = Spent()
        for step in self.steps.values():
            total.wall += step.wall
            total.client += step.client
            total.server += step.server
        return total

    @property
    def in_memory(self) -> Spent:
        """What sjoin replaces: building the index and assigning the points."""
        index, assign = self.steps["index"], self.steps["assign"]
        return Spent(
            index.wall + assign.wall, index.client + assign.client, index.server + assign.server
        )


def clear_assignment(engine: Engine) -> None:
    """Every household back to no grid, and the table vacuumed (not timed)."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE household SET grid_id = NULL, snapped = false, assign_distance_m = NULL")
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE household")
        )


def stored_grids(engine: Engine) -> np.ndarray:
    """Every household's grid id (-1: none), in id order."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT coalesce(grid_id, -1) FROM household ORDER BY id"))
        return np.fromiter(rows.scalars(), dtype=np.int64)


def compare_assignment(engine: Engine, settings: Settings, *, sql: bool) -> Assignment:
    """The three ways over the same stored points; the store ends with gridwork's answer."""
    meter = Meter(engine)
    sql_grid, sql_spent = None, None
    if sql:
        clear_assignment(engine)
        with measured(meter, Spent()) as sql_spent, engine.begin() as conn:
            conn.execute(text("UPDATE household SET grid_id = grid_covering(geom)"))
        sql_grid = stored_grids(engine)
    clear_assignment(engine)
    steps = {step: Spent() for step in ("index", "read", "assign", "write")}
    with transaction(engine) as session:
        with measured(meter, steps["index"]):
            index = load_grid_index(session, settings=settings)
        with measured(meter, steps["read"]):
            points = read_points(session, "household")
        with measured(meter, steps["assign"]):
            placed = index.assign(points.lon, points.lat)
        with measured(meter, steps["write"]):
            write_changes(session, "household", index, points, placed)
    order = np.argsort(points.id)
    ours = assigned_grid_ids(index, placed)[order]
    with measured(meter, Spent()) as sjoin_spent:
        theirs = _sjoin(engine, points.lon[order], points.lat[order])
    return Assignment(
        households=len(ours),
        grids=len(index),
        steps=steps,
        sjoin=sjoin_spent,
        sjoin_differ=int((theirs != ours).sum()),
        sql=sql_spent,
        sql_differ=0 if sql_grid is None else int((sql_grid != ours).sum()),
    )


def _sjoin(engine: Engine, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """geopandas' spatial join of the points with the stored grids, lowest code on an edge;
    the grid id of every point (-1: none). Reading the grids is part of it, as for gridwork."""
    with engine.connect() as conn:
        grids = gpd.read_postgis(
            text("SELECT id, code, geom FROM grid WHERE valid_to IS NULL"),
            conn,
            geom_col="geom",
            crs=4326,
        )
    points = gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs=4326)
    joined = gpd.sjoin(points, grids, predicate="covered_by", how="left")
    joined["code"] = joined["code"].astype(object)
    first = joined.sort_values("code", kind="stable").groupby(level=0)["id"].first()
    return first.reindex(range(len(points))).fillna(-1).to_numpy(dtype=np.int64)


def to_postgis_households(engine: Engine, source: Path) -> Spent:
    """geopandas reading the households file and writing it as a plain table (dropped)."""
    with measured(Meter(engine), Spent()) as spent:
        frame = gpd.read_file(source / "households.fgb", engine="pyogrio").to_crs(4326)
        frame.to_postgis("bench_households_plain", engine, if_exists="replace", chunksize=50_000)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_households_plain"))
    return spent


# --- the stores -------------------------------------------------------------------------------


def database_url(name: str) -> str:
    """The URL of ``name`` on gridwork's server (its own cluster, or ``DATABASE_URL``'s)."""
    settings = Settings()
    server = settings.database_url or LocalCluster(settings.state_path, settings.database_name).up()
    return server.rsplit("/", 1)[0] + f"/{name}"


def megacity_engine() -> tuple[Engine, dict[str, Any]]:
    """The loaded megacity store, brought to the code's schema (a load takes an hour; the
    migrations since are applied, not the load repeated), and the manifest it was loaded from."""
    url = database_url(DATABASE)
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT to_regclass('bench_manifest')")).scalar_one()
        row = conn.execute(text("SELECT manifest FROM bench_manifest")).scalar() if found else None
    if row is None:
        raise SystemExit("no megacity store: run python -m bench.megacity load --scale S first")
    migrate(url)
    return engine, json.loads(row)


def district_engine(reload: bool = False) -> Engine:
    """The one district (783 grids, 146,112 households) in a store of its own, as
    ``gridwork demo --sample synthetic-district`` imports it; loaded when missing."""
    url = database_url(DISTRICT_DATABASE)
    if not reload:
        try:
            engine = make_engine(url)
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM household")).scalar():
                    migrate(url)  # kept from an earlier run: on the code's schema
                    return engine
        except sqlalchemy.exc.SQLAlchemyError:  # not there yet: loaded below
            pass
    url = fresh_database(DISTRICT_DATABASE)
    engine = make_engine(url)
    for _ in load_sample(engine, settings=Settings(database_url=url)):
        pass
    return engine


def fresh_megacity() -> Engine:
    """An empty, migrated ``gridwork_bench_megacity``."""
    return make_engine(fresh_database(DATABASE))


def remember(engine: Engine, manifest: dict[str, Any]) -> None:
    """Mark the store loaded with the generator's manifest, in a table of the benchmark's
    own (``bench_manifest``) that the product never reads."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_manifest (manifest text NOT NULL)"))
        conn.execute(text("INSERT INTO bench_manifest VALUES (:m)"), {"m": json.dumps(manifest)})


# --- the command --------------------------------------------------------------------------------


def generated(scale: float, out: Path) -> dict[str, Any]:
    """The manifest of the city under ``out``, generated first unless it is that scale."""
    from bench.megacity import SEED, generate

    manifest_file = out / "manifest.json"
    if manifest_file.exists():
        manifest: dict[str, Any] = json.loads(manifest_file.read_text())
        if manifest.get("scale") == scale and manifest.get("seed") == SEED:
            return manifest
    return generate(scale, out)


def _spent(s: Spent) -> list[str]:
    return [f"{s.wall:.2f}", f"{s.client:.2f} + {s.server:.2f}"]


def run_load(scale: float, out: Path, *, sql: bool, plain: bool) -> None:
    """Generate (when needed), import, assign and compare; print every figure with ratios."""
    console = Console(width=160)
    manifest = generated(scale, out)
    console.print(
        f"megacity at scale {scale:g} from {out} ({manifest['written']['grids']:,} grids, "
        f"{manifest['written']['households']:,} households); load average {load_average()}"
    )
    engine = fresh_megacity()
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    layers = load_megacity(engine, out, settings)
    table = Table(title="import through gridwork's import path (import_file), layer by layer")
    for col in ("layer", "rows", "wall s", "CPU s (client + db)", "CPU µs/row",
                *(f"{s} s" for s in STEPS)):  # fmt: skip
        table.add_column(col, justify="right")
    for layer in layers:
        cpu_row = layer.total.cpu / max(layer.rows, 1) * 1e6
        table.add_row(layer.kind, f"{layer.rows:,}", *_spent(layer.total), f"{cpu_row:.0f}",
                      *(f"{layer.steps[s].wall:.2f}" for s in STEPS))  # fmt: skip
    console.print(table)
    console.print(
        "read: read_layer (file, ids, values, geometry checked); upsert: COPY to a stage, "
        "parents checked, INSERT … ON CONFLICT; derive: buildings into communities, the "
        "district outline; assign: the import's assignment hook (every household of the table)"
    )
    counts = store_counts(engine)
    wrong = {k: (counts[k], v) for k, v in manifest["written"].items() if k in counts and
             counts[k] != v}  # fmt: skip
    console.print(
        f"store counts equal the generator's: {wrong or 'yes'}; households "
        f"without a grid: {counts['households without a grid']:,}"
    )
    households = next(layer for layer in layers if layer.kind == "households")
    if plain:
        alt = to_postgis_households(engine, out)
        console.print(
            f"households: gridwork's import {households.total.wall:.1f} s wall "
            f"({households.total.cpu:.1f} s CPU) vs GeoDataFrame.to_postgis of the same file "
            f"{alt.wall:.1f} s ({alt.cpu:.1f} s CPU): "
            f"{households.total.wall / alt.wall:.2f}× the wall time"
        )
    result = compare_assignment(engine, settings, sql=sql)
    table = Table(
        title=f"assigning {result.households:,} stored households to {result.grids:,} grids "
        f"(load average {load_average()})"
    )
    for col in ("way", "wall s", "CPU s (client + db)", "vs gridwork (wall)", "differ"):
        table.add_column(col, justify="right")
    ours = result.gridwork
    table.add_row("gridwork: reassign (index, COPY out, assign, COPY in + UPDATE)",
                  *_spent(ours), "1.00×", "")  # fmt: skip
    for step, spent in result.steps.items():
        table.add_row(f"  {step}", *_spent(spent), "", "")
    mem = result.in_memory
    table.add_row("gridwork in memory (index + assign)", *_spent(mem), "", "")
    table.add_row("geopandas.sjoin covered_by, lowest code (grids read, points made)",
                  *_spent(result.sjoin), f"{result.sjoin.wall / mem.wall:.2f}× in memory",
                  f"{result.sjoin_differ:,}")  # fmt: skip
    if result.sql is not None:
        table.add_row("SQL: UPDATE household SET grid_id = grid_covering(geom)",
                      *_spent(result.sql), f"{result.sql.wall / ours.wall:.2f}×",
                      f"{result.sql_differ:,}")  # fmt: skip
    console.print(table)
    remember(engine, manifest)
    console.print(f"load average at the end: {load_average()}")
