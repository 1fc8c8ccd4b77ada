"""Public, non-personal layers as GeoJSON built inside PostGIS.

Building the FeatureCollection in SQL (``ST_AsGeoJSON`` + ``json_build_object``) avoids
shipping geometries through Python objects just to serialise them again. Households, elders
and positions are deliberately absent from this registry: they are personal data and are
never served as a plain layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from data.access.queries import WITHIN_AREA_SQL, AreaScope
from data.policy import FACILITY_ROW_SQL
from geo.errors import NotFound


@dataclass(frozen=True)
class LayerSpec:
    table: str
    id_column: str
    properties: dict[str, str]  # output name -> SQL expression over alias ``t``
    scope: str  # SQL over ``t`` and the bound id arrays, applied unless unrestricted
    joins: str = ""
    where: str = "TRUE"
    order: str = "t.id"


LAYERS: dict[str, LayerSpec] = {
    "streets": LayerSpec(
        table="street",
        id_column="t.code",
        properties={"code": "t.code", "name": "t.name", "name_local": "t.name_local"},
        scope="t.id = ANY(:street_ids)",
    ),
    "communities": LayerSpec(
        table="community",
        id_column="t.code",
        properties={
            "code": "t.code",
            "name": "t.name",
            "name_local": "t.name_local",
            "kind": "t.kind::text",
            "street_code": "s.code",
            "population": "t.population",
            "households": "(SELECT count(*) FROM household h JOIN building b "
            "ON b.id = h.building_id WHERE b.community_id = t.id)",
        },
        joins="LEFT JOIN street s ON s.id = t.street_id",
        scope="t.id = ANY(:community_ids)",
    ),
    "grids": LayerSpec(
        table="grid",
        id_column="t.code",
        properties={
            "code": "t.code",
            "community_code": "c.code",
            "worker_code": "w.code",
            "worker_name": "w.display_name",
            "households": "coalesce(n.households, 0)",  # kept by the store (0022)
            "valid_from": "t.valid_from::text",
        },
        joins="JOIN community c ON c.id = t.community_id LEFT JOIN worker w ON w.id = t.worker_id "
        "LEFT JOIN grid_households n ON n.grid_id = t.id",
        where="t.valid_to IS NULL",
        scope="t.id = ANY(:grid_ids)",
    ),
    "roads": LayerSpec(
        table="road_segment",
        id_column="t.source_id",
        properties={"source_id": "t.source_id", "name": "t.name", "class": "t.road_class"},
        scope=WITHIN_AREA_SQL,
    ),
    "facilities": LayerSpec(
        table="facility",
        id_column="t.source_id",
        properties={
            "source_id": "t.source_id",
            "kind": "t.kind",
            "name": "t.name",
            "capacity": "t.capacity",
        },
        # The rule of ``GET /facilities/{id}``: the facility's grid is one of the caller's.
        scope=FACILITY_ROW_SQL,
    ),
}


@dataclass(frozen=True)
class FeaturePage:
    features: list[dict[str, Any]]
    number_matched: int


def feature_page(
    session: Session,
    layer: str,
    *,
    scope: AreaScope,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> FeaturePage:
    """One page of a layer, lon/lat order (RFC 7946), optionally filtered by a WGS-84 bbox."""
    spec = LAYERS.get(layer)
    if spec is None:
        raise NotFound(f"unknown layer '{layer}'", field="layer")
    props = ", ".join(f"'{name}', {expr}" for name, expr in spec.properties.items())
    where = spec.where
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if not scope.unrestricted:
        where += f" AND {spec.scope}"
        params.update(
            street_ids=scope.sql_ids("street"),
            community_ids=scope.sql_ids("community"),
            grid_ids=scope.sql_ids("grid"),
        )
    if bbox is not None:
        where += " AND t.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"
        params.update(dict(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True)))
    # Identifiers come from the fixed registry above; values are bound parameters.
    base = f"FROM {spec.table} t {spec.joins} WHERE {where}"
    rows = session.execute(
        text(
            f"SELECT json_build_object('type', 'Feature', 'id', {spec.id_column}, "
            f"'geometry', ST_AsGeoJSON(t.geom, 7)::json, 'properties', json_build_object({props})) "
            f"{base} ORDER BY {spec.order} LIMIT :limit OFFSET :offset"
        ),
        params,
    ).scalars()
    features = [r if isinstance(r, dict) else json.loads(r) for r in rows]
    matched = session.execute(text(f"SELECT count(*) {base}"), params).scalar_one()
    return FeaturePage(features=features, number_matched=int(matched))
