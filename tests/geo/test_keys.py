"""Which keys a path can carry back to their record (``geo.assignment.keys``)."""

from __future__ import annotations

import pytest

from geo.assignment.keys import CONTROL, RESERVED_WORD, SLASH, key_problem


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("E-133367522-1", None),
        ("NEW", None),  # routes are case-sensitive: only the register's own word collides
        ("new-1", None),
        ("门牌 12 号", None),
        ("12/3", SLASH),
        ("/", SLASH),
        ("new", RESERVED_WORD),
        ("door\t1", CONTROL),
        ("a\x7fb", CONTROL),
    ],
)
def test_a_key_is_refused_only_where_no_path_could_open_it(key: str, problem: str | None) -> None:
    assert key_problem(key) == problem
