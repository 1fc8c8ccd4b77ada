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
``speed``              knots, as every Traccar client sends it; ``m/s`` with
                       ``speed_unit=mps`` (OsmAnd's live tracking: put it in the URL template),
                       ``km/h`` with ``speed_unit=kmh`` (``Fix.speed_mps`` is metres per second)
``bearing`` / ``heading``  degrees clockwise from north
``altitude``           metres
``accuracy``           metres (the radius the device is 68 % sure of)
``hdop``               horizontal dilution of precision
``batt``               battery level in percent
``charge``             ``true`` / ``false`` (``1`` / ``0``, any case)
``valid``              ``false`` / ``0``: the device itself says the position is not a fix
                       (stored, but it does not move the safe-zone state)
``alarm``              an alarm the device raised (``sos``, ``fall``, …), kept as sent
anything else          kept in ``Fix.attributes`` as text, unchanged
=====================  =====================================================================

Negative values of ``speed``, ``bearing``/``heading``, ``accuracy``, ``hdop`` and ``batt``
are the "unknown" sentinels of the clients (``batt=-1`` from trackers with no battery
reading, ``accuracy=-1`` from iOS, whose CoreLocation marks an invalid reading so,
``speed=-1`` and ``heading=-1`` from Traccar Client 9.x): they are read as unknown (``None``),
not refused.

:func:`read_report` is what ingest uses. A report with no position at all (or with the
``0,0`` "no fix" marker trackers send; taken literally it would place an elder in the Gulf of
Guinea) is a :class:`KeepAlive`: the device is alive and says its battery, but not where it
is. Traccar Client 10 sends one on its heartbeat when it has no fix. A time in the future is
returned as sent: whether to keep such a fix is the caller's decision (a buffering client
retries a refused report for ever, see ``data.care.service``).

:func:`parse_osmand` is the strict reading, a :class:`Fix` or an error: it refuses a missing
position, the ``0,0`` marker, and a timestamp more than ``max_future_skew`` (10 minutes) after
``now`` (a device clock wrong by years, or milliseconds sent as seconds, would otherwise make
its fix "the latest" for ever).

Both refuse a missing or empty id, NaN, infinity, out-of-range coordinates and any value that
is not a number where a number belongs (``InvalidInput`` naming the field).

:func:`reports_from_json` turns the JSON bodies the clients post into the same parameters:
Traccar Client 9.x (``{"location": {…} or [{…}, …], "device_id": …}``, the
``react-native-background-geolocation`` shape, speed in m/s, battery as a fraction) and
the flat objects (or an array of them) of Traccar's client SDK in JSON mode.

Coordinates are returned as the device sent them, in its datum. Devices sold in China
usually send GCJ-02 or BD-09: convert with :func:`geo.care.datum.to_wgs84` before using them.

Privacy: parsing a report says nothing about whether gridwork may keep it. The caller keeps
fixes only from devices enrolled for an elder who has consented, and drops the rest unread.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from geo.errors import InvalidInput

KNOT_MPS = 1852.0 / 3600.0
"""One knot (one nautical mile per hour) in metres per second."""
KMH_MPS = 1000.0 / 3600.0

SpeedUnit = Literal["kn", "mps", "kmh"]
_SPEED_UNITS: dict[str, float] = {"kn": KNOT_MPS, "mps": 1.0, "kmh": KMH_MPS}
MAX_JSON_REPORTS = 1000

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
        "valid",
        "speed_unit",
    }
)
# Epoch values below 2**31 are seconds, above milliseconds: Traccar's rule. Seconds reach
# 2**31 only in 2038, milliseconds pass it 25 days after 1970, so nothing real is ambiguous.
_MILLISECONDS_FROM = 2**31
_EPOCH_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


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
    valid: bool = True

    @property
    def speed_mps(self) -> float | None:
        """Speed in metres per second, the unit every other measure in gridwork uses."""
        return None if self.speed_knots is None else self.speed_knots * KNOT_MPS


@dataclass(frozen=True)
class KeepAlive:
    """A report without a position: the device is alive (and may say its battery or raise
    an alarm) but does not know where it is."""

    device_id: str
    time: datetime
    battery: float | None = None
    charging: bool | None = None
    alarm: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


Report = Fix | KeepAlive


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
    report = read_report(params, now=now)
    if isinstance(report, KeepAlive):
        # Say what is missing, as the position reading would.
        _strict_position(params)
        raise InvalidInput("0,0 is the 'no fix' marker trackers send, not a position", field="lat")
    if report.time > now + max_future_skew:
        raise InvalidInput(
            f"{report.time.isoformat()} is more than {max_future_skew} after the time of "
            f"receipt {now.astimezone(UTC).isoformat()}; the device clock or its unit is wrong",
            field="timestamp",
        )
    return report


def read_report(params: Mapping[str, str], *, now: datetime) -> Fix | KeepAlive:
    """One report as ingest takes it: a :class:`Fix`, or a :class:`KeepAlive` when it has no
    position; the time as the device sent it, even in the future. Refuses (``InvalidInput``)
    only what cannot be read."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("must be timezone-aware", field="now")
    device_id = _device_id(params)
    position = _position(params)
    time = _timestamp(params.get("timestamp"), now=now)
    alarm = params.get("alarm", "").strip() or None
    battery = _number(params, "batt", maximum=100.0, sentinel=True)
    charging = _boolean(params, "charge")
    attributes = MappingProxyType({k: v for k, v in params.items() if k not in _KNOWN})
    if position is None:
        return KeepAlive(device_id, time, battery, charging, alarm, attributes)
    unit = _speed_unit(params)
    speed = _number(params, "speed", sentinel=True)
    bearing = _number(params, "bearing", sentinel=True)
    if bearing is None:
        bearing = _number(params, "heading", sentinel=True)
    valid = _boolean(params, "valid")
    return Fix(
        device_id=device_id,
        lon=position[1],
        lat=position[0],
        time=time,
        speed_knots=None if speed is None else speed * _SPEED_UNITS[unit] / KNOT_MPS,
        bearing=bearing,
        altitude=_number(params, "altitude"),
        accuracy_m=_number(params, "accuracy", sentinel=True),
        hdop=_number(params, "hdop", sentinel=True),
        battery=battery,
        charging=charging,
        alarm=alarm,
        attributes=attributes,
        valid=valid is not False,
    )


def _speed_unit(params: Mapping[str, str]) -> SpeedUnit:
    text = params.get("speed_unit", "").strip().lower() or "kn"
    if text not in _SPEED_UNITS:
        raise InvalidInput(
            f"{text[:20]!r} is not a speed unit: kn (the default), mps or kmh", field="speed_unit"
        )
    return text  # type: ignore[return-value]


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


def _position(params: Mapping[str, str]) -> tuple[float, float] | None:
    """(latitude, longitude) from ``lat`` + ``lon``, or else from ``location=lat,lon``;
    ``None`` for a report without a position (nothing sent, or the ``0,0`` marker)."""
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
    if lat is None and lon is None:
        return None
    if lat is None:
        raise InvalidInput("a latitude is required with a longitude (lat)", field="lat")
    if lon is None:
        raise InvalidInput("a longitude is required with a latitude (lon)", field="lon")
    if lat == 0.0 and lon == 0.0:
        return None
    return lat, lon


def _strict_position(params: Mapping[str, str]) -> None:
    """For :func:`parse_osmand`: name the missing half of a position, if one is missing."""
    if _number(params, "lat") is None and not params.get("location", "").strip():
        raise InvalidInput("a latitude is required (lat, or location=lat,lon)", field="lat")
    if _number(params, "lon") is None and not params.get("location", "").strip():
        raise InvalidInput("a longitude is required (lon, or location=lat,lon)", field="lon")


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
    sentinel: bool = False,
) -> float | None:
    """A number, ``None`` when absent; with ``sentinel``, a negative value is "unknown"."""
    value = params.get(name)
    if value is None or not value.strip():
        return None
    number = _parse_float(value, name, minimum=None if sentinel else minimum, maximum=maximum)
    if sentinel and number < 0:
        return None
    return number


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


# --------------------------------------------------------------------------- JSON bodies

# Kept from a Traccar Client 9.x location besides coords, battery and extras (as attributes).
_JSON_LOCATION_KEPT = ("event", "is_moving", "odometer", "mock")


def reports_from_json(body: Any) -> list[dict[str, str]]:
    """The reports of a JSON body, each as the OsmAnd parameters :func:`read_report` reads.

    * Traccar Client 9.x: ``{"location": {...} | [{...}, ...], "device_id": "..."}`` with
      ``timestamp`` (ISO 8601), ``coords`` (``latitude``, ``longitude``, ``accuracy``,
      ``speed`` in m/s, ``heading``, ``altitude``), ``battery`` (``level`` as a fraction,
      ``-1`` unknown; ``is_charging``) and ``extras`` (``alarm`` raises it, e.g. ``sos``;
      the rest is kept as attributes);
    * flat objects, or an array of them, with the OsmAnd names (``id``, ``lat``, ``lon``,
      ``timestamp``, ``speed`` in knots, ``batt``, ``charge``, ``alarm`` …), as Traccar's
      client SDK posts when set to JSON.
    """
    if isinstance(body, dict) and "location" in body:
        locations = body["location"]
        if isinstance(locations, dict):
            locations = [locations]
        if not isinstance(locations, list) or not locations:
            raise InvalidInput(
                "must be a location object or a non-empty array of them", field="location"
            )
        _check_count(len(locations), "location")
        device_id = body.get("device_id")
        rest = {k: v for k, v in body.items() if k not in ("location", "device_id")}
        out = []
        for i, location in enumerate(locations):
            where = f"location[{i}]" if len(locations) > 1 else "location"
            out.append(_from_location(location, device_id, rest, where))
        return out
    if isinstance(body, dict):
        return [_flat(body, "body")]
    if isinstance(body, list) and body:
        _check_count(len(body), "body")
        return [_flat(item, f"body[{i}]") for i, item in enumerate(body)]
    raise InvalidInput(
        "a JSON body must be a Traccar Client location ({'location': …, 'device_id': …}), "
        "an object of OsmAnd parameters, or a non-empty array of them",
        field="body",
    )


def _check_count(n: int, name: str) -> None:
    if n > MAX_JSON_REPORTS:
        raise InvalidInput(f"{n} reports; at most {MAX_JSON_REPORTS} per request", field=name)


def _from_location(
    location: Any, device_id: Any, rest: Mapping[str, Any], where: str
) -> dict[str, str]:
    if not isinstance(location, dict):
        raise InvalidInput("must be an object", field=where)
    params: dict[str, str] = {}
    # Top-level members other than location (Traccar Client's ``params``) apply to each.
    for name, value in rest.items():
        _put(params, name, value, where)
    if device_id is not None:
        _put(params, "id", device_id, where)
    if "timestamp" in location:
        _put(params, "timestamp", location["timestamp"], where)
    coords = location.get("coords")
    if coords is not None:
        if not isinstance(coords, dict):
            raise InvalidInput("must be an object", field=f"{where}.coords")
        for source, target in (
            ("latitude", "lat"),
            ("longitude", "lon"),
            ("accuracy", "accuracy"),
            ("speed", "speed"),
            ("heading", "bearing"),
            ("altitude", "altitude"),
        ):
            if coords.get(source) is not None:
                _put(params, target, coords[source], f"{where}.coords")
        params["speed_unit"] = "mps"  # the geolocation plugin reports metres per second
    battery = location.get("battery")
    if battery is not None:
        if not isinstance(battery, dict):
            raise InvalidInput("must be an object", field=f"{where}.battery")
        level = battery.get("level")
        if isinstance(level, int | float) and not isinstance(level, bool):
            if 0 <= level <= 1:
                params["batt"] = f"{round(level * 100, 1):g}"
            elif level > 1:
                raise InvalidInput(
                    f"{level} is not a fraction between 0 and 1", field=f"{where}.battery.level"
                )
        elif level is not None:
            raise InvalidInput("must be a number", field=f"{where}.battery.level")
        if battery.get("is_charging") is not None:
            _put(params, "charge", battery["is_charging"], f"{where}.battery")
    activity = location.get("activity")
    if isinstance(activity, dict) and isinstance(activity.get("type"), str):
        params["activity"] = activity["type"]
    for name in _JSON_LOCATION_KEPT:
        if location.get(name) is not None:
            _put(params, name, location[name], where)
    extras = location.get("extras")
    if extras is not None:
        if not isinstance(extras, dict):
            raise InvalidInput("must be an object", field=f"{where}.extras")
        for name, value in extras.items():
            if value is not None and name != "key":
                _put(params, str(name), value, f"{where}.extras")
    return params


def _flat(item: Any, where: str) -> dict[str, str]:
    if not isinstance(item, dict):
        raise InvalidInput("must be an object of OsmAnd parameters", field=where)
    params: dict[str, str] = {}
    for name, value in item.items():
        if value is not None and name != "key":
            _put(params, str(name), value, where)
    return params


def _put(params: dict[str, str], name: str, value: Any, where: str) -> None:
    """One JSON value as the text a query string would carry; objects kept as JSON text."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
    else:  # pragma: no cover - JSON has no other types
        raise InvalidInput("is not a JSON value", field=f"{where}.{name}"[:64])
    if name in params and params[name] != text:
        raise InvalidInput("given twice with different values", field=f"{where}.{name}"[:64])
    params[name] = text
