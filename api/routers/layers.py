"""The public hierarchy and network layers as GeoJSON FeatureCollections (RFC 7946)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.deps import BBoxDep, LimitDep, OffsetDep, ReadSessionDep, SessionDep
from api.schemas.geojson import LayerPage
from api.security import Principal, require
from data.district.layers import feature_page
from data.policy import Action

router = APIRouter(tags=["layers"])

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """JSON labelled as GeoJSON, so the OpenAPI document files the page's shape under it."""

    media_type = GEOJSON


def _collection(
    request: Request,
    session: SessionDep,
    principal: Principal,
    layer: str,
    bbox: BBoxDep,
    limit: int,
    offset: int,
) -> JSONResponse:
    page = feature_page(
        session, layer, scope=principal.scope, bbox=bbox, limit=limit, offset=offset
    )
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "numberMatched": page.number_matched,
        "numberReturned": len(page.features),
        "features": page.features,
        "links": [],
    }
    if offset + len(page.features) < page.number_matched:
        nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
        body["links"].append({"rel": "next", "href": str(nxt), "type": GEOJSON})
    # Returned as is (a Response skips the response model): ``LayerPage`` documents it.
    return GeoJSONResponse(body)


def _register(layer: str, summary: str) -> None:
    def endpoint(
        request: Request,
        session: ReadSessionDep,
        principal: Annotated[Principal, Depends(require(Action.view_district))],
        bbox: BBoxDep,
        limit: LimitDep = 1000,
        offset: OffsetDep = 0,
    ) -> JSONResponse:
        return _collection(request, session, principal, layer, bbox, limit, offset)

    endpoint.__name__ = f"list_{layer}"
    router.add_api_route(
        f"/{layer}",
        endpoint,
        methods=["GET"],
        summary=summary,
        response_model=LayerPage,
        response_class=GeoJSONResponse,
    )


for _layer, _summary in {
    "streets": "Streets (街道, sub-districts) as polygons",
    "communities": "Communities (社区) and extended areas with households",
    "grids": "Current grids (网格) with their worker and households",
    "roads": "Road segments",
    "facilities": "Service facilities",
}.items():
    _register(_layer, _summary)
