"""Test grids for Porto, which has none: each parish cut into a few Voronoi pieces.

The cut is seeded, so every run stores the same grids. Pieces are clipped to their parish,
so grids tile each parish; a parish piece that the clip splits in two becomes two grids.
Codes are ``<parish>-G01``…; every grid has a worker ``W-<grid code>`` with a fake phone.

The database is loaded the way a deployment would be: the Porto demo, then a workers CSV and
a grids GeoPackage through ``import_file`` — so the grid import hook assigns every household
and facility that is already stored.
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from sqlalchemy import Engine

from data.importing.loading import import_file, load_porto
from data.settings import Settings

PORTO_GPKG = Path(__file__).resolve().parents[2] / "data" / "samples" / "porto" / "porto.gpkg"
SEED = 3
PIECES = {"131208": 5, "131213": 5, "131214": 5, "131215": 5}


def porto_grids(seed: int = SEED) -> gpd.GeoDataFrame:
    """Grids (WGS-84) cut from the Porto parishes; columns code, community_code, worker_code."""
    parishes = pyogrio.read_dataframe(PORTO_GPKG, layer="communities").to_crs(4326)
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, shapely.Geometry]] = []
    for code, parish in zip(parishes["ref_code"], parishes.geometry, strict=True):
        minx, miny, maxx, maxy = parish.bounds
        seeds: list[shapely.Point] = []
        while len(seeds) < PIECES[str(code)]:
            p = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            if parish.contains(p):
                seeds.append(p)
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=parish.envelope)
        )
        pieces = [
            part
            for cell in cells
            for part in shapely.get_parts(shapely.intersection(cell, parish))
            if isinstance(part, shapely.Polygon) and part.area > 0
        ]
        pieces.sort(key=lambda g: (round(g.centroid.y, 9), round(g.centroid.x, 9)))
        rows += [(f"{code}-G{i + 1:02d}", str(code), piece) for i, piece in enumerate(pieces)]
    return gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "community_code": [r[1] for r in rows],
            "worker_code": [f"W-{r[0]}" for r in rows],
        },
        geometry=[r[2] for r in rows],
        crs=4326,
    )


def write_grid_files(folder: Path, grids: gpd.GeoDataFrame) -> tuple[Path, Path]:
    """A workers CSV (no coordinates) and a grids GeoPackage, ready for ``import_file``."""
    workers = folder / "workers.csv"
    with workers.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["code", "display_name", "phone", "community_code"])
        for i, (grid, community) in enumerate(
            zip(grids["code"], grids["community_code"], strict=True)
        ):
            out.writerow([f"W-{grid}", f"Worker {i + 1}", f"+351 000 000 {i + 1:03d}", community])
    path = folder / "grids.gpkg"
    grids.to_file(path, layer="grids", driver="GPKG")
    return workers, path


def load_gridded_porto(engine: Engine, url: str, folder: Path) -> gpd.GeoDataFrame:
    """The Porto demo plus test grids and workers; returns the grids as written."""
    list(load_porto(engine, settings=Settings(database_url=url)))
    return add_porto_grids(engine, url, folder)


def add_porto_grids(engine: Engine, url: str, folder: Path) -> gpd.GeoDataFrame:
    """Test grids and workers over a database holding the Porto demo (the ``porto_grids``
    template of tests/factory.py); returns the grids as written."""
    settings = Settings(database_url=url)
    grids = porto_grids()
    workers, path = write_grid_files(folder, grids)
    import_file(engine, "workers", workers, settings=settings)
    import_file(engine, "grids", path, layer="grids", id_field="code", settings=settings)
    return grids
