"""A deterministic synthetic city for benchmarks: streets → communities → grids, and households.

Why synthetic: the benchmarks must run anywhere, with no licensed data, and give the same
numbers on every run. The shape is chosen to match a real mid-sized district (about
14 km × 12 km in UTM 45N around lon 84.87, lat 45.58): 61 communities tiled by 783 grids whose
boundaries carry 50–200 vertices each, like digitised grid maps do.

How the tiling stays an exact coverage (neighbours share *identical* vertices, no slivers):

1. a Voronoi diagram of Lloyd-relaxed seeds, clipped to the box;
2. every coordinate rounded to a millimetre, so the two copies of a clipped vertex agree;
3. ``shapely.segmentize`` with one segment length for all cells, then rounded again, so the
   vertices inserted on a shared edge agree on both sides (they differ only in the last bits
   because each neighbour walks the edge in the opposite direction);
4. a smooth displacement field applied to every vertex to make the edges wiggle like real
   boundaries. It is a function of the position only, so a shared vertex moves the same way
   in both cells, and its slope stays well below 1, so the map is one-to-one and cannot
   create self-intersections.

The builders return GeoDataFrames in EPSG:32645 so the in-process benchmark and a later
PostGIS one load exactly the same city.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

CRS = "EPSG:32645"  # WGS 84 / UTM zone 45N: metric, and lon 84.87 is inside the zone (84–90°E)
SEED = 20240611
CENTER_LON, CENTER_LAT = 84.87, 45.58
WIDTH_M, HEIGHT_M = 14_000.0, 12_000.0
N_STREETS = 5
N_COMMUNITIES = 61
N_GRIDS = 783
SEGMENT_M = 18.0  # one densification length for every cell keeps shared edges identical
MIN_VERTICES, MAX_VERTICES = 50, 200
DISTRICT_CODE = "650203"  # six-digit county code; streets, communities and grids extend it


@dataclass(frozen=True)
class City:
    """The three levels of the synthetic city, each a GeoDataFrame in :data:`CRS`."""

    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame


def _origin() -> tuple[float, float]:
    """South-west corner of the box, so that its centre falls on the chosen lon/lat."""
    centre = gpd.GeoSeries(gpd.points_from_xy([CENTER_LON], [CENTER_LAT]), crs="EPSG:4326")
    c = centre.to_crs(CRS).iloc[0]
    return round(c.x - WIDTH_M / 2), round(c.y - HEIGHT_M / 2)


def _round_mm(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Round every coordinate to 1 mm; pointwise, so equal inputs give equal outputs."""
    return shapely.transform(geoms, lambda xy: np.round(xy, 3))


def _voronoi_cells(seeds: NDArray[np.float64], box: shapely.Polygon) -> NDArray[np.object_]:
    """Voronoi cells of ``seeds`` clipped to ``box``, in the order of the seeds."""
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box)
    cells = np.asarray(shapely.get_parts(diagram))
    cells = shapely.intersection(cells, box)
    # GEOS does not keep the input order: match each cell back to the seed it contains.
    tree = shapely.STRtree(cells)
    seed_idx, cell_idx = tree.query(shapely.points(seeds), predicate="intersects")
    order = np.empty(len(seeds), dtype=np.intp)
    order[seed_idx] = cell_idx
    return np.asarray(cells[order])


def _densify(cells: NDArray[np.object_], max_length: float) -> NDArray[np.object_]:
    """Insert vertices so no segment is longer than ``max_length``, identically on both sides.

    ``shapely.segmentize`` computes the inserted points from each ring's own direction, so
    two neighbours, which walk a shared edge in opposite directions, get points that differ
    in the last bits (and, after rounding, occasionally by a millimetre). Here every segment
    is divided from its lexicographically smaller end, so both sides compute the same numbers.
    """
    out = []
    for cell in cells:
        ring = shapely.get_coordinates(cell.exterior)
        pieces = [ring[:1]]
        for p, q in itertools.pairwise(ring):
            n = max(1, int(np.ceil(np.hypot(*(q - p)) / max_length)))
            forward = tuple(p) <= tuple(q)
            a, b = (p, q) if forward else (q, p)
            t = np.arange(1, n + 1) / n if forward else np.arange(n - 1, -1, -1) / n
            pts = np.round(a + (b - a) * t[:, None], 3)
            pts[-1] = q  # the segment's own end, exactly
            pieces.append(pts)
        out.append(shapely.Polygon(np.concatenate(pieces)))
    return np.asarray(out, dtype=object)


def _relaxed_seeds(
    rng: np.random.Generator, n: int, box: shapely.Polygon, iterations: int
) -> NDArray[np.float64]:
    """Random seeds moved towards their cell centroids (Lloyd), so cells have similar sizes."""
    xmin, ymin, xmax, ymax = box.bounds
    seeds = np.column_stack([rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)])
    for _ in range(iterations):
        cells = _voronoi_cells(seeds, box)
        seeds = shapely.get_coordinates(shapely.centroid(cells))
    return seeds


def _wiggle_field(rng: np.random.Generator) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """A smooth displacement field (sums of seeded sine waves) as a pure function of position.

    The sum of 2π·amplitude/wavelength over the terms stays below 1, so ``p ↦ p + field(p)``
    is one-to-one: boundaries wiggle but never cross.
    """
    terms = [
        (amplitude, wavelength, rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi, 2))
        for amplitude, wavelength in ((14.0, 420.0), (4.0, 95.0), (1.2, 31.0))
        for _axis in (0, 1)
    ]

    def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        out = xy.copy()
        for i, (amplitude, wavelength, angle, phase) in enumerate(terms):
            along = xy[:, 0] * np.cos(angle) + xy[:, 1] * np.sin(angle)
            across = -xy[:, 0] * np.sin(angle) + xy[:, 1] * np.cos(angle)
            out[:, i % 2] += (
                amplitude
                * np.sin(2 * np.pi * along / wavelength + phase[0])
                * np.cos(2 * np.pi * across / (1.7 * wavelength) + phase[1])
            )
        return np.round(out, 3)

    return move


@cache
def build_city(seed: int = SEED) -> City:
    """Build the city once per process; every call with the same seed returns the same data."""
    rng = np.random.default_rng(seed)
    x0, y0 = _origin()
    box = shapely.box(x0, y0, x0 + WIDTH_M, y0 + HEIGHT_M)

    grid_seeds = _relaxed_seeds(rng, N_GRIDS, box, iterations=3)
    cells = _round_mm(_voronoi_cells(grid_seeds, box))
    cells = _densify(cells, SEGMENT_M)
    cells = shapely.transform(cells, _wiggle_field(rng))

    # Communities: grids grouped by the nearest of 61 relaxed community seeds; streets the same
    # one level up. Grouping whole grids keeps every level an exact union of the one below.
    community_seeds = _relaxed_seeds(rng, N_COMMUNITIES, box, iterations=4)
    community_of_grid = _nearest(grid_seeds, community_seeds)
    street_seeds = _relaxed_seeds(rng, N_STREETS, box, iterations=4)
    street_of_community = _nearest(community_seeds, street_seeds)

    street_codes = [f"{DISTRICT_CODE}{s + 1:03d}" for s in range(N_STREETS)]
    community_codes = _child_codes(street_codes, street_of_community)
    grid_codes = _child_codes(community_codes, community_of_grid)

    grids = gpd.GeoDataFrame(
        {"code": grid_codes, "community_code": [community_codes[c] for c in community_of_grid]},
        geometry=cells,
        crs=CRS,
    )
    communities = gpd.GeoDataFrame(
        {
            "code": community_codes,
            "street_code": [street_codes[s] for s in street_of_community],
        },
        geometry=[
            shapely.coverage_union_all(cells[community_of_grid == c]) for c in range(N_COMMUNITIES)
        ],
        crs=CRS,
    )
    streets = gpd.GeoDataFrame(
        {"code": street_codes},
        geometry=[
            shapely.coverage_union_all(communities.geometry.values[street_of_community == s])
            for s in range(N_STREETS)
        ],
        crs=CRS,
    )
    grids = grids.sort_values("code", ignore_index=True)
    communities = communities.sort_values("code", ignore_index=True)
    _check(grids)
    return City(streets=streets, communities=communities, grids=grids)


def _nearest(points: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the nearest centre for every point (brute force: sizes here are small)."""
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(d2.argmin(axis=1), dtype=np.intp)


def _child_codes(parent_codes: list[str], parent_of_child: NDArray[np.intp]) -> list[str]:
    """Codes ``<parent><nnn>`` numbered 1.. within each parent, in the children's order."""
    counters = dict.fromkeys(range(len(parent_codes)), 0)
    codes = []
    for p in parent_of_child:
        counters[int(p)] += 1
        codes.append(f"{parent_codes[int(p)]}{counters[int(p)]:03d}")
    return codes


def _check(grids: gpd.GeoDataFrame) -> None:
    """Refuse to hand out a city that is not what the benchmark claims to measure."""
    geoms = grids.geometry.values
    counts = shapely.get_num_coordinates(geoms)
    if counts.min() < MIN_VERTICES or counts.max() > MAX_VERTICES:
        raise RuntimeError(f"grid vertex counts {counts.min()}–{counts.max()} out of range")
    if not shapely.is_valid(geoms).all():
        raise RuntimeError("a synthetic grid is invalid")
    if not shapely.coverage_is_valid(geoms):
        raise RuntimeError("synthetic grids do not form an exact coverage")


def households(n: int, seed: int = SEED) -> gpd.GeoDataFrame:
    """``n`` household points, clustered like settlements, a few just outside the city.

    Most households sit in Gaussian clusters of very different sizes (a dense old town, new
    estates, villages); a thin uniform layer covers the rest. Points are kept inside the box
    grown by 150 m, so roughly one in a few hundred falls outside every grid and exercises the
    nearest-grid path.
    """
    rng = np.random.default_rng(seed + n)
    x0, y0 = _origin()
    n_clusters = 40
    centres = np.column_stack(
        [rng.uniform(x0, x0 + WIDTH_M, n_clusters), rng.uniform(y0, y0 + HEIGHT_M, n_clusters)]
    )
    sigma = rng.lognormal(mean=np.log(500.0), sigma=0.6, size=n_clusters)
    weight = rng.pareto(1.5, n_clusters) + 0.2
    weight /= weight.sum()
    margin = 150.0
    xs: list[NDArray[np.float64]] = []
    ys: list[NDArray[np.float64]] = []
    have = 0
    while have < n:
        m = int((n - have) * 1.2) + 16
        k = rng.choice(n_clusters, size=m, p=weight)
        background = rng.random(m) < 0.08
        x = np.where(
            background, rng.uniform(x0, x0 + WIDTH_M, m), centres[k, 0] + rng.normal(0, sigma[k])
        )
        y = np.where(
            background, rng.uniform(y0, y0 + HEIGHT_M, m), centres[k, 1] + rng.normal(0, sigma[k])
        )
        keep = (
            (x > x0 - margin)
            & (x < x0 + WIDTH_M + margin)
            & (y > y0 - margin)
            & (y < y0 + HEIGHT_M + margin)
        )
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    x_all = np.round(np.concatenate(xs)[:n], 2)
    y_all = np.round(np.concatenate(ys)[:n], 2)
    return gpd.GeoDataFrame(
        {"household_id": np.arange(1, n + 1, dtype=np.int64)},
        geometry=gpd.points_from_xy(x_all, y_all),
        crs=CRS,
    )
