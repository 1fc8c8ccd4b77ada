"""Every route of the app with the policy action it names (FastAPI keeps included routers
nested, so the routes are walked with its ``iter_route_contexts``, not read off
``app.routes``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from api.routers import ingest
from data.policy import Action


def walk(routes: Any) -> Iterator[tuple[str, APIRoute]]:
    """Each API route with its full path, through FastAPI's own walk over included routers
    (the one ``tests/api/test_security.py`` takes for every route, API or not)."""
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path is not None:
            yield context.path, route


def action_of(route: APIRoute) -> Action | None:
    found = set()
    stack = list(route.dependant.dependencies)
    while stack:
        d = stack.pop()
        action = getattr(d.call, "gridwork_action", None)
        if action is not None:
            found.add(action)
        stack.extend(d.dependencies)
    if not found and route.path == "/ingest/osmand":  # a DirectRoute: checks in its handler
        found.add(ingest._device.gridwork_action)  # type: ignore[attr-defined]
    assert len(found) <= 1, f"{route.path} names several actions: {found}"
    return next(iter(found), None)
