"""GPX walks: what :func:`walk_gpx` writes, :func:`parse_gpx` reads back, and what is refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import InvalidInput
from tests.gpx import GPX_NS, parse_gpx, walk_gpx

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
WALK = [(84.87, 45.58), (84.8705, 45.5801), (84.871, 45.5802)]


def test_walk_is_gpx_1_1_with_one_track_of_timed_points() -> None:
    text = walk_gpx(WALK, T0, 30, name="Karamay test walk")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<gpx xmlns="')
    root = ET.fromstring(text)
    assert root.tag == f"{{{GPX_NS}}}gpx"
    assert root.get("version") == "1.1"
    assert root.get("creator")
    assert root.findtext(f"{{{GPX_NS}}}trk/{{{GPX_NS}}}name") == "Karamay test walk"
    points = root.findall(f".//{{{GPX_NS}}}trkpt")
    assert [(p.get("lon"), p.get("lat")) for p in points] == [
        ("84.87", "45.58"),
        ("84.8705", "45.5801"),
        ("84.871", "45.5802"),
    ]
    assert [p.findtext(f"{{{GPX_NS}}}time") for p in points] == [
        "2024-05-01T08:00:00.000Z",
        "2024-05-01T08:00:30.000Z",
        "2024-05-01T08:01:00.000Z",
    ]


def test_round_trip_keeps_points_and_times() -> None:
    assert parse_gpx(walk_gpx(WALK, T0, 30)) == [
        (84.87, 45.58, T0),
        (84.8705, 45.5801, T0 + timedelta(seconds=30)),
        (84.871, 45.5802, T0 + timedelta(seconds=60)),
    ]


def test_start_time_in_another_zone_is_written_in_utc() -> None:
    beijing = datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    assert "<time>2024-05-01T08:00:00.000Z</time>" in walk_gpx(WALK[:1], beijing, 1)
    assert parse_gpx(walk_gpx(WALK[:1], beijing, 1))[0][2] == T0


def test_numpy_coordinates_are_written_as_plain_numbers() -> None:
    walk = list(zip(np.array([84.87, 84.88]), np.array([45.58, 45.59]), strict=True))
    text = walk_gpx(walk, T0, 1)
    assert "np.float64" not in text
    assert [p[:2] for p in parse_gpx(text)] == [(84.87, 45.58), (84.88, 45.59)]


def test_empty_walk_is_a_valid_empty_track() -> None:
    assert parse_gpx(walk_gpx([], T0, 10)) == []


@settings(max_examples=50, deadline=None)
@given(
    points=st.lists(st.tuples(st.floats(-180, 180), st.floats(-90, 90)), max_size=20),
    interval_ms=st.integers(1, 3_600_000),
)
def test_round_trip_is_exact_for_coordinates_and_millisecond_times(
    points: list[tuple[float, float]], interval_ms: int
) -> None:
    parsed = parse_gpx(walk_gpx(points, T0, interval_ms / 1000))
    assert [(lon, lat) for lon, lat, _ in parsed] == points
    for i, (_, _, time) in enumerate(parsed):
        assert abs(time - (T0 + timedelta(milliseconds=i * interval_ms))) < timedelta(
            milliseconds=1
        )


def test_reads_gpx_1_0_and_points_of_several_tracks_in_file_order() -> None:
    text = """<?xml version="1.0"?>
<gpx version="1.0" creator="a recorder" xmlns="http://www.topografix.com/GPX/1/0">
  <wpt lat="1" lon="1"><name>not a track point</name></wpt>
  <trk><trkseg>
    <trkpt lat="45.58" lon="84.87"><ele>270</ele><time>2024-05-01T08:00:00Z</time></trkpt>
  </trkseg></trk>
  <trk><trkseg>
    <trkpt lat="45.59" lon="84.88"><time>2024-05-01T16:00:05+08:00</time></trkpt>
  </trkseg></trk>
</gpx>"""
    assert parse_gpx(text) == [
        (84.87, 45.58, T0),
        (84.88, 45.59, T0 + timedelta(seconds=5)),
    ]


@pytest.mark.parametrize(
    ("text", "field", "index"),
    [
        pytest.param("<gpx", "gpx", None, id="not well-formed"),
        pytest.param("<kml xmlns='http://www.opengis.net/kml/2.2'/>", "gpx", None, id="KML"),
        pytest.param("<gpx version='1.1'/>", "gpx", None, id="no namespace"),
        pytest.param(
            '<!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx xmlns="http://www.topografix.com/GPX/1/1"/>',
            "gpx",
            None,
            id="DTD with entities",
        ),
        pytest.param(
            f'<gpx xmlns="{GPX_NS}"><trk><trkseg><trkpt lat="1" lon="2"><time>'
            "2024-05-01T08:00:00Z</time></trkpt><trkpt lat='1' lon='2'/></trkseg></trk></gpx>",
            "time",
            1,
            id="second point without time",
        ),
        pytest.param(
            f'<gpx xmlns="{GPX_NS}"><trk><trkseg><trkpt lat="1" lon="2"><time>'
            "at eight</time></trkpt></trkseg></trk></gpx>",
            "time",
            0,
            id="time not ISO",
        ),
        pytest.param(
            f'<gpx xmlns="{GPX_NS}"><trk><trkseg><trkpt lat="95" lon="2"><time>'
            "2024-05-01T08:00:00Z</time></trkpt></trkseg></trk></gpx>",
            "lat",
            0,
            id="lat out of range",
        ),
        pytest.param(
            f'<gpx xmlns="{GPX_NS}"><trk><trkseg><trkpt lat="1"><time>'
            "2024-05-01T08:00:00Z</time></trkpt></trkseg></trk></gpx>",
            "lon",
            0,
            id="no lon",
        ),
        pytest.param(
            f'<gpx xmlns="{GPX_NS}"><trk><trkseg><trkpt lat="1" lon="east"><time>'
            "2024-05-01T08:00:00Z</time></trkpt></trkseg></trk></gpx>",
            "lon",
            0,
            id="lon not a number",
        ),
    ],
)
def test_bad_documents_name_the_problem(text: str, field: str, index: int | None) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_gpx(text)
    assert info.value.field == field
    assert info.value.index == index


def test_bad_walks_are_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        walk_gpx(WALK, datetime(2024, 5, 1, 8, 0), 10)
    assert info.value.field == "start_time"
    for interval in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidInput) as info:
            walk_gpx(WALK, T0, interval)
        assert info.value.field == "interval_s"
    with pytest.raises(InvalidInput) as info:
        walk_gpx([(84.87, 45.58), (200.0, 45.0)], T0, 10)
    assert (info.value.field, info.value.index) == ("lon", 1)
