"""OsmAnd / Traccar Client reports: every accepted spelling, and every refusal naming its field.

The query strings are shaped like those Traccar Client (Android and iOS) and OsmAnd send; the
HTTP layer hands the decoded GET query or POST form over as a ``dict[str, str]``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

from geo.care.osmand import KNOT_MPS, Fix, parse_osmand
from geo.errors import InvalidInput

NOW = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
EPOCH_NOW = int(NOW.timestamp())  # 1714550400


def _query(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


def _parse(text: str, **kw: object) -> Fix:
    return parse_osmand(_query(text), now=NOW, **kw)  # type: ignore[arg-type]


def test_traccar_client_report_reads_every_field() -> None:
    fix = _parse(
        f"id=864512045678901&timestamp={EPOCH_NOW - 5}&lat=45.58&lon=84.87&speed=2.5"
        "&bearing=90.5&altitude=271.0&accuracy=8.5&batt=76.0&charge=true"
    )
    assert fix.device_id == "864512045678901"
    assert (fix.lon, fix.lat) == (84.87, 45.58)
    assert fix.time == NOW - timedelta(seconds=5)
    assert fix.time.tzinfo is UTC
    assert fix.speed_knots == 2.5
    assert fix.speed_mps == pytest.approx(2.5 * 0.514444, rel=1e-6)
    assert fix.bearing == 90.5
    assert fix.altitude == 271.0
    assert fix.accuracy_m == 8.5
    assert fix.battery == 76.0
    assert fix.charging is True
    assert fix.alarm is None
    assert fix.hdop is None
    assert dict(fix.attributes) == {}


def test_osmand_style_report_with_deviceid_heading_hdop_and_alarm() -> None:
    fix = _parse(
        "deviceid=elder-07&lat=31.2304&lon=121.4737&heading=270&hdop=1.2&alarm=sos&charge=0"
    )
    assert fix.device_id == "elder-07"
    assert fix.bearing == 270.0
    assert fix.hdop == 1.2
    assert fix.alarm == "sos"
    assert fix.charging is False


def test_location_parameter_is_lat_then_lon() -> None:
    fix = _parse("id=a&location=45.58,84.87")
    assert (fix.lat, fix.lon) == (45.58, 84.87)


def test_location_may_repeat_lat_lon_when_it_agrees() -> None:
    fix = _parse("id=a&lat=45.58&lon=84.87&location=45.58,84.87")
    assert (fix.lat, fix.lon) == (45.58, 84.87)


def test_unknown_parameters_are_kept_as_text_and_read_only() -> None:
    fix = _parse("id=a&lat=1.5&lon=2.5&ignition=true&driverUniqueId=42&activity=still")
    assert dict(fix.attributes) == {
        "ignition": "true",
        "driverUniqueId": "42",
        "activity": "still",
    }
    with pytest.raises(TypeError):
        fix.attributes["ignition"] = "false"  # type: ignore[index]


def test_fix_is_frozen_and_hashable() -> None:
    fix = _parse("id=a&lat=1.5&lon=2.5&extra=1")
    with pytest.raises(AttributeError):
        fix.lat = 2.0  # type: ignore[misc]
    assert hash(fix) == hash(_parse("id=a&lat=1.5&lon=2.5&extra=1"))


def test_speed_in_metres_per_second() -> None:
    assert pytest.approx(0.514444, rel=1e-5) == KNOT_MPS
    assert _parse("id=a&lat=1&lon=2&speed=10").speed_mps == pytest.approx(5.14444, rel=1e-5)
    assert _parse("id=a&lat=1&lon=2").speed_mps is None


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param(str(EPOCH_NOW), NOW, id="epoch seconds"),
        pytest.param(f"{EPOCH_NOW}.25", NOW + timedelta(milliseconds=250), id="decimal seconds"),
        pytest.param(str(EPOCH_NOW * 1000 - 1500), NOW - timedelta(seconds=1.5), id="epoch ms"),
        pytest.param("2024-05-01T07:59:00Z", NOW - timedelta(minutes=1), id="ISO Z"),
        pytest.param("2024-05-01T15:59:00+08:00", NOW - timedelta(minutes=1), id="ISO +08:00"),
        pytest.param("2024-05-01T07:59:00.123Z", NOW - timedelta(seconds=59.877), id="ISO ms"),
        pytest.param("2024-05-01 07:59:00", NOW - timedelta(minutes=1), id="space, no zone=UTC"),
        pytest.param("", NOW, id="empty: time of receipt"),
    ],
)
def test_timestamp_forms(timestamp: str, expected: datetime) -> None:
    fix = _parse(f"id=a&lat=1&lon=2&timestamp={timestamp.replace('+', '%2B')}")
    assert fix.time == expected
    assert fix.time.utcoffset() == timedelta(0)


def test_missing_timestamp_is_the_time_of_receipt_in_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    fix = parse_osmand({"id": "a", "lat": "1", "lon": "2"}, now=NOW.astimezone(beijing))
    assert fix.time == NOW
    assert fix.time.tzinfo is UTC


def test_future_skew_is_configurable() -> None:
    ahead = f"id=a&lat=1&lon=2&timestamp={EPOCH_NOW + 9 * 60}"
    assert _parse(ahead).time == NOW + timedelta(minutes=9)
    with pytest.raises(InvalidInput) as info:
        _parse(ahead, max_future_skew=timedelta(minutes=5))
    assert info.value.field == "timestamp"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param("lat=1&lon=2", "id", id="no id"),
        pytest.param("id=%20&lat=1&lon=2", "id", id="blank id"),
        pytest.param("id=a&deviceid=b&lat=1&lon=2", "deviceid", id="id and deviceid disagree"),
        pytest.param(f"id={'x' * 129}&lat=1&lon=2", "id", id="id too long"),
        pytest.param("id=a&lon=2", "lat", id="no lat"),
        pytest.param("id=a&lat=1", "lon", id="no lon"),
        pytest.param("id=a", "lat", id="no position at all"),
        pytest.param("id=a&lat=90.5&lon=2", "lat", id="lat > 90"),
        pytest.param("id=a&lat=1&lon=-180.5", "lon", id="lon < -180"),
        pytest.param("id=a&lat=nan&lon=2", "lat", id="NaN lat"),
        pytest.param("id=a&lat=1&lon=inf", "lon", id="infinite lon"),
        pytest.param("id=a&lat=45,58&lon=84.87", "lat", id="decimal comma"),
        pytest.param("id=a&lat=0&lon=0", "lat", id="0,0 no-fix marker"),
        pytest.param("id=a&location=45.58", "location", id="location with one number"),
        pytest.param("id=a&location=45.58,84.87,3", "location", id="location with three"),
        pytest.param("id=a&location=north,84.87", "location", id="location not numeric"),
        pytest.param("id=a&location=95,84.87", "location", id="location lat out of range"),
        pytest.param("id=a&lat=1&lon=2&location=3,4", "location", id="location disagrees"),
        pytest.param(f"id=a&lat=1&lon=2&timestamp={EPOCH_NOW + 11 * 60}", "timestamp", id="future"),
        pytest.param(
            f"id=a&lat=1&lon=2&timestamp={(EPOCH_NOW + 3600) * 1000}", "timestamp", id="future ms"
        ),
        pytest.param("id=a&lat=1&lon=2&timestamp=yesterday", "timestamp", id="timestamp text"),
        pytest.param("id=a&lat=1&lon=2&timestamp=1e400", "timestamp", id="timestamp overflow"),
        pytest.param("id=a&lat=1&lon=2&speed=fast", "speed", id="speed text"),
        pytest.param("id=a&lat=1&lon=2&speed=1_000", "speed", id="underscore digits"),
        pytest.param("id=a&lat=1&lon=2&bearing=east", "bearing", id="bearing text"),
        pytest.param("id=a&lat=1&lon=2&heading=nan", "heading", id="heading NaN"),
        pytest.param("id=a&lat=1&lon=2&altitude=high", "altitude", id="altitude text"),
        pytest.param("id=a&lat=1&lon=2&accuracy=x", "accuracy", id="accuracy text"),
        pytest.param("id=a&lat=1&lon=2&hdop=x", "hdop", id="hdop text"),
        pytest.param("id=a&lat=1&lon=2&batt=140", "batt", id="battery > 100 %"),
        pytest.param("id=a&lat=1&lon=2&charge=maybe", "charge", id="charge not boolean"),
    ],
)
def test_bad_reports_name_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _parse(text)
    assert info.value.field == field


def test_naive_now_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_osmand({"id": "a", "lat": "1", "lon": "2"}, now=datetime(2024, 5, 1))
    assert info.value.field == "now"


def test_values_are_trimmed_and_blank_optional_fields_ignored() -> None:
    fix = parse_osmand(
        {"id": " a ", "lat": " 45.58 ", "lon": "84.87", "speed": "", "alarm": " ", "batt": ""},
        now=NOW,
    )
    assert fix.device_id == "a"
    assert fix.lat == 45.58
    assert fix.speed_knots is None
    assert fix.alarm is None
    assert fix.battery is None
