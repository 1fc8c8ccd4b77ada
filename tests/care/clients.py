"""The requests real tracking clients send, rebuilt from their sources, for replay in tests.

Each builder sends one report the way that client does (method, where the parameters go,
names, units, number formats, sentinels); the shapes come from:

* Traccar Client 10 (``traccar/traccar-client`` 10.x on ``traccar/traccar-client-sdk``:
  ``core/.../HttpUploader.kt``, ``Position.kt``, ``TrackerEngine.kt``): an url-encoded POST
  form to the server URL with ``id``, ``lat``/``lon`` (absent on a heartbeat without a
  fix), ``timestamp`` in epoch seconds, ``accuracy``, ``altitude``, ``speed`` in knots
  rounded to 2 decimals, ``bearing``, ``batt`` (an integer), ``charge`` (true/false),
  ``alarm``, ``battery_health``, ``battery_voltage``, ``battery_temp``. With JSON upload on,
  the same names as a JSON array of objects. Its buffer resends the oldest report until
  the answer is 2xx.
* Traccar Client 9.x (``traccar/traccar-client`` v9.7.x, ``lib/preferences.dart``, the
  ``locationTemplate`` of react/flutter background geolocation): a JSON POST
  ``{"location": {"timestamp": ISO, "coords": {latitude, longitude, accuracy, speed (m/s),
  heading, altitude}, "is_moving", "odometer", "event", "battery": {"level" (0..1, -1
  unknown), "is_charging"}, "activity": {"type"}, "extras": {...}, "_": "&id=…&lat=…"},
  "device_id": …}``; a sync of several positions sends ``location`` as an array. Its SOS
  quick action adds ``extras: {"alarm": "sos"}``. Traccar's own decoder tests
  (``OsmAndProtocolDecoderTest.testDecodeJson``) carry ``speed: -1``, ``heading: -1`` and
  ``battery.level: -1`` from iOS.
* The legacy Android client (``traccar/traccar-client-android``, ``ProtocolFormatter.kt``,
  ``RequestManager.kt``, ``Position.kt``, ``TrackingController.kt``): a POST with every
  parameter in the query string and no body; doubles printed by Kotlin (``87.0``), speed
  in knots, ``accuracy`` 0 for GPS; the buffer resends its oldest report every 30 s until
  the request succeeds (2xx).
* The legacy iOS client (``traccar/traccar-client-ios``, ``ProtocolFormatter.swift``,
  ``Position.swift``, ``RequestManager.swift``): a POST whose query string replaces the
  configured URL's (so no ``key=`` survives); ``lat``/``lon`` with 6 decimals, speed in
  knots, ``accuracy`` is CoreLocation's ``horizontalAccuracy`` (negative when invalid),
  ``batt`` is ``batteryLevel × 100`` (``-100`` when unknown). Traccar Client 10 on iOS
  (``IosLocationSource.kt``) also sends ``horizontalAccuracy`` as it is, ``-1`` included.
* OsmAnd's live tracking: a GET of the URL template the user types, ``{0}`` latitude,
  ``{1}`` longitude, ``{2}`` time in epoch milliseconds, ``{3}`` hdop, ``{4}`` altitude,
  ``{5}`` speed in m/s, ``{6}`` bearing; gridwork's README tells users to add
  ``speed_unit=mps`` to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi.testclient import TestClient

PATH = "/ingest/osmand"
KNOTS_PER_MPS = 1.94384  # the factor the Traccar clients multiply by


def _epoch_s(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp())


def traccar10(
    client: TestClient,
    key: str,
    device_id: str,
    when: datetime,
    *,
    lat: float | None = None,
    lon: float | None = None,
    speed_mps: float | None = None,
    accuracy: float | None = None,
    battery: int | None = 80,
    charging: bool | None = False,
    alarm: str | None = None,
) -> Any:
    """Traccar Client 10: form POST; no ``lat``/``lon`` on a heartbeat without a fix;
    ``accuracy`` as the platform gives it (iOS: -1 when invalid)."""
    form: dict[str, str] = {"id": device_id}
    if lat is not None and lon is not None:
        form["lat"] = str(lat)
        form["lon"] = str(lon)
    form["timestamp"] = str(_epoch_s(when))
    if accuracy is not None:
        form["accuracy"] = str(accuracy)
    if lat is not None:
        form["altitude"] = "271.0"
    if speed_mps is not None:
        form["speed"] = str(round(speed_mps * KNOTS_PER_MPS * 100) / 100)
        form["bearing"] = "90.0"
    if battery is not None:
        form["batt"] = str(battery)
    if charging is not None:
        form["charge"] = "true" if charging else "false"
    if alarm is not None:
        form["alarm"] = alarm
    form["battery_health"] = "good"
    form["battery_voltage"] = "4012"
    return client.post(PATH, params={"key": key}, data=form)


def traccar10_json(
    client: TestClient, key: str, device_id: str, fixes: list[tuple[datetime, float, float]]
) -> Any:
    """Traccar's client SDK with JSON upload: an array of flat objects, speed in knots."""
    body = [
        {
            "id": device_id,
            "lat": lat,
            "lon": lon,
            "timestamp": _epoch_s(when),
            "accuracy": 6.0,
            "speed": round(1.5 * KNOTS_PER_MPS * 100) / 100,
            "batt": 64,
            "charge": False,
        }
        for when, lat, lon in fixes
    ]
    return client.post(PATH, params={"key": key}, json=body)


def traccar9_location(
    when: datetime,
    lat: float,
    lon: float,
    *,
    speed_mps: float = 1.2,
    heading: float = 63.0,
    accuracy: float = 3.8,
    level: float = 0.79,
    charging: bool = False,
    extras: dict[str, Any] | None = None,
    device_id: str = "",
) -> dict[str, Any]:
    """One location as Traccar Client 9.x's template renders it."""
    stamp = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "timestamp": stamp,
        "coords": {
            "latitude": lat,
            "longitude": lon,
            "accuracy": accuracy,
            "speed": speed_mps,
            "heading": heading,
            "altitude": 35.7,
        },
        "is_moving": speed_mps > 0,
        "odometer": 0,
        "event": "motionchange",
        "battery": {"level": level, "is_charging": charging},
        "activity": {"type": "on_foot"},
        "extras": extras or {},
        "_": f"&id={device_id}&lat={lat}&lon={lon}&timestamp={stamp}&",
    }


def traccar9(
    client: TestClient, key: str, device_id: str, location: dict[str, Any] | list[dict[str, Any]]
) -> Any:
    """Traccar Client 9.x: a JSON POST of one location or (a sync) an array of them."""
    return client.post(
        PATH, params={"key": key}, json={"location": location, "device_id": device_id}
    )


def legacy_android(
    client: TestClient,
    key: str,
    device_id: str,
    when: datetime,
    lat: float,
    lon: float,
    *,
    speed_mps: float = 0.0,
    battery: float = 87.0,
    alarm: str | None = None,
) -> Any:
    """The legacy Android client: POST, everything in the query string, no body."""
    query = {
        "key": key,
        "id": device_id,
        "timestamp": str(_epoch_s(when)),
        "lat": repr(lat),
        "lon": repr(lon),
        "speed": repr(speed_mps * 1.943844),
        "bearing": "0.0",
        "altitude": "0.0",
        "accuracy": "0.0",
        "batt": repr(battery),
    }
    if alarm is not None:
        query["alarm"] = alarm
    return client.post(PATH, params=query)


def legacy_ios(
    client: TestClient,
    server_url: str,
    device_id: str,
    when: datetime,
    lat: float,
    lon: float,
    *,
    accuracy: float = -1.0,
    battery: float = -100.0,
) -> Any:
    """The legacy iOS client: POST to the configured URL whose query it *replaces* with its
    own (``URLComponents.query = …``), so a ``?key=`` in the URL never arrives; accuracy is
    CoreLocation's -1 when invalid, battery ``batteryLevel`` -1 × 100 when unknown."""
    query = (
        f"id={device_id}&timestamp={_epoch_s(when)}&lat={lat:.6f}&lon={lon:.6f}&speed=0.0"
        f"&bearing=0.0&altitude=12.5&accuracy={accuracy!r}&batt={battery!r}"
    )
    parts = urlsplit(server_url)
    return client.post(urlunsplit(parts._replace(query=query)))


def osmand_live(
    client: TestClient,
    key: str,
    device_id: str,
    when: datetime,
    lat: float,
    lon: float,
    *,
    speed_mps: float = 1.2,
) -> Any:
    """OsmAnd's live tracking: a GET of the template
    ``…/ingest/osmand?key=K&id=ID&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}
    &speed={5}&bearing={6}&speed_unit=mps``, the time in epoch milliseconds."""
    query = {
        "key": key,
        "id": device_id,
        "lat": repr(lat),
        "lon": repr(lon),
        "timestamp": str(int(when.astimezone(UTC).timestamp() * 1000)),
        "hdop": "3.0",
        "altitude": "271.0",
        "speed": repr(speed_mps),
        "bearing": "45.0",
        "speed_unit": "mps",
    }
    return client.get(PATH, params=query)
