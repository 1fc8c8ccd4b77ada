"""Walking coverage along roads: the graph, the reach, the road pieces, the polygons, the grids.

A hand-drawn lattice pins down each rule with distances one can check on paper; a property
test compares the bounded Dijkstra with Floyd–Warshall on random lattices; the Porto sample
checks the two promises a map reader relies on on real roads: the network area is smaller
than the straight-line circles, and no network distance beats the straight line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from shapely.geometry import LineString, Point, box
from shapely.ops import substring
from sqlalchemy import Engine, text

from data.coverage.service import NetworkCache
from geo.coverage.walk import (
    ODPairs,
    Reach,
    RoadGraph,
    RoadPieces,
    coverage_by_grid,
    crow_flies_area,
    facilities_of_kind,
    network_distances,
    reachable,
    reached_edges,
    service_area,
    two_step_fca,
    walk_distance_m,
)
from geo.errors import CRSError, InvalidGeometry, InvalidInput

UTM = "EPSG:32645"


def _lattice() -> RoadGraph:
    """Two rows of 100 m blocks, a dead end, and an island of two roads that cross unjoined.

      100  D ------- E ------- F ------- Z        I1
           |         |         |                   |
           |         |         |           H1 -----+----- H2
           |         |         |                   |
        0  A ------- B ------- C                  I2
           0        100       200       300     1000  1050  1100

    A-B-C and D-E-F-Z are each drawn as ONE line through their junctions (as OpenStreetMap
    draws a way), so B, E and F must be found as shared vertices. H1-H2 and I1-I2 cross
    with no shared vertex (a bridge): they must not be joined. From A: B 100, D 100,
    C 200, E 200, F 300, Z 400.
    """
    roads = [
        LineString([(0, 0), (100, 0), (200, 0)]),  # A-B-C
        LineString([(0, 100), (100, 100), (200, 100), (300, 100)]),  # D-E-F-Z
        LineString([(0, 0), (0, 100)]),  # A-D
        LineString([(100, 0), (100, 100)]),  # B-E
        LineString([(200, 0), (200, 100)]),  # C-F
        LineString([(1000, 50), (1100, 50)]),  # H1-H2
        LineString([(1050, 100), (1050, 0)]),  # I1-I2
    ]
    return RoadGraph.from_segments(gpd.GeoSeries(roads, crs=UTM))


NODES = {"A": (0, 0), "B": (100, 0), "C": (200, 0), "D": (0, 100), "E": (100, 100)}
NODES |= {"F": (200, 100), "Z": (300, 100), "H1": (1000, 50), "H2": (1100, 50)}
NODES |= {"I1": (1050, 100), "I2": (1050, 0)}


def _node(graph: RoadGraph, name: str) -> int:
    x, y = NODES[name]
    return int(graph.node_index([x], [y])[0])


def _distances(graph: RoadGraph, reach: Reach, origin: int = 0) -> dict[str, float]:
    nodes, metres = reach.for_origin(origin)
    name_of = {_node(graph, name): name for name in NODES}
    return {name_of[int(n)]: float(d) for n, d in zip(nodes, metres, strict=True)}


def _piece_on(graph: RoadGraph, pieces: RoadPieces, a: str, b: str) -> list[LineString]:
    """The reached pieces lying on the edge between nodes ``a`` and ``b``."""
    edge = LineString([NODES[a], NODES[b]])
    return [g for g in pieces.geometry if edge.buffer(1e-6).covers(g)]


# --------------------------------------------------------------------------- the graph


def test_roads_are_cut_at_shared_vertices_and_not_at_drawn_crossings() -> None:
    graph = _lattice()
    assert graph.n_nodes == 11
    assert graph.n_edges == 10
    assert sorted(np.round(graph.edge_length, 6)) == [100.0] * 10
    assert all(_node(graph, name) >= 0 for name in NODES)
    assert graph.node_index([1050], [50])[0] == -1  # the bridge crossing is no junction


def test_nodes_match_to_the_centimetre_after_reprojection_round_off() -> None:
    wobble = 1e-4  # 0.1 mm, the size of a round trip through EPSG:4326
    graph = RoadGraph.from_segments(
        [LineString([(0, 0), (100, 0)]), LineString([(100 + wobble, -wobble), (100, 100)])],
        crs=UTM,
    )
    assert graph.n_nodes == 3


def test_known_shortest_distances_from_a_node() -> None:
    graph = _lattice()
    reach = reachable(graph, [Point(0, 0)], 1000.0)
    assert _distances(graph, reach) == pytest.approx(
        {"A": 0, "B": 100, "C": 200, "D": 100, "E": 200, "F": 300, "Z": 400}
    )


def test_the_walk_stops_at_the_budget() -> None:
    graph = _lattice()
    reach = reachable(graph, [Point(0, 0)], 200.0)
    assert set(_distances(graph, reach)) == {"A", "B", "C", "D", "E"}


def test_the_walk_starts_with_the_leg_to_the_road() -> None:
    """A facility 10 m off road A-B, 30 m along it: B is 10 + 70 m away, A 10 + 30 m."""
    graph = _lattice()
    reach = reachable(graph, [Point(30, -10)], 150.0)
    assert reach.snap.access_m[0] == pytest.approx(10.0)
    assert _distances(graph, reach) == pytest.approx({"A": 40, "B": 80, "D": 140})


def test_an_island_is_never_reached() -> None:
    graph = _lattice()
    reach = reachable(graph, [Point(1000, 50)], 5000.0)
    assert set(_distances(graph, reach)) == {"H1", "H2"}


# --------------------------------------------------------------------------- road pieces


def test_an_edge_reached_with_30_m_to_spare_gives_a_30_m_piece() -> None:
    """From A with 230 m: C and E are reached at 200 m, so C-F and E-F get 30 m each."""
    graph = _lattice()
    pieces = reached_edges(graph, reachable(graph, [Point(0, 0)], 230.0))
    (on_cf,) = _piece_on(graph, pieces, "C", "F")
    assert on_cf.length == pytest.approx(30.0)
    assert on_cf.touches(Point(NODES["C"])) or on_cf.intersects(Point(NODES["C"]))
    assert shapely.equals(on_cf, LineString([(200, 0), (200, 30)]))
    (on_ef,) = _piece_on(graph, pieces, "E", "F")
    assert shapely.equals(on_ef, LineString([(100, 100), (130, 100)]))
    # A-B, B-C, A-D, D-E, B-E whole, plus the two 30 m pieces.
    assert pieces.length_m == pytest.approx(5 * 100 + 2 * 30)


def test_one_edge_reached_from_both_ends_keeps_its_gap() -> None:
    """Facilities at A and B with 30 m each: A-B is walkable 30 m at each end, not between."""
    graph = _lattice()
    reach = reachable(graph, [Point(0, 0), Point(100, 0)], 30.0)
    pieces = reached_edges(graph, reach)
    on_ab = sorted(_piece_on(graph, pieces, "A", "B"), key=lambda g: g.bounds[0])
    assert [g.bounds for g in on_ab] == [(0, 0, 30, 0), (70, 0, 100, 0)]
    assert pieces.length_m == pytest.approx(5 * 30)  # A-B twice, A-D, B-E, B-C
    only_a = reached_edges(graph, reach, origin=0)
    assert only_a.length_m == pytest.approx(2 * 30)


def test_pieces_from_both_ends_that_meet_make_the_whole_edge() -> None:
    graph = _lattice()
    reach = reachable(graph, [Point(100, 0), Point(200, 0)], 60.0)
    (on_bc,) = _piece_on(graph, reached_edges(graph, reach), "B", "C")
    assert shapely.equals(on_bc, LineString([(100, 0), (200, 0)]))


def test_a_facility_on_a_dead_end() -> None:
    """Facility 10 m off F-Z, 80 m from F: all of F-Z, then 10 m into E-F and C-F."""
    graph = _lattice()
    reach = reachable(graph, [Point(280, 110)], 100.0)
    assert _distances(graph, reach) == pytest.approx({"F": 90, "Z": 30})
    pieces = reached_edges(graph, reach)
    assert pieces.length_m == pytest.approx(100 + 10 + 10)
    (on_fz,) = _piece_on(graph, pieces, "F", "Z")
    assert on_fz.length == pytest.approx(100.0)
    (on_cf,) = _piece_on(graph, pieces, "C", "F")
    assert shapely.equals(on_cf, LineString([(200, 90), (200, 100)]))


def test_a_facility_mid_edge_reaches_along_its_own_edge_without_a_junction() -> None:
    graph = _lattice()
    reach = reachable(graph, [Point(50, 0)], 20.0)
    assert len(reach.node) == 0
    (on_ab,) = reached_edges(graph, reach).geometry
    assert shapely.equals(on_ab, LineString([(30, 0), (70, 0)]))


def test_substrings_match_shapely_substring_on_bent_roads() -> None:
    rng = np.random.default_rng(7)
    lines = [LineString(np.cumsum(rng.uniform(1, 30, (8, 2)), axis=0)) for _ in range(20)]
    graph = RoadGraph.from_segments(lines)
    edge = np.repeat(np.arange(graph.n_edges), 5)
    a, b = rng.uniform(0, 1, (2, len(edge))) * graph.edge_length[edge]
    start, end = np.minimum(a, b), np.maximum(a, b) + 1e-3
    end = np.minimum(end, graph.edge_length[edge])
    ours = graph.substrings(edge, start, end)
    for e, s0, s1, got in zip(edge, start, end, ours, strict=True):
        want = substring(graph.edge_geometry[e], s0, s1)
        assert got.length == pytest.approx(s1 - s0, abs=1e-6)
        assert shapely.hausdorff_distance(got, want) < 1e-6


# --------------------------------------------------------------------------- polygons


def test_service_area_holds_the_reached_roads_strip_and_not_the_island() -> None:
    graph = _lattice()
    pieces = reached_edges(graph, reachable(graph, [Point(0, 0)], 230.0))
    area = service_area(pieces, buffer_m=25.0)
    assert isinstance(area, shapely.Polygon)
    assert area.covers(shapely.union_all(shapely.buffer(pieces.geometry, 24.9)))
    assert area.disjoint(LineString([(1000, 50), (1100, 50)]))
    assert not area.covers(Point(200, 80))  # C-F beyond the 30 m piece and its strip
    assert area.covers(Point(200, 50))  # within 25 m of the piece's end


def test_service_area_of_nothing_is_empty() -> None:
    assert service_area([], buffer_m=25.0).is_empty


def test_crow_flies_area_is_the_union_of_circles() -> None:
    area = crow_flies_area([Point(0, 0), Point(100, 0)], 75.0)
    assert area.covers(Point(50, 50)) and not area.covers(Point(0, 80))
    assert area.area == pytest.approx(shapely.union_all(shapely.buffer(
        [Point(0, 0), Point(100, 0)], 75.0)).area)  # fmt: skip


# --------------------------------------------------------------------------- grids


def _grids() -> gpd.GeoDataFrame:
    """Three 100 m grids side by side; the service area covers g1 and half of g2.

    100 +--------+---:----+--------+
        |   g1   |   : g2 |   g3   |     area: x <= 150
      0 +--------+---:----+--------+
        0       100 150  200      300
    """
    return gpd.GeoDataFrame(
        {"code": ["g1", "g2", "g3"]},
        geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100)],
        crs=UTM,
    )


def _households() -> gpd.GeoDataFrame:
    """2 in g1 (both covered); 5 in g2: 110, 140, and 150 (on the area's edge: covered)
    against 160, 190; none in g3."""
    xy = [(10, 10), (90, 90), (110, 50), (140, 50), (150, 20), (160, 50), (190, 50)]
    return gpd.GeoDataFrame(geometry=[Point(p) for p in xy], crs=UTM)


def test_share_of_households_and_land_per_grid() -> None:
    table = coverage_by_grid(box(0, 0, 150, 100), _grids(), _households())
    assert list(table["code"]) == ["g1", "g2", "g3"]
    assert list(table["households"]) == [2, 5, 0]
    assert list(table["covered_households"]) == [2, 3, 0]
    assert table["household_share"].iloc[:2].tolist() == pytest.approx([1.0, 0.6])
    assert np.isnan(table["household_share"].iloc[2])
    assert table["area_share"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert table["uncovered"].tolist() == [False, False, True]
    assert table["covered"].iloc[1].equals(box(100, 0, 150, 100))
    assert table["covered"].iloc[2].is_empty


def test_a_threshold_flags_thinly_covered_grids() -> None:
    table = coverage_by_grid(box(0, 0, 150, 100), _grids(), _households(), min_share=0.7)
    assert table["uncovered"].tolist() == [False, True, True]


def test_stored_grid_codes_give_the_same_table() -> None:
    grid_of = ["g1", "g1", "g2", "g2", "g2", "g2", "g2"]
    assigned = coverage_by_grid(box(0, 0, 150, 100), _grids(), _households())
    stored = coverage_by_grid(box(0, 0, 150, 100), _grids(), _households(), household_grid=grid_of)
    columns = ["households", "covered_households", "area_share", "uncovered"]
    assert assigned[columns].equals(stored[columns])
    with pytest.raises(InvalidInput) as info:
        coverage_by_grid(box(0, 0, 1, 1), _grids(), _households(), household_grid=["g9"] * 7)
    assert info.value.field == "household_grid"


def test_several_service_areas_count_as_their_union() -> None:
    table = coverage_by_grid([box(0, 0, 100, 100), box(100, 0, 150, 100)], _grids(), _households())
    assert list(table["covered_households"]) == [2, 3, 0]


def test_grids_and_households_must_share_a_metric_crs() -> None:
    with pytest.raises(CRSError) as info:
        coverage_by_grid(
            box(0, 0, 1, 1), _grids(), _households().set_crs(4326, allow_override=True)
        )
    assert info.value.field == "households"


# --------------------------------------------------------------------------- capacity


def test_household_distances_walk_from_the_door_to_the_road() -> None:
    graph = _lattice()
    reach = reachable(graph, [Point(0, 0)], 300.0)
    pairs = network_distances(graph, reach, [Point(50, -5), Point(100, 50), Point(1050, 60)])
    assert pairs.point.tolist() == [0, 1]  # the island household is out of reach
    assert pairs.distance_m.tolist() == pytest.approx([55.0, 150.0])


def test_two_step_floating_catchment_shares_capacity_among_those_in_reach() -> None:
    """f0 (10 places) at x=0 and f1 (30 places) at x=1000 on one road; households at
    100, 200, 900 and 500. Within 450 m: f0 serves 2 (5 each), f1 serves 1 (30)."""
    graph = RoadGraph.from_segments([LineString([(0, 0), (1000, 0)])], crs=UTM)
    homes = [Point(100, 0), Point(200, 0), Point(900, 0), Point(500, 0)]
    reach = reachable(graph, [Point(0, 0), Point(1000, 0)], 500.0)
    pairs = network_distances(graph, reach, homes)
    assert two_step_fca([10, 30], pairs, catchment_m=450.0).tolist() == pytest.approx(
        [5.0, 5.0, 30.0, 0.0]
    )
    # At 500 m the middle household is in both catchments and both shares shrink.
    assert two_step_fca([10, 30], pairs).tolist() == pytest.approx(
        [10 / 3, 10 / 3, 15.0, 10 / 3 + 15.0]
    )
    with pytest.raises(InvalidInput) as info:
        two_step_fca([10, 30], pairs, catchment_m=600.0)
    assert info.value.field == "catchment_m"


def test_missing_capacities_are_all_named() -> None:
    pairs = ODPairs(
        origin=np.empty(0, np.intp),
        point=np.empty(0, np.intp),
        distance_m=np.empty(0),
        n_origins=3,
        n_points=0,
        max_m=100.0,
    )
    with pytest.raises(InvalidInput, match="2 facility") as info:
        two_step_fca([None, 5, np.nan], pairs)
    assert (info.value.field, info.value.index) == ("capacity", 0)


def test_grid_scores_are_the_mean_of_their_households() -> None:
    table = coverage_by_grid(
        box(0, 0, 150, 100), _grids(), _households(), household_scores=[1, 3, 0, 0, 0, 0, 5]
    )
    assert table["score"].iloc[:2].tolist() == pytest.approx([2.0, 1.0])
    assert np.isnan(table["score"].iloc[2])


# --------------------------------------------------------------------------- a reach from elsewhere


def test_node_distances_from_pgrouting_give_the_same_pieces(porto_engine: Engine) -> None:
    """pgRouting is the oracle: ``pgr_drivingDistance`` over Porto's roads as PostGIS stores
    them gives the same junction distances as the bounded Dijkstra here, and fed back through
    :meth:`Reach.from_node_distances` the same walkable road pieces.

    The edges are this graph's (the noding rule has tests of its own above); vertex ids come
    from ``pgr_extractVertices`` and costs from ``ST_Length`` in SQL, and are matched back to
    the graph's nodes by their coordinates, as the docstring of ``node_index`` promises.
    """
    max_m = walk_distance_m(10)
    with porto_engine.connect() as conn:
        graph = NetworkCache().graph(conn, 32629)  # the app's own build of the stored roads
        conn.execute(text("CREATE TEMP TABLE walk_edge (id bigint, geom geometry) ON COMMIT DROP"))
        conn.execute(
            text("INSERT INTO walk_edge VALUES (:i, ST_SetSRID(ST_GeomFromWKB(:g), 32629))"),
            [{"i": i, "g": shapely.to_wkb(g)} for i, g in enumerate(graph.edge_geometry)],
        )
        conn.execute(
            text(
                "CREATE TEMP TABLE walk_vertex ON COMMIT DROP AS SELECT id, x, y, geom "
                "FROM pgr_extractVertices('SELECT id, geom FROM walk_edge')"
            )
        )
        edges_sql = (
            "SELECT e.id, s.id AS source, t.id AS target, ST_Length(e.geom) AS cost, "
            "ST_Length(e.geom) AS reverse_cost FROM walk_edge e "
            "JOIN walk_vertex s ON s.geom = ST_StartPoint(e.geom) "
            "JOIN walk_vertex t ON t.geom = ST_EndPoint(e.geom)"
        )
        starts = conn.execute(
            text(
                "SELECT DISTINCT ON (f.id) v.id, v.x, v.y FROM facility f "
                "CROSS JOIN LATERAL (SELECT id, x, y, geom FROM walk_vertex ORDER BY geom <-> "
                "ST_Transform(f.geom, 32629) LIMIT 1) v WHERE f.kind = 'pharmacy' ORDER BY f.id"
            )
        ).all()
        rows = (
            conn.execute(
                text(
                    "SELECT d.*, v.x, v.y FROM pgr_drivingDistance(:sql, :starts, :max_m, "
                    "directed => false) d JOIN walk_vertex v ON v.id = d.node"
                ),
                {"sql": edges_sql, "starts": [s.id for s in starts], "max_m": max_m},
            )
            .mappings()
            .all()
        )
        conn.rollback()
    assert len(starts) == 12 and len(rows) > 12 * 20  # Porto's pharmacies, each reaching some
    vertex_ids = [s.id for s in starts]
    origin_nodes = graph.node_index([s.x for s in starts], [s.y for s in starts])
    nodes = graph.node_index([r["x"] for r in rows], [r["y"] for r in rows])
    assert (origin_nodes >= 0).all() and (nodes >= 0).all()  # every pgRouting vertex is a node
    origin = [vertex_ids.index(r.get("from_v", r.get("start_vid"))) for r in rows]
    theirs = Reach.from_node_distances(
        graph,
        origin_nodes=origin_nodes,
        origin=origin,
        node=nodes,
        distance_m=[r["agg_cost"] for r in rows],
        max_m=max_m,
    )

    points = shapely.points(graph.node_xy[origin_nodes])
    ours = reachable(graph, gpd.GeoSeries(points, crs=32629), max_m)
    np.testing.assert_array_equal(ours.origin, theirs.origin)
    np.testing.assert_array_equal(ours.node, theirs.node)
    np.testing.assert_allclose(ours.distance_m, theirs.distance_m, atol=1e-6)
    mine, pgr = reached_edges(graph, ours), reached_edges(graph, theirs)
    assert mine.length_m == pytest.approx(pgr.length_m, abs=1e-3)
    assert service_area(mine).symmetric_difference(service_area(pgr)).area < 1e-3


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("minutes", [0, -5, 0.0, 121, 10_000, float("nan"), float("inf"), True])
def test_impossible_walks_are_refused_naming_minutes(minutes: float) -> None:
    with pytest.raises(InvalidInput) as info:
        walk_distance_m(minutes)
    assert info.value.field == "minutes"


@pytest.mark.parametrize("speed", [0, -4.5, 0.5, 40, float("nan")])
def test_impossible_speeds_are_refused(speed: float) -> None:
    with pytest.raises(InvalidInput) as info:
        walk_distance_m(10, speed_kmh=speed)
    assert info.value.field == "speed_kmh"


def test_minutes_become_metres_at_75_m_a_minute() -> None:
    assert walk_distance_m(10) == pytest.approx(750.0)
    assert walk_distance_m(120, speed_kmh=3.0) == pytest.approx(6000.0)


def test_an_unknown_kind_is_refused_listing_the_known_ones() -> None:
    facilities = gpd.GeoDataFrame(
        {"kind": ["clinic", "school", "clinic"]}, geometry=[Point(0, 0)] * 3, crs=UTM
    )
    assert len(facilities_of_kind(facilities, "clinic")) == 2
    with pytest.raises(InvalidInput, match="clinic, school") as info:
        facilities_of_kind(facilities, "pharmacy")
    assert info.value.field == "kind"


@pytest.mark.parametrize(("field", "call"), [
    ("max_m", lambda g: reachable(g, [Point(0, 0)], 0.0)),
    ("max_m", lambda g: reachable(g, [Point(0, 0)], float("nan"))),
    ("facilities", lambda g: reachable(g, [box(0, 0, 1, 1)], 10.0)),
    ("buffer_m", lambda g: service_area([LineString([(0, 0), (1, 0)])], buffer_m=-1)),
    ("radius_m", lambda g: crow_flies_area([Point(0, 0)], 0)),
    ("origin", lambda g: reached_edges(g, reachable(g, [Point(0, 0)], 10.0), origin=1)),
])  # fmt: skip
def test_bad_parameters_name_themselves(field: str, call: Callable[[RoadGraph], object]) -> None:
    with pytest.raises(InvalidInput) as info:
        call(_lattice())
    assert info.value.field == field


def test_roads_must_be_lines_in_metres() -> None:
    with pytest.raises(InvalidGeometry, match=r"\[1\] expected a line") as info:
        RoadGraph.from_segments([LineString([(0, 0), (1, 0)]), Point(0, 0)])
    assert info.value.index == 1
    with pytest.raises(CRSError):
        RoadGraph.from_segments(gpd.GeoSeries([LineString([(0, 0), (1, 0)])], crs=4326))
    with pytest.raises(CRSError) as crs_info:
        reachable(_lattice(), gpd.GeoSeries([Point(0, 0)], crs=4326), 10.0)
    assert crs_info.value.field == "facilities"


# --------------------------------------------------------------------------- property


def _floyd_warshall(n: int, edges: list[tuple[int, int, float]]) -> NDArray[np.float64]:
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0.0)
    for a, b, w in edges:
        dist[a, b] = dist[b, a] = min(dist[a, b], w)
    for k in range(n):
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return dist


@settings(max_examples=60, deadline=None)
@given(
    keep=st.lists(st.booleans(), min_size=24, max_size=24),
    flip=st.lists(st.booleans(), min_size=24, max_size=24),
    jitter=st.lists(st.integers(-30, 30), min_size=32, max_size=32),
    origin=st.tuples(st.floats(-50, 350), st.floats(-50, 250)),
    budget=st.floats(1.0, 600.0),
)
def test_bounded_dijkstra_matches_floyd_warshall_on_random_lattices(
    keep: list[bool],
    flip: list[bool],
    jitter: list[int],
    origin: tuple[float, float],
    budget: float,
) -> None:
    """A 4x3 node lattice, jittered, with random roads missing, bent and drawn backwards."""
    xy = [(100 * i + jitter[2 * (3 * i + j)], 100 * j + jitter[2 * (3 * i + j) + 1])
          for i in range(4) for j in range(3)]  # fmt: skip
    pairs = [(3 * i + j, 3 * i + j + 1) for i in range(4) for j in range(2)]
    pairs += [(3 * i + j, 3 * (i + 1) + j) for i in range(3) for j in range(3)]
    roads, edges = [], []
    for k, (a, b) in enumerate(pairs):
        if not keep[k % len(keep)]:
            continue
        bend = ((xy[a][0] + xy[b][0]) / 2 + 7.37, (xy[a][1] + xy[b][1]) / 2 + 3.11)
        line = LineString([xy[a], bend, xy[b]])
        roads.append(line.reverse() if flip[k % len(flip)] else line)
        edges.append((a, b, line.length))
    assume(roads)  # every road missing: no graph to walk (hypothesis draws another)
    graph = RoadGraph.from_segments(roads)
    full = _floyd_warshall(len(xy), edges)
    reach = reachable(graph, [Point(origin)], budget)
    e = int(reach.snap.edge[0])
    ends = [int(np.flatnonzero([graph.node_index([p[0]], [p[1]])[0] == n for p in xy])[0])
            for n in (graph.edge_u[e], graph.edge_v[e])]  # fmt: skip
    to_u = reach.snap.access_m[0] + reach.snap.along_m[0]
    to_v = reach.snap.access_m[0] + graph.edge_length[e] - reach.snap.along_m[0]
    want = np.minimum(to_u + full[ends[0]], to_v + full[ends[1]])
    got = np.full(len(xy), np.inf)
    for n, d in zip(*reach.for_origin(0), strict=True):
        x, y = graph.node_xy[n]
        got[xy.index((round(x), round(y)))] = d
    expected = np.where(want <= budget, want, np.inf)
    np.testing.assert_allclose(got, expected, atol=1e-6)


# --------------------------------------------------------------------------- Porto


@pytest.fixture(scope="module")
def porto(porto_gpkg: Path) -> tuple[RoadGraph, gpd.GeoDataFrame]:
    roads = gpd.read_file(porto_gpkg, layer="streets").to_crs(32629)
    facilities = gpd.read_file(porto_gpkg, layer="facilities").to_crs(32629)
    pharmacies = facilities_of_kind(facilities, "pharmacy", column="amenity")
    return RoadGraph.from_segments(roads), pharmacies


def test_porto_pharmacies_at_5_minutes(porto: tuple[RoadGraph, gpd.GeoDataFrame]) -> None:
    graph, pharmacies = porto
    max_m = walk_distance_m(5)
    assert max_m == pytest.approx(375.0)
    reach = reachable(graph, pharmacies, max_m)
    network = service_area(reached_edges(graph, reach))
    crow = crow_flies_area(pharmacies, max_m)
    assert 0 < network.area < crow.area
    # Nothing reached by the network lies beyond the circles grown by the roadside strip.
    assert network.difference(crow_flies_area(pharmacies, max_m + 50.0 + 0.01)).area < 1.0
    # No network distance beats the straight line (nodes sit on the cm grid: 1 cm slack).
    xy = shapely.get_coordinates(np.asarray(pharmacies.geometry.array))
    straight = np.hypot(*(graph.node_xy[reach.node] - xy[reach.origin]).T)
    assert np.all(reach.distance_m >= straight - 0.01)
    assert len(np.unique(reach.origin)) == len(pharmacies)  # every pharmacy walks somewhere
