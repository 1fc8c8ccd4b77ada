"""The deployment's metric CRS: configured, or picked once from the first data and then kept.

Keeping the choice in the database means lengths and areas never silently change because a
later import widened the extent.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from geo.crs import utm_epsg
from geo.errors import Unavailable

_KEY = "metric_epsg"


def metric_epsg(session: Session | Connection, override: int | None = None) -> int | None:
    """The EPSG code every distance and area is computed in, or None before any data exists.

    Chosen once, from the middle of the imported areas, and kept in ``deployment_setting`` so
    that later imports elsewhere never change the CRS that stored distances were measured in.
    """
    if override:
        return override
    stored = session.execute(
        text("SELECT value FROM deployment_setting WHERE key = :k"), {"k": _KEY}
    ).scalar_one_or_none()
    if stored:
        return int(stored)
    centre = session.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) AS c "
            "FROM (SELECT geom FROM community UNION ALL SELECT geom FROM road_segment "
            "UNION ALL SELECT geom FROM street) g) x WHERE c IS NOT NULL"
        )
    ).first()
    if centre is None:
        return None
    epsg = utm_epsg(float(centre[0]), float(centre[1]))
    # A hot standby (GRIDWORK_READ_DATABASE_URL) or any read-only transaction cannot keep it:
    # measuring in it is still right, and the primary stores it on its own first use.
    read_only = session.execute(text("SELECT current_setting('transaction_read_only')"))
    if read_only.scalar_one() == "on":
        return epsg
    session.execute(
        text("INSERT INTO deployment_setting (key, value) VALUES (:k, :v) ON CONFLICT DO NOTHING"),
        {"k": _KEY, "v": str(epsg)},
    )
    return epsg


def require_epsg(epsg: int | None) -> int:
    """The metric CRS, or a 503 saying why there is none yet (nothing imported)."""
    if epsg is None:
        raise Unavailable("no areas are imported yet, so there is no metric CRS to measure in")
    return epsg
