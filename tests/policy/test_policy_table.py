"""The README's role table is the policy's, and every route names an action of the policy."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

from api.app import create_app
from data.policy import RULES, Action, role_table
from data.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_role_table_is_the_policy() -> None:
    text = README.read_text()
    found = re.search(r"<!-- policy-table -->\n(.*?)\n<!-- /policy-table -->", text, re.S)
    assert found, "README lost its policy table markers"
    assert found.group(1) == role_table(), "README role table differs: run `gridwork policy`"


def test_every_action_has_a_rule_and_every_rule_a_role() -> None:
    assert set(RULES) == set(Action)
    assert all(rule.roles for rule in RULES.values())


def _actions(route: APIRoute) -> set[Action]:
    found = set()
    for dep in route.dependant.dependencies:
        stack = [dep]
        while stack:
            d = stack.pop()
            action = getattr(d.call, "gridwork_action", None)
            if action is not None:
                found.add(action)
            stack.extend(d.dependencies)
    return found


# Routes that are open on purpose, or where any signed-in caller acts on their own account.
OPEN = {
    "/health",
    "/token",
    "/login",
    "/logout",
    "/",
    "/me",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def test_every_private_route_asks_the_policy(tmp_path: Path) -> None:
    """A route added without ``require(Action…)`` fails here, not in a penetration test."""
    app = create_app(Settings(state_dir=tmp_path))
    missing = [
        f"{sorted(r.methods or ())} {r.path}"
        for r in app.routes
        if isinstance(r, APIRoute) and r.path not in OPEN and not _actions(r)
    ]
    assert not missing, f"routes that do not name a policy action: {missing}"
