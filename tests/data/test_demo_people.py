"""The demo staffs every grid and gives one sign-in per role, passwords kept mode 600."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.cli import _demo_accounts
from data.importing.loading import staff_the_grids
from tests.factory import app_settings, make_app
from tests.gridded import Gridded


def test_demo_staffs_grids_and_prints_one_sign_in_per_role(strips: Gridded, tmp_path: Path) -> None:
    with strips.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE grid SET worker_id = NULL WHERE code IN "
                "(SELECT code FROM grid WHERE valid_to IS NULL ORDER BY code LIMIT 3)"
            )
        )
    assert list(staff_the_grids(strips.engine)) == [
        "grid workers: 3 grids given a (fictional) worker"
    ]
    assert list(staff_the_grids(strips.engine)) == [
        "grid workers: 0 grids given a (fictional) worker"
    ]
    settings = app_settings(strips.url, state_dir=tmp_path)
    _demo_accounts(strips.engine, settings)
    path = tmp_path / "demo-accounts.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = dict(line.split(": ", 1) for line in path.read_text().splitlines())
    assert set(lines) == {"demo-planner", "demo-coordinator", "demo-care", "demo-worker"}
    # An earlier demo made demo-planner without an area: a run gives it the street.
    with strips.engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM user_scope WHERE user_id = "
                "(SELECT id FROM app_user WHERE username = 'demo-planner')"
            )
        )
    _demo_accounts(strips.engine, settings)  # a second run keeps the passwords
    assert path.read_text().count("demo-") == 4
    assert dict(line.split(": ", 1) for line in path.read_text().splitlines()) == lines
    with strips.engine.connect() as conn:
        areas: dict[str, list[str]] = dict(
            conn.execute(
                text(
                    "SELECT u.username, array_agg(s.level::text ORDER BY s.level) FROM app_user u "
                    "JOIN user_scope s ON s.user_id = u.id GROUP BY u.username"
                )
            ).all()
        )
        communities = conn.execute(text("SELECT count(*) FROM community")).scalar_one()
    assert areas["demo-planner"] == ["street"], areas
    assert areas["demo-coordinator"] == areas["demo-care"] == ["community"]
    with TestClient(make_app(strips.engine)) as client:
        for username, rest in lines.items():
            password = rest.split()[0]
            r = client.post(
                "/login",
                data={"username": username, "password": password},
                follow_redirects=False,
            )
            assert r.status_code == 303, (username, r.text)
            if username == "demo-planner":  # a street office's planner: its communities
                page = client.get("/app/plans", headers={"Accept-Language": "en"}).text
                options = re.findall(r'<option value="([^"]+)"', page)
                assert len(options) == communities, options
    with strips.engine.connect() as conn:
        linked = conn.execute(
            text(
                "SELECT count(*) FROM worker w JOIN app_user u ON u.id = w.user_id "
                "WHERE u.username = 'demo-worker'"
            )
        ).scalar_one()
    assert linked == 1
