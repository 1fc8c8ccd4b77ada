"""The shapes of the API: request bodies strict, answers documented, one module per resource.

A client that sends ``{"houshold_size": 3}`` must hear that ``houshold_size`` is not a field,
not see it silently dropped and the default stored. Every request body model derives from
:class:`StrictModel`. Every JSON answer has a model too (:class:`Answer`), so the OpenAPI
document shows what each route returns; answers stay lenient (a key the model does not
declare is left out, never an error), and ``tests/api/test_openapi_shapes.py`` holds both
rules for the routers that use these modules.

Per resource: :mod:`api.schemas.assignment` (``/assign``, ``/locate``),
:mod:`api.schemas.access` (sign-in, ``/me``, ``/audit``, ``/admin``), :mod:`api.schemas.checks`,
:mod:`api.schemas.grids`, :mod:`api.schemas.points` (households, facilities, incidents),
:mod:`api.schemas.alerts`, :mod:`api.schemas.cases`, :mod:`api.schemas.elders`,
:mod:`api.schemas.plans`, :mod:`api.schemas.coverage`, and :mod:`api.schemas.geojson` (layers,
the basemap and every GeoJSON answer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from geo.limits import DEFAULT_MAX_VERTICES, check_geometry_size


class StrictModel(BaseModel):
    """Unknown fields are refused (422 naming the field); surrounding blanks are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Answer(BaseModel):
    """A JSON answer: every key a route returns is declared; anything else is left out."""

    model_config = ConfigDict(extra="ignore")


def _bounded_geometry(value: dict[str, Any]) -> dict[str, Any]:
    check_geometry_size(value, max_vertices=DEFAULT_MAX_VERTICES)
    return value


# A GeoJSON geometry in a request body, refused with 413 before any work when it is too big.
GeoJSONGeometry = Annotated[dict[str, Any], AfterValidator(_bounded_geometry)]

#: A timestamp as the API has always written it: ISO 8601 from Python's ``isoformat()``.
Timestamp = Annotated[
    str, Field(description="ISO 8601 with offset", json_schema_extra={"format": "date-time"})
]

#: :data:`Timestamp` for a route whose rows hold ``datetime`` values: written with
#: ``isoformat()`` as before (pydantic alone would write UTC as ``Z``).
Moment = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    Field(description="ISO 8601 with offset"),
]
