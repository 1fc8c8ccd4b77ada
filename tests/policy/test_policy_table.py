"""The README's role table is the policy's, and every route names an action of the policy."""

from __future__ import annotations

import re
from pathlib import Path

from api.app import create_app
from data.policy import RULES, Action, role_table
from data.settings import Settings
from tests.policy.routes import action_of, walk

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_role_table_is_the_policy() -> None:
    text = README.read_text()
    found = re.search(r"<!-- policy-table -->\n(.*?)\n<!-- /policy-table -->", text, re.S)
    assert found, "README lost its policy table markers"
    assert found.group(1) == role_table(), "README role table differs: run `gridwork policy`"


def test_every_action_has_a_rule_and_every_rule_a_role() -> None:
    assert set(RULES) == set(Action)
    assert all(rule.roles for rule in RULES.values())


# Routes that are open on purpose, or where any signed-in caller acts on their own account.
OPEN = {
    "/health",
    "/token",
    "/login",
    "/logout",
    "/",
    "/me",
    "/lang",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    # Open311 GeoReport v2: open by the standard (the request routes name their actions)
    "/open311/v2/discovery.{fmt}",
    "/open311/v2/services.{fmt}",
    "/open311/v2/services/{service_code}.{fmt}",
    "/open311/v2/tokens/{token}.{fmt}",
}


def test_every_private_route_asks_the_policy(tmp_path: Path) -> None:
    """A route added without ``require(Action…)`` fails here, not in a penetration test."""
    app = create_app(Settings(state_dir=tmp_path))
    routes = list(walk(app.routes))
    assert len(routes) > 50, "the walk found too few routes to mean anything"
    missing = [
        f"{sorted(r.methods or ())} {path}"
        for path, r in routes
        if path not in OPEN and action_of(r) is None
    ]
    assert not missing, f"routes that do not name a policy action: {missing}"
