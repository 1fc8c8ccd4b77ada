"""Which statements count as changing who may see what (the synchronous half of the feed)."""

from __future__ import annotations

import pytest

from data.changes import _WRITES_WATCHED


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE app_user SET role = CAST(%(r)s AS user_role) WHERE username = %(u)s",
        'INSERT INTO "grid" (code, geom) VALUES (%(code)s, %(geom)s)',
        "  delete from user_scope where user_id = 3",
        "INSERT INTO api_key(name, digest) VALUES ('a', 'b')",
        "TRUNCATE TABLE street CASCADE",
        "UPDATE grid\nSET valid_to = now()",
        "WITH old AS (SELECT id FROM grid) UPDATE grid SET valid_to = now() FROM old",
    ],
)
def test_writes_to_watched_tables_are_recognised(statement: str) -> None:
    assert _WRITES_WATCHED.search(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM grid",
        "INSERT INTO household (grid_id, geom) VALUES (1, 'POINT(0 0)')",
        "UPDATE grid_stats SET n = 1",
        "INSERT INTO audit_log (actor) VALUES ('x')",
        "INSERT INTO position (device_id) VALUES (1)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "INSERT INTO deployment_setting (key) VALUES ('k') ON CONFLICT (key) DO UPDATE SET v = 1",
    ],
)
def test_other_statements_are_not(statement: str) -> None:
    assert not _WRITES_WATCHED.search(statement)
