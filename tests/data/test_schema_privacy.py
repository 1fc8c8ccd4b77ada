"""Privacy by design is a schema property: no column may hold what we never collect."""

from __future__ import annotations

import re

from data.models import Base

FORBIDDEN = re.compile(
    r"ethnic|religio|politic|party|identity|id_?number|id_?card|passport|nation|race|"
    r"faith|身份|民族|宗教|政治",
    re.IGNORECASE,
)


def test_no_table_has_a_forbidden_column() -> None:
    columns = [f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns]
    assert columns, "metadata is empty: the test would pass vacuously"
    assert [c for c in columns if FORBIDDEN.search(c)] == []


def test_the_pattern_catches_what_it_should() -> None:
    for bad in ("household.ethnicity", "elder.id_number", "person.political_status", "h.民族"):
        assert FORBIDDEN.search(bad)
