"""Safe-zone events: one alert per episode, no flapping at the edge, SOS and battery once.

Most tests use one hand-drawn home grid in local metres::

     300 +-----------------------+   the zone: the grid grown by 200 m
         |   100 +-------+       |   (rounded corners), so it spans
         |       | grid  |       |   -200 … 300 on both axes;
         |     0 +-------+       |   leaving needs x > 310, returning x < 290
    -200 +-----------------------+   on the line y = 50
        -200     0      100     300
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box

from geo.care.datum import from_wgs84, to_wgs84
from geo.care.osmand import parse_osmand
from geo.care.safezone import (
    MetricFix,
    SafeZone,
    ZoneEvent,
    ZoneState,
    evaluate,
    stale,
)
from geo.errors import InvalidGeometry, InvalidInput
from tests.gpx import parse_gpx, walk_gpx

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
GRID = box(0, 0, 100, 100)
ZONE = SafeZone.around_grid(GRID)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _run(
    fixes: Iterable[MetricFix], zone: SafeZone = ZONE, **kw: float
) -> tuple[ZoneState, list[ZoneEvent]]:
    """Feed fixes in order, each evaluated at its own time, and collect every event."""
    state: ZoneState | None = None
    events: list[ZoneEvent] = []
    for fix in fixes:
        state, new = evaluate(state, fix, fix.time, zone, **kw)
        events.extend(new)
    assert state is not None
    return state, events


def _kinds(events: Iterable[ZoneEvent]) -> list[str]:
    return [e.kind for e in events]


def _walk_along_y50(xs: Iterable[float]) -> list[MetricFix]:
    return [MetricFix(x=x, y=50.0, time=_at(i)) for i, x in enumerate(xs)]


# --- the zone ------------------------------------------------------------------------------


def test_home_zone_is_the_grid_grown_by_200_m() -> None:
    assert ZONE.signed_distance(50, 50) == pytest.approx(-250)
    assert ZONE.signed_distance(300, 50) == pytest.approx(0, abs=1e-9)
    assert ZONE.signed_distance(310, 50) == pytest.approx(10)
    assert ZONE.geometry.covers(GRID)
    assert SafeZone.around_grid(GRID, buffer_m=0).geometry.equals(GRID)
    assert SafeZone.around_grid(GRID, buffer_m=50).signed_distance(160, 50) == pytest.approx(10)


def test_circle_zone_measures_exactly() -> None:
    zone = SafeZone.circle(1000.0, 2000.0, 150.0)
    assert zone.signed_distance(1000, 2000) == -150
    assert zone.signed_distance(1300, 2400) == pytest.approx(350)
    assert zone.geometry.area == pytest.approx(3.14159 * 150**2, rel=1e-3)


@pytest.mark.parametrize(
    ("grid", "buffer_m", "error"),
    [
        pytest.param(Polygon(), 200.0, InvalidGeometry, id="empty"),
        pytest.param(LineString([(0, 0), (1, 1)]), 200.0, InvalidGeometry, id="a line"),
        pytest.param(
            Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), 200.0, InvalidGeometry, id="bow-tie"
        ),
        pytest.param(GRID, -1.0, InvalidInput, id="negative buffer"),
        pytest.param(GRID, float("nan"), InvalidInput, id="NaN buffer"),
    ],
)
def test_bad_home_grids_are_refused(
    grid: Polygon | LineString, buffer_m: float, error: type[Exception]
) -> None:
    with pytest.raises(error):
        SafeZone.around_grid(grid, buffer_m=buffer_m)


@pytest.mark.parametrize("radius", [0.0, -5.0, float("inf")])
def test_bad_circles_are_refused(radius: float) -> None:
    with pytest.raises(InvalidInput) as info:
        SafeZone.circle(0, 0, radius)
    assert info.value.field == "radius_m"


def test_circle_too_small_for_the_return_margin_is_refused() -> None:
    with pytest.raises(InvalidInput, match="return could never"):
        evaluate(None, None, T0, SafeZone.circle(0, 0, 8.0))
    evaluate(None, None, T0, SafeZone.circle(0, 0, 8.0), return_margin_m=5.0)


# --- leaving and returning -----------------------------------------------------------------


def test_recorded_walk_leaves_once_and_returns_once() -> None:
    """Out along y = 50 to 600 m and back in 30 m steps: one exit, one return."""
    out = [50.0 + 30 * i for i in range(19)]  # 50 … 590
    walk = _walk_along_y50([*out, *reversed(out)])
    state, events = _run(walk)
    assert _kinds(events) == ["left_zone", "returned"]
    left, back = events
    assert left.position == (320.0, 50.0)  # the first fix more than 10 m outside
    assert left.time == _at(9)
    assert back.position == (260.0, 50.0)  # the first fix more than 10 m back inside
    assert not state.outside


def test_flapping_on_the_edge_raises_nothing() -> None:
    """GPS jitter of ±8 m round the edge never crosses the 10 m margins."""
    jitter = [292.0, 305.0, 298.0, 308.0, 295.0, 309.9, 291.0, 310.0] * 5
    _, events = _run(_walk_along_y50([50.0, *jitter]))
    assert events == []


def test_flapping_after_leaving_does_not_return_or_leave_again() -> None:
    jitter = [295.0, 305.0, 291.0, 318.0, 290.0] * 4
    _, events = _run(_walk_along_y50([50.0, 400.0, *jitter]))
    assert _kinds(events) == ["left_zone"]


def test_each_real_excursion_is_reported() -> None:
    _, events = _run(_walk_along_y50([50.0, 400.0, 50.0, 400.0, 50.0]))
    assert _kinds(events) == ["left_zone", "returned", "left_zone", "returned"]


def test_margins_are_configurable() -> None:
    _, events = _run(_walk_along_y50([50.0, 305.0, 296.0]), exit_margin_m=2, return_margin_m=2)
    assert _kinds(events) == ["left_zone", "returned"]


def test_a_first_fix_outside_leaves_at_once() -> None:
    state, events = evaluate(None, MetricFix(1000.0, 50.0, T0), T0, ZONE)
    assert _kinds(events) == ["left_zone"]
    assert state.outside


def test_circle_zone_walk() -> None:
    zone = SafeZone.circle(0.0, 50.0, 100.0)
    _, events = _run(_walk_along_y50([0.0, 105.0, 115.0, 95.0, 85.0]), zone=zone)
    assert [(e.kind, e.position) for e in events] == [
        ("left_zone", (115.0, 50.0)),
        ("returned", (85.0, 50.0)),
    ]


# --- SOS and battery -----------------------------------------------------------------------


def test_sos_once_per_alarm_even_if_repeated_on_following_fixes() -> None:
    alarms = [None, "sos", "sos", "sos", None, "sos", "fall"]
    fixes = [MetricFix(50.0, 50.0, _at(i), alarm=a) for i, a in enumerate(alarms)]
    _, events = _run(fixes)
    assert [(e.kind, e.detail, e.time) for e in events] == [
        ("sos", "sos", _at(1)),
        ("sos", "sos", _at(5)),
        ("sos", "fall", _at(6)),
    ]
    assert events[0].position == (50.0, 50.0)


def test_low_battery_once_until_it_recovers_past_the_hysteresis() -> None:
    levels = [60, 30, 19, 15, 18, 22, 24.9, 19, None, 25.5, 30, 19.5]
    fixes = [MetricFix(50.0, 50.0, _at(i), battery=b) for i, b in enumerate(levels)]
    _, events = _run(fixes)
    assert [(e.kind, e.time) for e in events] == [("low_battery", _at(2)), ("low_battery", _at(11))]
    assert events[0].detail == "19%"


def test_low_battery_threshold_is_configurable() -> None:
    fixes = [MetricFix(50.0, 50.0, _at(i), battery=b) for i, b in enumerate([40, 28])]
    _, events = _run(fixes, low_battery_pct=30)
    assert _kinds(events) == ["low_battery"]


def test_events_on_one_fix_come_most_urgent_first() -> None:
    fix = MetricFix(900.0, 50.0, T0, battery=5.0, alarm="sos")
    _, events = evaluate(None, fix, T0, ZONE)
    assert _kinds(events) == ["sos", "left_zone", "low_battery"]


# --- no fix --------------------------------------------------------------------------------


def test_stale() -> None:
    assert stale(None, T0, 30)
    assert not stale(T0, _at(30), 30)
    assert stale(T0, _at(30.01), 30)


def test_no_fix_once_per_silence_then_again_after_the_next_fix() -> None:
    state, _ = evaluate(None, MetricFix(50.0, 60.0, T0), T0, ZONE)
    all_events: list[ZoneEvent] = []
    for minutes in (10, 29, 31, 45, 120):
        state, events = evaluate(state, None, _at(minutes), ZONE)
        all_events += events
    assert [(e.kind, e.time, e.position) for e in all_events] == [("no_fix", _at(31), (50.0, 60.0))]
    state, events = evaluate(state, MetricFix(50.0, 50.0, _at(130)), _at(130), ZONE)
    assert events == []
    assert not state.no_fix
    state, events = evaluate(state, None, _at(161), ZONE)
    assert _kinds(events) == ["no_fix"]


def test_no_fix_minutes_is_configurable() -> None:
    state, _ = evaluate(None, MetricFix(50.0, 50.0, T0), T0, ZONE)
    _, events = evaluate(state, None, _at(6), ZONE, no_fix_minutes=5)
    assert _kinds(events) == ["no_fix"]


def test_no_fix_is_not_raised_before_a_first_fix() -> None:
    state, events = evaluate(None, None, _at(600), ZONE)
    assert events == []
    assert state == ZoneState()


def test_a_late_upload_of_an_old_fix_is_still_no_fix() -> None:
    """A fix taken 40 minutes ago says nothing about where the elder is now."""
    _, events = evaluate(None, MetricFix(50.0, 50.0, T0), _at(40), ZONE)
    assert _kinds(events) == ["no_fix"]


# --- order and input checks ----------------------------------------------------------------


def test_out_of_order_fixes_change_nothing_but_still_raise_sos() -> None:
    state, _ = _run(_walk_along_y50([50.0, 400.0]))  # outside, last fix at T0 + 1 min
    older_inside = MetricFix(50.0, 50.0, _at(0.5))
    after, events = evaluate(state, older_inside, _at(2), ZONE)
    assert events == []
    assert after == state
    older_sos = MetricFix(50.0, 50.0, _at(0.5), alarm="sos")
    after, events = evaluate(state, older_sos, _at(2), ZONE)
    assert _kinds(events) == ["sos"]
    assert after == state


def test_naive_times_and_non_finite_positions_are_refused() -> None:
    naive = datetime(2024, 5, 1, 8, 0)
    with pytest.raises(InvalidInput) as info:
        evaluate(None, None, naive, ZONE)
    assert info.value.field == "now"
    with pytest.raises(InvalidInput) as info:
        evaluate(None, MetricFix(1.0, 2.0, naive), T0, ZONE)
    assert info.value.field == "fix.time"
    with pytest.raises(InvalidInput) as info:
        evaluate(None, MetricFix(float("nan"), 2.0, T0), T0, ZONE)
    assert info.value.field == "fix"
    with pytest.raises(InvalidInput) as info:
        evaluate(None, None, T0, ZONE, exit_margin_m=-1)
    assert info.value.field == "exit_margin_m"


def test_state_and_events_are_frozen() -> None:
    state, events = evaluate(None, MetricFix(900.0, 50.0, T0), T0, ZONE)
    with pytest.raises(AttributeError):
        state.outside = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        events[0].kind = "returned"  # type: ignore[misc]


# --- the whole chain, as a device would send it --------------------------------------------


def test_gcj02_device_walk_from_gpx_through_osmand_to_events() -> None:
    """A walk in Karamay replayed as GCJ-02 OsmAnd reports: one exit, one return.

    The home grid is a 100 m square in UTM 45N. The walk goes 600 m east and back; each fix
    is written to GPX, read back, shifted to GCJ-02 as a phone SDK would report it, parsed as
    an OsmAnd query, converted back to WGS-84 and projected, as the service will do.
    """
    utm = "EPSG:32645"
    to_utm = Transformer.from_crs("EPSG:4326", utm, always_xy=True)
    to_lonlat = Transformer.from_crs(utm, "EPSG:4326", always_xy=True)
    cx, cy = to_utm.transform(84.87, 45.58)
    zone = SafeZone.around_grid(box(cx - 50, cy - 50, cx + 50, cy + 50))
    out = [30.0 * i for i in range(21)]  # 0 … 600 m east of the centre
    walk_xy = [(cx + dx, cy) for dx in [*out, *reversed(out)]]
    walk = [to_lonlat.transform(x, y) for x, y in walk_xy]
    replay = parse_gpx(walk_gpx(walk, T0, 20))

    state: ZoneState | None = None
    events: list[ZoneEvent] = []
    for lon, lat, time in replay:
        gcj_lon, gcj_lat = from_wgs84(lon, lat, "gcj02")
        report = {"id": "elder-07", "lat": repr(gcj_lat), "lon": repr(gcj_lon)}
        report["timestamp"] = str(int(time.timestamp() * 1000))
        fix = parse_osmand(report, now=time)
        x, y = to_utm.transform(*to_wgs84(fix.lon, fix.lat, "gcj02"))
        state, new = evaluate(state, MetricFix.from_fix(fix, x=x, y=y), time, zone)
        events.extend(new)

    assert _kinds(events) == ["left_zone", "returned"]
    assert events[0].position is not None
    assert Point(events[0].position).distance(Point(cx + 270, cy)) < 0.01
    assert events[0].time == T0 + timedelta(seconds=9 * 20)
