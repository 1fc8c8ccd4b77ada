"""Request models shared by every router: strict, so a typo in a field name is an error.

A client that sends ``{"houshold_size": 3}`` must hear that ``houshold_size`` is not a field,
not see it silently dropped and the default stored. Every request body model derives from
:class:`StrictModel`; response models may stay lenient.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from geo.limits import DEFAULT_MAX_VERTICES, check_geometry_size


class StrictModel(BaseModel):
    """Unknown fields are refused (422 naming the field); surrounding blanks are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _bounded_geometry(value: dict[str, Any]) -> dict[str, Any]:
    check_geometry_size(value, max_vertices=DEFAULT_MAX_VERTICES)
    return value


# A GeoJSON geometry in a request body, refused with 413 before any work when it is too big.
GeoJSONGeometry = Annotated[dict[str, Any], AfterValidator(_bounded_geometry)]
