"""Every page form that changes data, sent hostile values by each role: never a 5xx.

Schemathesis (``test_schemathesis.py``) fuzzes the API from its OpenAPI document; the pages'
form routes are not in that document, so they are walked from the app itself here. Each field
a route reads from its form gets the same value at once: empty, very long, out of range, not a
number, an impossible date, markup, a full-width digit, a NUL (the empty one and the NUL as
multipart, as the pages with a file send them). Ids in the path are an existing-looking ``1``,
and once a word. A 4xx of any kind is a fine answer; a 5xx is what this test exists to catch
(it found a NUL in the enrolment's multipart name reaching PostgreSQL). A form that checks a
password hashes each wrong one on purpose slowly, so it gets the empty value and the NUL only.

Each role signs in once with a bearer token (the pages take one as the API does), on a copy of
the Porto strips database (grids cut, see ``tests.gridded``) of their own, since the admin's
requests may really change rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, sign_in
from tests.policy.routes import walk

VALUES = ["", "x" * 5000, "-1", "1e309", "NaN", "2026-02-30", "<b>x</b>", "９", "9" * 40, "a\x00b"]
MULTIPART = {"", "a\x00b"}  # sent as multipart, as the pages with a file send their forms
ROLES = {
    "pf-admin": Account("pf-admin", Role.admin),
    "pf-planner": Account("pf-planner", Role.planner, ((ScopeLevel.community, "131208"),)),
    "pf-care": Account("pf-care", Role.care_staff, ((ScopeLevel.community, "131208"),)),
    "pf-worker": Account("pf-worker", Role.grid_worker, ((ScopeLevel.grid, "131208-G01"),)),
}
BROWSER = {"Accept": "text/html", "Accept-Language": "zh-CN"}


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[tuple[FastAPI, TestClient]]:
    engine = make_engine(database(server_url, "gridwork_test_page_forms", "porto_strips"))
    try:
        add_accounts(engine, list(ROLES.values()))
        app = make_app(engine)
        with TestClient(app, raise_server_exceptions=False) as c:
            yield app, c
    finally:
        engine.dispose()


def _page_forms(app: FastAPI) -> list[tuple[str, list[str]]]:
    """Each POST route under /app, with the names of the form fields it reads."""
    forms = []
    for path, route in walk(app.routes):
        if "POST" in (route.methods or ()) and path.startswith("/app/"):
            forms.append((path, sorted(p.alias for p in route.dependant.body_params)))
    return forms


def test_no_page_form_answers_5xx_whatever_it_is_sent(client: tuple[FastAPI, TestClient]) -> None:
    app, c = client
    forms = _page_forms(app)
    assert len(forms) >= 25, "the walk found too few page forms to mean anything"
    failures, answers = [], Counter[int]()
    for username in ROLES:
        headers = {**sign_in(c, username), **BROWSER}
        for template, fields in forms:
            # Each value at an id that may exist; a word where an id goes, once.
            values = [v for v in VALUES if "current_password" not in fields or v in MULTIPART]
            sends = [("1", value, value in MULTIPART) for value in values] + [("x", "1", False)]
            for id_, value, multipart in sends:
                path = re.sub(r"\{[^}]+\}", id_, template)
                data = dict.fromkeys(fields, value) or {"anything": value}
                files = {"scan": ("", b"")} if multipart else None
                r = c.post(path, data=data, files=files, headers=headers)
                answers[r.status_code] += 1
                if r.status_code >= 500:
                    failures.append((username, path, value[:12], multipart))
    assert failures == []
    # Not a pass by refusal alone: many requests got past the role checks to the forms.
    assert answers[422] + answers[400] + answers[409] > 200, answers
