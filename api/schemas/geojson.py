"""GeoJSON answers (RFC 7946): features and feature collections, written small on purpose.

Geometry and properties stay free-form objects (each layer has its own properties; the
geometry is whatever PostGIS wrote). RFC 7946 allows members beyond the ones named here
("foreign members", e.g. a feature's ``id``): they are kept, never dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from api.schemas import Answer


class Feature(Answer):
    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    geometry: dict[str, Any] | None = Field(description="a GeoJSON geometry, lon/lat (WGS-84)")
    properties: dict[str, Any] | None


class FeatureCollection(Answer):
    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[Feature]


class Link(Answer):
    rel: str
    href: str
    type: str


class LayerFeature(Feature):
    id: str | None = Field(description="the row's code or source id")


class LayerPage(Answer):
    """One page of a layer (``limit``/``offset``), with a ``next`` link while rows remain."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[LayerFeature]
    # The names of OGC API Features, which these pages follow.
    numberMatched: int = Field(  # noqa: N815
        description="rows of the layer in the caller's area and bbox"
    )
    numberReturned: int  # noqa: N815
    links: list[Link]


class BasemapLayers(Answer):
    """Per layer, what is legible at the zoom (empty below the layer's lowest zoom)."""

    streets: FeatureCollection
    communities: FeatureCollection
    grids: FeatureCollection
    roads: FeatureCollection
    buildings: FeatureCollection


class Basemap(Answer):
    zoom: int
    layers: BasemapLayers


class GeoJSONResponse(JSONResponse):
    """JSON labelled as GeoJSON, so the OpenAPI document files the answer's shape under it."""

    media_type = "application/geo+json"
