"""GPX 1.1 tracks in and out, so a recorded or drawn walk can be replayed as device fixes.

End-to-end tests of the lost-elder alerts need walks that leave a safe zone and come back.
:func:`walk_gpx` writes such a walk from a list of points as a GPX track any GPS tool reads
(and a phone can replay through Traccar Client); :func:`parse_gpx` reads a track back, from
this module or from a real recorder, as ``(lon, lat, time)`` in file order.

Coordinates are WGS-84 longitude / latitude, as GPX requires; times are UTC. Only the
standard library is used. GPX never needs a DTD, so a document that declares one (the road
to entity-expansion attacks on an XML parser) is refused before parsing.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from geo.errors import InvalidInput

GPX_NS = "http://www.topografix.com/GPX/1/1"
_GPX_10_NS = "http://www.topografix.com/GPX/1/0"

Point = tuple[float, float]
TimedPoint = tuple[float, float, datetime]


def walk_gpx(
    points: Iterable[Point],
    start_time: datetime,
    interval_s: float,
    *,
    name: str = "walk",
) -> str:
    """A GPX 1.1 track of ``(lon, lat)`` points, one every ``interval_s`` from ``start_time``.

    Times are written in UTC with millisecond precision, so fractional intervals survive a
    round trip through :func:`parse_gpx` within a millisecond.
    """
    _require_aware(start_time, "start_time")
    if not math.isfinite(interval_s) or interval_s <= 0:
        raise InvalidInput(f"{interval_s} is not an interval > 0 s", field="interval_s")
    root = ET.Element(
        "gpx", {"xmlns": GPX_NS, "version": "1.1", "creator": "gridwork tests.gpx.walk_gpx"}
    )
    track = ET.SubElement(root, "trk")
    ET.SubElement(track, "name").text = name
    segment = ET.SubElement(track, "trkseg")
    # Children are written unqualified under the default namespace declared on <gpx>, so
    # the output has no ns0: prefixes and needs no change to ElementTree's global registry.
    start = start_time.astimezone(UTC)
    for i, (raw_lon, raw_lat) in enumerate(points):
        # float() first: numpy scalars would otherwise be written as "np.float64(…)".
        lon, lat = float(raw_lon), float(raw_lat)
        _check_lon_lat(lon, lat, i)
        point = ET.SubElement(segment, "trkpt", {"lat": repr(lat), "lon": repr(lon)})
        time = start + timedelta(seconds=i * interval_s)
        ET.SubElement(point, "time").text = _format_time(time)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def parse_gpx(text: str) -> list[TimedPoint]:
    """Every track point of a GPX 1.0 / 1.1 document as ``(lon, lat, time)``, in file order.

    A point without a time, or with coordinates out of range, is refused naming its index,
    since a replay without times cannot test anything that depends on time.
    """
    head = text[:4096].upper()
    if "<!DOCTYPE" in head or "<!ENTITY" in text.upper():
        raise InvalidInput("GPX needs no DTD; documents that declare one are refused", field="gpx")
    try:
        # DTDs are refused above and ElementTree resolves no external entities.
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidInput(f"not well-formed XML: {exc}", field="gpx") from exc
    ns = _namespace(root.tag)
    if _local(root.tag) != "gpx" or ns not in (GPX_NS, _GPX_10_NS):
        raise InvalidInput(f"the root element is {root.tag!r}, not a GPX <gpx>", field="gpx")
    out: list[TimedPoint] = []
    for i, point in enumerate(root.iter(f"{{{ns}}}trkpt")):
        lat = _coordinate(point.get("lat"), "lat", i)
        lon = _coordinate(point.get("lon"), "lon", i)
        _check_lon_lat(lon, lat, i)
        time_text = point.findtext(f"{{{ns}}}time")
        if time_text is None or not time_text.strip():
            raise InvalidInput("the track point has no <time>", field="time", index=i)
        out.append((lon, lat, _parse_time(time_text.strip(), i)))
    return out


def _format_time(time: datetime) -> str:
    return time.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str, index: int) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time", field="time", index=index) from exc
    if parsed.tzinfo is None:  # GPX times are UTC by definition
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _coordinate(value: str | None, name: str, index: int) -> float:
    if value is None:
        raise InvalidInput("the track point has no such attribute", field=name, index=index)
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a number", field=name, index=index) from exc


def _check_lon_lat(lon: float, lat: float, index: int) -> None:
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidInput(f"{lon} is not a longitude in [-180, 180]", field="lon", index=index)
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"{lat} is not a latitude in [-90, 90]", field="lat", index=index)


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("must be timezone-aware", field=name)
