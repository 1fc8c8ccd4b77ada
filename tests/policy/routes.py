"""Every route of the app with the policy action it names (FastAPI keeps included routers
nested, so the routes are walked, not read off ``app.routes``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from api.routers import ingest
from data.policy import Action


def walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        original = getattr(route, "original_router", None)  # FastAPI ≥ 0.165 keeps routers
        if original is not None:
            yield from walk(original.routes, prefix + (route.include_context.prefix or ""))
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


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
