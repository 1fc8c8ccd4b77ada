"""WGS-84 ↔ GCJ-02 ↔ BD-09: undo the offsets Chinese maps and phone SDKs add to coordinates.

Wearables and phone SDKs sold in China usually report GCJ-02 (AMap, Tencent) or BD-09
(Baidu), not WGS-84. Taken as WGS-84 such a fix lands a few hundred metres off, which is
often in the wrong grid, and for a lost elder that sends staff to the wrong street. Every
coordinate that enters gridwork from such a device goes through :func:`to_wgs84` first; maps
built on a Chinese tile provider would go through :func:`from_wgs84` on the way out.

The forward transforms are the well-known public formulas:

* WGS-84 → GCJ-02: the ``transformLat`` / ``transformLon`` polynomials on the Krasovsky 1940
  ellipsoid (``a = 6378245``, ``e² = 0.00669342162296594323``).
* GCJ-02 → BD-09: Baidu's polar rotation with ``x_pi = π · 3000 / 180`` and the fixed
  ``(+0.0065, +0.006)`` degree offset.

Neither has a closed-form inverse. The inverses here solve ``forward(w) = p`` by fixed-point
iteration, ``w ← w − (forward(w) − p)``, which converges because the offsets change by a few
hundredths of a degree per degree at most: the Jacobian is close to the identity (the one
exception, the ``√|lon − 105|`` term, is steep only within micrometres of 105°E, where it
moves points by less than that). Iterations stop when every point moved by less than 1e-9
degrees (0.1 mm) and are bounded by ``_MAX_ITERATIONS``; within China 5 iterations reach
that, and the round trip error measured with ``pyproj.Geod`` is a few micrometres.

Which points are shifted: only those inside the bounding box commonly used for "in China"
(lon 72.004–137.8347, lat 0.8293–55.8271, the box of ``prcoords`` and ``eviltransform``),
not a polygon of the border. Outside it both datums are taken to equal WGS-84, so all three
conversions are the identity there, for BD-09 too (a plain ``gcj → bd`` formula would add
the Baidu offset anyway). The box is coarse on purpose: its edges lie more than 100 km from
Chinese territory, so no point in China is left unshifted and the jump at an edge never
falls in a Chinese district. It does include Mongolia, the Korean peninsula, western Japan
and parts of other neighbours, where GCJ-02 does not apply; gridwork serves Chinese
districts only, so that does not matter here. The test is made on the coordinates given, in
their own datum, as ``prcoords`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.errors import InvalidInput

Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[Datum, ...] = ("wgs84", "gcj02", "bd09")

# Krasovsky 1940, the ellipsoid the GCJ-02 formula uses.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# Baidu's rotation constant and offsets, in degrees.
_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.0060

CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)
"""(min lon, min lat, max lon, max lat) of the box in which coordinates are shifted."""

_TOLERANCE_DEG = 1e-9
_MAX_ITERATIONS = 30

FloatArray = NDArray[np.float64]
_Forward = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]
_Way = Callable[[_Forward, FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Whether GCJ-02 / BD-09 apply at a point: the coarse box of the module docstring."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    west, south, east, north = CHINA_BBOX
    return (x >= west) & (x <= east) & (y >= south) & (y <= north)


@overload
def to_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]: ...
@overload
def to_wgs84(lon: ArrayLike, lat: ArrayLike, datum: Datum) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(
    lon: ArrayLike, lat: ArrayLike, datum: Datum
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Turn a device's GCJ-02 / BD-09 coordinates into the WGS-84 every grid is stored in.

    Scalars in give floats out; arrays (any shape, the same for both) give float64 arrays.
    NaN, infinite or out-of-range values raise ``InvalidInput`` naming the field and the
    (flat) index of the first bad value, since one silently wrong fix misplaces an elder.
    """
    return _converted(_invert, lon, lat, datum)


@overload
def from_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]: ...
@overload
def from_wgs84(lon: ArrayLike, lat: ArrayLike, datum: Datum) -> tuple[FloatArray, FloatArray]: ...
def from_wgs84(
    lon: ArrayLike, lat: ArrayLike, datum: Datum
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Shift WGS-84 coordinates into the datum a Chinese map or SDK expects.

    Same input rules as :func:`to_wgs84`; exact (the forward formulas), no iteration.
    """
    return _converted(_forward, lon, lat, datum)


def _converted(
    way: _Way, lon: ArrayLike, lat: ArrayLike, datum: Datum
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    """Checked input taken ``way`` (:func:`_forward` or :func:`_invert`) through the datum's
    raw formula; WGS-84 is copied as it is."""
    x, y, scalar = _checked(lon, lat, datum)
    raw = _FROM_WGS84_RAW.get(datum)
    out = (x.copy(), y.copy()) if raw is None else way(raw, x, y)
    return _shaped(out, scalar)


def _checked(lon: ArrayLike, lat: ArrayLike, datum: str) -> tuple[FloatArray, FloatArray, bool]:
    """Refuse an unknown datum and NaN or out-of-range values, naming the first bad index."""
    if datum not in DATUMS:
        raise InvalidInput(f"unknown datum {datum!r}; expected one of {DATUMS}", field="datum")
    try:
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("coordinates must be numbers", field="lon/lat") from exc
    if x.shape != y.shape:
        raise InvalidInput(
            f"lon has shape {x.shape} but lat has shape {y.shape}; they must match",
            field="lon/lat",
        )
    scalar = x.ndim == 0
    for name, values, limit in (("lon", x, 180.0), ("lat", y, 90.0)):
        bad = ~(np.abs(values) <= limit)  # NaN compares False, so it is caught too
        if bad.any():
            flat = np.flatnonzero(bad.ravel())
            first = int(flat[0])
            value = float(values.ravel()[first])
            count = f" ({flat.size} bad values)" if flat.size > 1 else ""
            raise InvalidInput(
                f"{value} is not a {name} in [-{limit:g}, {limit:g}]{count}",
                field=name,
                index=None if scalar else first,
            )
    return x, y, scalar


def _shaped(
    out: tuple[FloatArray, FloatArray], scalar: bool
) -> tuple[float, float] | tuple[FloatArray, FloatArray]:
    if scalar:
        return float(out[0]), float(out[1])
    return out


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 shift in degrees at WGS-84 points, as if every point were in China."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + common
        + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + common
        + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    )
    rad_lat = np.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * pi)
    return d_lon, d_lat


def _gcj_to_bd_raw(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Baidu's rotation of GCJ-02 coordinates, applied to every point."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _wgs_to_gcj_raw(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    d_lon, d_lat = _gcj_offset(lon, lat)
    return lon + d_lon, lat + d_lat


def _wgs_to_bd_raw(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_to_bd_raw(*_wgs_to_gcj_raw(lon, lat))


_FROM_WGS84_RAW: dict[str, _Forward] = {"gcj02": _wgs_to_gcj_raw, "bd09": _wgs_to_bd_raw}
"""Each shifted datum's raw formula from WGS-84 (no China test)."""


def _forward(raw: _Forward, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Apply a raw forward formula in China and the identity elsewhere."""
    inside = in_china(lon, lat)
    f_lon, f_lat = raw(lon, lat)
    return np.where(inside, f_lon, lon), np.where(inside, f_lat, lat)


def _invert(raw: _Forward, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Solve ``raw(w) = p`` for the points in China by fixed-point iteration.

    The raw formula (no China test) is iterated so a guess that strays over the box edge
    does not stall. Only points not yet converged are iterated, so one slow point does not
    cost the whole array another pass. Points outside China are returned as they are.
    """
    target_lon = lon.reshape(-1)
    target_lat = lat.reshape(-1)
    out_lon = target_lon.copy()
    out_lat = target_lat.copy()
    active = np.flatnonzero(in_china(target_lon, target_lat))
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        f_lon, f_lat = raw(out_lon[active], out_lat[active])
        step_lon = f_lon - target_lon[active]
        step_lat = f_lat - target_lat[active]
        out_lon[active] -= step_lon
        out_lat[active] -= step_lat
        active = active[np.maximum(np.abs(step_lon), np.abs(step_lat)) >= _TOLERANCE_DEG]
    return out_lon.reshape(lon.shape), out_lat.reshape(lat.shape)
