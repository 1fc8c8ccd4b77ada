"""A FastAPI route that answers straight from its endpoint: for the device ingest path only.

FastAPI solves an endpoint's dependencies, validates its parameters and serialises its
response model on every request. On ``/ingest/osmand`` that bookkeeping took more CPU than
the work itself, and a thousand wearables report at once (``bench.ingest``).

A :class:`DirectRoute` hands the endpoint the request and sends back the response it
returns; the route keeps everything else of an ``APIRoute``
(matching, middleware, exception handlers, its OpenAPI entry from ``response_model`` and
``openapi_extra``).

What it gives up is the endpoint's own job now: a direct endpoint must authenticate
(dependencies declared on the route or its router are **not** run), check its input and
build its ``Response``. ``tests/api/test_security.py`` still sends every route an anonymous
request and expects a refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from fastapi import Request, Response
from fastapi.routing import APIRoute

DirectEndpoint = Callable[[Request], Awaitable[Response]]


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = cast(DirectEndpoint, self.endpoint)

        async def handle(request: Request) -> Response:
            return await endpoint(request)

        return handle
