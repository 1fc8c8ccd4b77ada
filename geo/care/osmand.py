"""Read one position report in the OsmAnd protocol, as Traccar Client and OsmAnd send it.

Wearables and phone apps for elders who may get lost report their position as an HTTP
request whose GET query or url-encoded POST form holds ``id=…&lat=…&lon=…&timestamp=…``.
The HTTP layer turns either into a ``dict[str, str]``; :func:`parse_osmand` turns that into a
:class:`Fix` or refuses it with ``InvalidInput`` naming the field, so a garbled report is
answered with a 400 the device can log instead of a wrong dot on the map.

The parameters follow Traccar's ``OsmAndProtocolDecoder``:

=====================  =====================================================================
``id`` / ``deviceid``  the device's unique id (both accepted; if both are sent they must agree)
``lat`` + ``lon``      degrees; or ``location=lat,lon`` (latitude first, as OsmAnd sends it)
``timestamp``          epoch seconds, epoch milliseconds (values ≥ 2³¹ are milliseconds, as
                       in Traccar), ISO 8601, or ``yyyy-MM-dd HH:mm:ss``; a time without zone
                       is UTC; missing → the time of receipt (``now``), as Traccar does
``speed``              knots (``Fix.speed_mps`` gives metres per second)
``bearing`` / ``heading``  degrees clockwise from north
``altitude``           metres
``accuracy``           metres (the radius the device is 68 % sure of)
``hdop``               horizontal dilution of precision
``batt``               battery level in percent
``charge``             ``true`` / ``false`` (``1`` / ``0`` accepted)
``alarm``              an alarm the device raised (``sos``, ``fall``, …), kept as sent
anything else          kept in ``Fix.attributes`` as text, unchanged
=====================  =====================================================================

What is refused, and why:

* a missing or empty id, and a missing position: nothing can be done with such a fix;
* ``lat = lon = 0``: trackers send it when they have no fix (Traccar substitutes the last
  known position); taken literally it would place an elder in the Gulf of Guinea and raise a
  false "left the safe zone" alarm;
* a timestamp more than ``max_future_skew`` (10 minutes by default) after ``now``: a device
  clock that is wrong by years, or milliseconds sent as seconds, would otherwise make its
  fix "the latest" for ever and hide every true fix after it;
* NaN, infinity, out-of-range coordinates and any value that is not a number where a number
  belongs.

Coordinates are returned as the device sent them, in its datum. Devices sold in China
usually send GCJ-02 or BD-09: convert with :func:`geo.care.datum.to_wgs84` before using them.

Privacy: parsing a report says nothing about whether gridwork may keep it. The caller keeps
fixes only from devices enrolled for an elder who has consented, and drops the rest unread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from geo.errors import InvalidInput

KNOT_MPS = 1852.0 / 3600.0
"""One knot (one nautical mile per hour) in metres per second."""

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=10)
MAX_DEVICE_ID_LENGTH = 128

_KNOWN = frozenset(
    {
        "id",
        "deviceid",
        "lat",
        "lon",
        "location",
        "timestamp",
        "speed",
        "bearing",
        "heading",
        "altitude",
        "accuracy",
        "hdop",
        "batt",
        "charge",
        "alarm",
    }
)
# Epoch values below 2**31 are seconds, above milliseconds: Traccar's rule. Seconds reach
# 2**31 only in 2038, milliseconds pass it 25 days after 1970, so nothing real is ambiguous.
_MILLISECONDS_FROM = 2**31
_EPOCH_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True)
class Fix:
    """One position report, checked; coordinates in the device's datum, time in UTC."""

    device_id: str
    lon: float
    lat: float
    time: datetime
    speed_knots: float | None = None
    bearing: float | None = None
    altitude: float | None = None
    accuracy_m: float | None = None
    hdop: float | None = None
    battery: float | None = None
    charging: bool | None = None
    alarm: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def speed_mps(self) -> float | None:
        """Speed in metres per second, the unit every other measure in gridwork uses."""
        return None if self.speed_knots is None else self.speed_knots * KNOT_MPS


def parse_osmand(
    params: Mapping[str, str],
    *,
    now: datetime,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Fix:
    """Turn one OsmAnd / Traccar Client report into a :class:`Fix`, or say which field is bad.

    ``now`` is the time of receipt (aware); it is passed in so tests and replays of recorded
    walks are deterministic.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("must be timezone-aware", field="now")
    device_id = _device_id(params)
    lat, lon = _position(params)
    time = _timestamp(params.get("timestamp"), now=now)
    if time > now + max_future_skew:
        raise InvalidInput(
            f"{time.isoformat()} is more than {max_future_skew} after the time of receipt "
            f"{now.astimezone(UTC).isoformat()}; the device clock or its unit is wrong",
            field="timestamp",
        )
    bearing = _number(params, "bearing")
    if bearing is None:
        bearing = _number(params, "heading")
    alarm = params.get("alarm", "").strip() or None
    return Fix(
        device_id=device_id,
        lon=lon,
        lat=lat,
        time=time,
        speed_knots=_number(params, "speed"),
        bearing=bearing,
        altitude=_number(params, "altitude"),
        accuracy_m=_number(params, "accuracy", minimum=0.0),
        hdop=_number(params, "hdop", minimum=0.0),
        battery=_number(params, "batt", minimum=0.0, maximum=100.0),
        charging=_boolean(params, "charge"),
        alarm=alarm,
        attributes=MappingProxyType({k: v for k, v in params.items() if k not in _KNOWN}),
    )


def _device_id(params: Mapping[str, str]) -> str:
    ids = {
        name: value.strip()
        for name in ("id", "deviceid")
        if (value := params.get(name)) is not None and value.strip()
    }
    if not ids:
        raise InvalidInput("a device id is required (id or deviceid)", field="id")
    if len(set(ids.values())) > 1:
        raise InvalidInput(
            f"id {ids['id']!r} and deviceid {ids['deviceid']!r} disagree", field="deviceid"
        )
    device_id = next(iter(ids.values()))
    if len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise InvalidInput(
            f"is {len(device_id)} characters long; at most {MAX_DEVICE_ID_LENGTH} are allowed",
            field="id",
        )
    return device_id


def _position(params: Mapping[str, str]) -> tuple[float, float]:
    """Latitude and longitude from ``lat`` + ``lon``, or else from ``location=lat,lon``."""
    lat = _number(params, "lat", minimum=-90.0, maximum=90.0)
    lon = _number(params, "lon", minimum=-180.0, maximum=180.0)
    location = params.get("location")
    if location is not None and location.strip():
        parts = location.split(",")
        if len(parts) != 2:
            raise InvalidInput(
                f"{location!r} is not 'lat,lon' (two numbers separated by a comma)",
                field="location",
            )
        loc_lat = _parse_float(parts[0], "location", minimum=-90.0, maximum=90.0)
        loc_lon = _parse_float(parts[1], "location", minimum=-180.0, maximum=180.0)
        if lat is None and lon is None:
            lat, lon = loc_lat, loc_lon
        elif (lat, lon) != (loc_lat, loc_lon):
            raise InvalidInput(
                f"{location!r} disagrees with lat={lat}, lon={lon}; send one position",
                field="location",
            )
    if lat is None:
        raise InvalidInput("a latitude is required (lat, or location=lat,lon)", field="lat")
    if lon is None:
        raise InvalidInput("a longitude is required (lon, or location=lat,lon)", field="lon")
    if lat == 0.0 and lon == 0.0:
        raise InvalidInput("0,0 is the 'no fix' marker trackers send, not a position", field="lat")
    return lat, lon


def _timestamp(value: str | None, *, now: datetime) -> datetime:
    """Epoch seconds, epoch milliseconds, ISO 8601 or ``yyyy-MM-dd HH:mm:ss``, as UTC."""
    if value is None or not value.strip():
        return now.astimezone(UTC)
    text = value.strip()
    try:
        if _EPOCH_NUMBER.fullmatch(text):
            number = float(text)
            seconds = number / 1000.0 if abs(number) >= _MILLISECONDS_FROM else number
            return datetime.fromtimestamp(seconds, tz=UTC)
        # fromisoformat (3.11) reads ISO 8601 with "T" or a space, "Z" and offsets alike.
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput(
            f"{value!r} is neither epoch seconds, epoch milliseconds nor an ISO 8601 time",
            field="timestamp",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _number(
    params: Mapping[str, str],
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    return _parse_float(value, name, minimum=minimum, maximum=maximum)


def _parse_float(
    value: str, name: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """A finite decimal number within bounds; NaN, infinity and ``1_000`` are refused."""
    text = value.strip()
    try:
        if "_" in text:
            raise ValueError(text)
        number = float(text)
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a number", field=name) from exc
    if not math.isfinite(number):
        raise InvalidInput(f"{value!r} is not a finite number", field=name)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        low = "-∞" if minimum is None else f"{minimum:g}"
        high = "∞" if maximum is None else f"{maximum:g}"
        raise InvalidInput(f"{number:g} is outside [{low}, {high}]", field=name)
    return number


def _boolean(params: Mapping[str, str], name: str) -> bool | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{value!r} is not true or false", field=name)
