"""A megacity on one machine: a seeded data set at city size, and what it costs (issue 19).

``python -m bench.megacity generate [--scale S]`` writes the city as FlatGeobuf files under
``.gridwork/megacity/`` (never committed; ``make megacity``): at scale 1, 16 districts,
220 streets, 4,000 communities, 60,000 grids, 1.5 M buildings, 10 M households in them, the
roads between the grids, 6,000 facilities of every kind and 20,000 devices. Everything comes
from one seed, no downloads; ``--scale`` multiplies every count (0.1 is a tenth of the city).

``python -m bench.megacity assign`` and ``locate`` measure the in-process covering index
(:mod:`geo.assignment.index`) on 60,000 grids next to the obvious alternative and next to the
one-district size (783 grids, :mod:`bench.synthetic_city`) in the same run, printing ratios:

* ``assign``: N uniform points, ``AreaIndex.assign_points`` against
  ``geopandas.sjoin(predicate="within")``, at 783 and at 60,000 grids; results checked equal
  wherever sjoin finds exactly one grid;
* ``locate``: one point at a time (``AreaIndex.covering_area``, what ``/locate`` calls),
  p50/p99 over many lookups, 60,000 grids against 783.

The grids are Voronoi cells of the seeds (one density for every size: the one district's
grid area, ~0.21 km²), densified so a boundary has ~52 vertices, in UTM 45N (metres); the
files place the city around lon 87.0, lat 43.8. Communities, streets and districts group
grids by nearest seed, then every stray piece joins a neighbour, so each is one polygon.

The whole product on that city, in a store (:mod:`bench.megacity_store`,
:mod:`bench.megacity_sections`), each command next to the one district or the obvious
alternative in the same run:

* ``load --scale S``: import through ``gridwork import``'s path and assign every household
  (vs ``GeoDataFrame.to_postgis``, ``geopandas.sjoin`` and ``grid_covering`` in SQL);
* ``http-locate``, ``tiles``, ``coverage``, ``oversize``, ``checks``, ``grid-page``: one
  section each, the megacity store against the one district;
* ``explain``: the plans of the statements those run, sequential scans of big tables shown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, cKDTree

from geo.assignment.index import AreaIndex

CRS = "EPSG:32645"
SEED = 19
GRID_AREA_M2 = 14_000.0 * 12_000.0 / 783  # the one district's density
#: Where the written city is centred, in UTM 45N: lon 87.0, lat 43.8 (Urumqi's latitude), so
#: that tiles and metres compare with the one district at Karamay (lat 45.6). The in-process
#: benchmarks keep the square at (0, 0): only the files are moved.
CENTRE_M = (500_000.0, 4_850_000.0)
VERTICES = 52
CITY = {
    "districts": 16,
    "streets": 220,
    "communities": 4_000,
    "grids": 60_000,
    "buildings": 1_500_000,
    "households": 10_000_000,
    "facilities": 6_000,
    "devices": 20_000,
}
FACILITY_KINDS = ("clinic", "school", "kindergarten", "elder_care", "police", "fire", "park")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".gridwork" / "megacity"


def grid_cells(n: int, seed: int = SEED) -> tuple[NDArray[np.object_], NDArray[np.float64], float]:
    """``n`` Voronoi grids (in seed order) over a square of the one district's density."""
    rng = np.random.default_rng(seed + n)
    side = float(np.sqrt(n * GRID_AREA_M2))
    seeds = rng.uniform(0, side, (n, 2))
    box = shapely.box(0, 0, side, side)
    cells = np.asarray(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box))
    )
    cells = shapely.intersection(cells, box)
    # GEOS does not keep the input order: match each cell back to the seed it contains.
    seed_i, cell_i = shapely.STRtree(cells).query(shapely.points(seeds), predicate="intersects")
    order = np.empty(n, dtype=np.intp)
    order[seed_i] = cell_i
    cells = cells[order]
    perimeter = float(np.median(shapely.length(cells)))
    cells = shapely.transform(shapely.segmentize(cells, perimeter / VERTICES), _mm)
    return cells, seeds, side


def _mm(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.round(xy, 3)


def _codes(parent: NDArray[np.intp], parent_codes: list[str]) -> list[str]:
    """``<parent code><nnn>``, numbered within each parent in the children's order."""
    seen: dict[int, int] = {}
    out = []
    for p in parent.tolist():
        seen[p] = seen.get(p, 0) + 1
        out.append(f"{parent_codes[p]}{seen[p]:03d}")
    return out


def _group(cells: NDArray[np.object_], of: NDArray[np.intp], n: int) -> list[shapely.Geometry]:
    order = np.argsort(of, kind="stable")
    bounds = np.searchsorted(of[order], np.arange(n + 1))
    return [shapely.coverage_union_all(cells[order[bounds[i] : bounds[i + 1]]]) for i in range(n)]


def _neighbours(cells: NDArray[np.object_], seeds: NDArray[np.float64]) -> NDArray[np.intp]:
    """Pairs of grids sharing an edge (not merely a corner): Delaunay neighbours of the
    seeds whose cells still meet along a line once clipped to the square."""
    triangles = Delaunay(seeds).simplices
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [0, 2]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    shared = shapely.length(shapely.intersection(cells[edges[:, 0]], cells[edges[:, 1]]))
    return np.asarray(edges[shared > 0], dtype=np.intp)


def _up(pairs: NDArray[np.intp], parent: NDArray[np.intp]) -> NDArray[np.intp]:
    """The neighbour pairs one level up: parents whose children share an edge."""
    up = parent[pairs]
    up = up[up[:, 0] != up[:, 1]]
    return np.unique(np.sort(up, axis=1), axis=0)


def _contiguous(label: NDArray[np.intp], pairs: NDArray[np.intp]) -> NDArray[np.intp]:
    """Labels such that each label's members are connected along ``pairs``.

    Nearest-seed grouping can leave a label in pieces (an area must be one polygon, the
    importer refuses a MultiPolygon): every piece but the largest joins the lowest other
    label it borders, until nothing moves. Deterministic: ties go to the lower piece.
    """
    label = np.asarray(label, dtype=np.intp).copy()
    n = len(label)
    for _ in range(100):
        a, b = pairs[:, 0], pairs[:, 1]
        same = label[a] == label[b]
        graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
        count, piece = connected_components(graph, directed=False)
        size = np.bincount(piece, minlength=count)
        piece_label = np.empty(count, dtype=np.intp)
        piece_label[piece] = label
        by_label = np.lexsort((np.arange(count), -size, piece_label))
        kept = np.zeros(count, dtype=bool)
        kept[by_label[np.unique(piece_label[by_label], return_index=True)[1]]] = True
        if kept.all():
            return label
        # Each stray piece joins the lowest label across one of its borders.
        u = np.concatenate([a, b])
        v = np.concatenate([b, a])
        across = ~kept[piece[u]] & (label[u] != label[v])
        target = np.full(count, np.iinfo(np.intp).max)
        np.minimum.at(target, piece[u[across]], label[v[across]])
        stray = ~kept[piece] & (target[piece] != np.iinfo(np.intp).max)
        label[stray] = target[piece[stray]]
    raise RuntimeError("areas did not become contiguous")


def generate(scale: float, out: Path, seed: int = SEED) -> dict[str, object]:
    """Write the city under ``out``; returns the manifest (counts, seed, seconds)."""
    counts = {k: max(1, round(v * scale)) for k, v in CITY.items()}
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    cells, seeds, side = grid_cells(counts["grids"], seed)
    # Hierarchy: each grid goes to the nearest community seed, each community to the nearest
    # street seed, each street to the nearest district seed; every level is an exact union.
    levels = {}
    for name in ("communities", "streets", "districts"):
        levels[name] = rng.uniform(0, side, (counts[name], 2))
    pairs = _neighbours(cells, seeds)
    community_of_grid = cKDTree(levels["communities"]).query(seeds)[1]
    community_of_grid = _contiguous(community_of_grid, pairs)
    # A community seed no grid went to leaves no community: renumber the ones in use.
    used_c, community_of_grid = np.unique(community_of_grid, return_inverse=True)
    street_of_community = cKDTree(levels["streets"]).query(levels["communities"][used_c])[1]
    street_of_community = _contiguous(street_of_community, _up(pairs, community_of_grid))
    used_s, street_of_community = np.unique(street_of_community, return_inverse=True)
    district_of_street = cKDTree(levels["districts"]).query(levels["streets"][used_s])[1]
    street_of_grid = street_of_community[community_of_grid]
    district_of_street = _contiguous(district_of_street, _up(pairs, street_of_grid))
    used_d, district_of_street = np.unique(district_of_street, return_inverse=True)
    district_codes = [f"6502{d + 1:02d}" for d in range(len(used_d))]
    street_codes = _codes(district_of_street, district_codes)
    community_codes = _codes(street_of_community, street_codes)
    grid_codes = _codes(community_of_grid, community_codes)
    communities = _group(cells, community_of_grid, len(used_c))
    streets = _group(np.asarray(communities, dtype=object), street_of_community, len(used_s))
    districts = _group(np.asarray(streets, dtype=object), district_of_street, len(used_d))
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    origin = (CENTRE_M[0] - side / 2, CENTRE_M[1] - side / 2)

    def write(name: str, frame: gpd.GeoDataFrame) -> None:
        # One offset for every vertex keeps shared vertices identical (no slivers).
        frame = frame.set_geometry(frame.geometry.translate(*origin))
        frame.to_file(out / f"{name}.fgb", driver="FlatGeobuf", engine="pyogrio")
        written[name] = len(frame)

    write("districts", gpd.GeoDataFrame({"code": district_codes}, geometry=districts, crs=CRS))
    write(
        "streets",
        gpd.GeoDataFrame(
            {
                "code": street_codes,
                "district_code": [district_codes[d] for d in district_of_street],
            },
            geometry=streets,
            crs=CRS,
        ),
    )
    write(
        "communities",
        gpd.GeoDataFrame(
            {
                "code": community_codes,
                "street_code": [street_codes[s] for s in street_of_community],
            },
            geometry=communities,
            crs=CRS,
        ),
    )
    write(
        "grids",
        gpd.GeoDataFrame(
            {
                "code": grid_codes,
                "community_code": [community_codes[c] for c in community_of_grid],
            },
            geometry=cells,
            crs=CRS,
        ),
    )
    edges = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=shapely.box(0, 0, side, side), only_edges=True
    )
    roads = shapely.clip_by_rect(edges, 0, 0, side, side)
    road_parts = shapely.get_parts(roads)
    road_class = rng.choice(
        ["primary", "secondary", "residential"], len(road_parts), p=[0.1, 0.2, 0.7]
    )
    write("roads", gpd.GeoDataFrame({"road_class": road_class}, geometry=road_parts, crs=CRS))
    # Buildings: 12–30 m squares at uniform spots; households are points inside them.
    nb = counts["buildings"]
    centre = rng.uniform(30, side - 30, (nb, 2))
    half = rng.uniform(6, 15, nb)
    buildings = shapely.box(
        centre[:, 0] - half, centre[:, 1] - half, centre[:, 0] + half, centre[:, 1] + half
    )
    write(
        "buildings",
        gpd.GeoDataFrame({"building_id": np.arange(1, nb + 1)}, geometry=buildings, crs=CRS),
    )
    nh = counts["households"]
    in_building = rng.integers(0, nb, nh)
    offset = rng.uniform(-0.9, 0.9, (nh, 2)) * half[in_building, None]
    xy = np.round(centre[in_building] + offset, 2)
    # Named as the importer reads them: household_code → code, building_id → its building.
    households = gpd.GeoDataFrame(
        {"household_code": np.arange(1, nh + 1), "building_id": in_building + 1},
        geometry=shapely.points(xy),
        crs=CRS,
    )
    write("households", households)
    nf = counts["facilities"]
    write(
        "facilities",
        gpd.GeoDataFrame(
            {
                "kind": rng.choice(FACILITY_KINDS, nf),
                "capacity": rng.integers(20, 500, nf),
            },
            geometry=shapely.points(rng.uniform(0, side, (nf, 2))),
            crs=CRS,
        ),
    )
    nd = counts["devices"]
    homes = rng.choice(nh, nd, replace=False) + 1
    with (out / "devices.csv").open("w") as f:
        f.write("device_code,household_code,datum\n")
        for i, h in enumerate(homes.tolist()):
            f.write(f"W{i + 1:06d},{h},{('wgs84', 'gcj02')[i % 2]}\n")
    written["devices"] = nd
    manifest = {
        "seed": seed,
        "scale": scale,
        "crs": CRS,
        "side_m": round(side),
        "origin_m": [round(v, 3) for v in origin],
        "written": written,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _index(n: int) -> tuple[AreaIndex, gpd.GeoDataFrame, float, float]:
    cells, _seeds, side = grid_cells(n)
    codes = [f"G{i:06d}" for i in range(n)]
    started = time.perf_counter()
    index = AreaIndex(cells, codes)
    build = time.perf_counter() - started
    return index, gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=CRS), side, build


def _points(n: int, side: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(SEED)
    return rng.uniform(0, side, n), rng.uniform(0, side, n)


def bench_assign(grids: int, points: int, repeat: int) -> None:
    print(f"assign {points:,} uniform points: AreaIndex vs geopandas.sjoin (best of {repeat})")
    for n in (783, grids):
        index, frame, side, build = _index(n)
        x, y = _points(points, side)
        pts = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=CRS)
        index.assign_points(x[:1000], y[:1000])
        gpd.sjoin(pts.iloc[:1000], frame, predicate="within")
        ours, theirs = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            result = index.assign_points(x, y)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            joined = gpd.sjoin(pts, frame, predicate="within")
            theirs.append(time.perf_counter() - t)
        once = joined.index.value_counts()
        single = joined[joined.index.isin(once[once == 1].index)]
        same = (result.code[single.index.to_numpy()] == single["code"].to_numpy()).all()
        print(
            f"  {n:>6,} grids: build {build:6.2f} s · assign {min(ours):6.3f} s · "
            f"sjoin {min(theirs):6.3f} s · {min(theirs) / min(ours):5.1f}× faster · "
            f"same grids: {bool(same)}"
        )


def bench_locate(grids: int, lookups: int) -> None:
    print(f"locate: one point at a time (AreaIndex.covering_area), {lookups:,} lookups")
    figures = {}
    for n in (783, grids):
        index, _frame, side, _build = _index(n)
        x, y = _points(lookups, side)
        for i in range(min(1000, lookups)):
            index.covering_area(float(x[i]), float(y[i]))
        took = np.empty(lookups)
        clock = time.perf_counter_ns
        for i in range(lookups):
            t = clock()
            index.covering_area(float(x[i]), float(y[i]))
            took[i] = clock() - t
        p50, p99 = np.percentile(took, [50, 99]) / 1000
        figures[n] = (p50, p99)
        print(f"  {n:>6,} grids: p50 {p50:6.1f} µs · p99 {p99:6.1f} µs")
    (a50, a99), (b50, b99) = figures[783], figures[grids]
    print(
        f"  {grids:,} vs 783 grids: p50 {b50 / a50:.2f}× · p99 {b99 / a99:.2f}× "
        "(target: p99 within 1.5×)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.megacity", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write the megacity under .gridwork/megacity/")
    g.add_argument("--scale", type=float, default=1.0, help="multiplies every count")
    g.add_argument("--out", type=Path, default=OUT)
    a = sub.add_parser("assign", help="assignment: index vs sjoin, 783 and N grids")
    a.add_argument("--grids", type=int, default=CITY["grids"])
    a.add_argument("--points", type=int, default=1_000_000)
    a.add_argument("--repeat", type=int, default=2)
    loc = sub.add_parser("locate", help="one-point lookups: p50/p99, 783 and N grids")
    loc.add_argument("--grids", type=int, default=CITY["grids"])
    loc.add_argument("--lookups", type=int, default=50_000)
    ld = sub.add_parser("load", help="import and assign into gridwork_bench_megacity")
    ld.add_argument("--scale", type=float, default=1.0)
    ld.add_argument("--out", type=Path, default=OUT, help="generated here when not that scale")
    ld.add_argument("--no-sql", action="store_true", help="skip the grid_covering UPDATE")
    ld.add_argument("--no-plain", action="store_true", help="skip GeoDataFrame.to_postgis")
    sections = {name: sub.add_parser(name, help=text) for name, text in SECTION_HELP.items()}
    sections["oversize"].add_argument(
        "--skip-unindexed",
        action="store_true",
        help="skip the run without migration 0020's index (hours at full scale)",
    )
    args = parser.parse_args(argv)
    if args.command == "generate":
        print(json.dumps(generate(args.scale, args.out), indent=2))
    elif args.command == "assign":
        bench_assign(args.grids, args.points, args.repeat)
    elif args.command == "locate":
        bench_locate(args.grids, args.lookups)
    elif args.command == "load":
        from bench.megacity_store import run_load

        run_load(args.scale, args.out, sql=not args.no_sql, plain=not args.no_plain)
    elif args.command == "oversize":
        from bench.megacity_sections import oversize

        oversize(unindexed=not args.skip_unindexed)
    else:
        from bench.megacity_sections import SECTIONS

        SECTIONS[args.command]()
    return 0


#: One command per section of the megacity store against the one district (the store that
#: ``load`` made), see :mod:`bench.megacity_sections`.
SECTION_HELP = {
    "http-locate": "GET /locate p50/p99 at 8 clients, megacity vs one district",
    "tiles": "vector tiles p50/p99 at z10-z16 over HTTP",
    "coverage": "coverage of one street and of everything",
    "oversize": "the oversize report",
    "checks": "the topology checks, step by step",
    "grid-page": "the grid map page of a district-wide coordinator",
    "plans": "a draft for each oversized community, serial and on Dask (a seeded sample)",
    "explain": "EXPLAIN of the statements those sections run; seq scans on big tables",
}


if __name__ == "__main__":
    sys.exit(main())
