"""Points as callers send them (lon/lat or any EPSG code) checked and turned into WGS-84.

Every refusal names the field and the position in the batch, so a clerk can find the bad
row: a NaN, a longitude beyond ±180, a latitude beyond ±90 — and when the latitude is beyond
±90 while the longitude is within ±90, the pair was almost certainly sent as lat/lon, which
the message says.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as PyprojCRSError

from geo.errors import CRSError, InvalidInput

WGS84 = 4326

FloatArray = NDArray[np.float64]


@lru_cache(maxsize=32)
def _to_wgs84(epsg: int) -> Transformer:
    try:
        source = CRS.from_epsg(epsg)
    except PyprojCRSError as exc:
        raise CRSError(f"unknown EPSG code {epsg}", field="crs") from exc
    return Transformer.from_crs(source, CRS.from_epsg(WGS84), always_xy=True)


def check_epsg(epsg: int) -> None:
    """Refuse an EPSG code pyproj does not know, naming the ``crs`` field."""
    _to_wgs84(int(epsg))


def to_lonlat(
    x: ArrayLike, y: ArrayLike, *, epsg: int = WGS84, field: str = "points"
) -> tuple[FloatArray, FloatArray]:
    """WGS-84 lon/lat for points given in ``epsg`` (x = easting/lon first), or InvalidInput."""
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    _first_bad(~(np.isfinite(xs) & np.isfinite(ys)), xs, ys, field, "is not a finite number")
    if epsg != WGS84:
        transformer = _to_wgs84(int(epsg))
        lon, lat = transformer.transform(xs, ys)
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        _first_bad(
            ~(np.isfinite(lon) & np.isfinite(lat)),
            xs,
            ys,
            field,
            f"cannot be placed on the earth from EPSG:{epsg}",
        )
    else:
        lon, lat = xs, ys
    check_lonlat(lon, lat, field=field)
    return lon, lat


def check_lonlat(lon: FloatArray, lat: FloatArray, *, field: str = "points") -> None:
    """Finite, |lon| ≤ 180, |lat| ≤ 90; a pair that looks swapped is named as such."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    x, y = float(lon[i]), float(lat[i])
    more = int(bad.sum()) - 1
    tail = f"; {more} more point(s) like this" if more else ""
    if not (np.isfinite(x) and np.isfinite(y)):
        reason = f"({x}, {y}) is not a finite lon/lat"
    elif abs(y) > 90 and abs(x) <= 90 and abs(y) <= 180:
        reason = (
            f"latitude {y} is beyond ±90 and longitude {x} within ±90: "
            "this looks like lat/lon swapped; send lon first"
        )
    elif abs(y) > 90:
        reason = f"latitude {y} is out of range [-90, 90]"
    else:
        reason = f"longitude {x} is out of range [-180, 180]"
    raise InvalidInput(reason + tail, field=field, index=i)


def _first_bad(
    mask: NDArray[np.bool_], xs: FloatArray, ys: FloatArray, field: str, why: str
) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        more = int(mask.sum()) - 1
        tail = f"; {more} more point(s) like this" if more else ""
        raise InvalidInput(f"({xs[i]}, {ys[i]}) {why}{tail}", field=field, index=i)
