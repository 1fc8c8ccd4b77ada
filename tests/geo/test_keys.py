"""Which keys a path can carry back to their record (``geo.assignment.keys``)."""

from __future__ import annotations

import re

import pytest

from geo.assignment.keys import (
    CONTROL,
    REFUSED_CHARACTERS_SQL,
    RESERVED_WORD,
    SLASH,
    key_problem,
)


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


def test_the_stores_search_refuses_the_same_characters_as_the_rule() -> None:
    """``REFUSED_CHARACTERS_SQL`` finds stored keys taken before the rule; it must mean the
    same characters (as Python reads the class; PostgreSQL's reading is tested in
    tests/api/assignment/test_checks_api.py)."""
    pattern = re.compile(REFUSED_CHARACTERS_SQL)
    for code in range(1, 0x80):
        c = chr(code)
        assert bool(pattern.search(f"a{c}b")) is (key_problem(f"a{c}b") is not None), repr(c)
