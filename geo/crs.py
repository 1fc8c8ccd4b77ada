"""Coordinate systems: WGS-84 at the edges, a projected metric CRS for every measurement."""

from __future__ import annotations

from pyproj import CRS
from pyproj.exceptions import CRSError as PyprojCRSError

from geo.errors import CRSError, InvalidInput


def utm_epsg(lon: float, lat: float) -> int:
    """The WGS-84 UTM zone holding a point: metric, conformal, < 0.1 % scale error in-zone."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"({lon}, {lat}) is not a WGS-84 lon/lat", field="lon/lat")
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def parse_crs(value: str | int, *, field: str = "crs") -> CRS:
    """Accept ``4326``, ``"EPSG:4326"`` or any pyproj string; refuse unknown codes by name."""
    text = str(value).strip()
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return CRS.from_user_input(text)
    except PyprojCRSError as exc:
        raise CRSError(f"unknown coordinate reference system '{value}'", field=field) from exc


def require_metric(crs: CRS | None, *, field: str = "crs") -> None:
    """Measurements in degrees are meaningless; fail loudly instead of returning them."""
    if crs is None or not crs.is_projected:
        raise CRSError(f"a projected metric CRS is required, got {crs}", field=field)
