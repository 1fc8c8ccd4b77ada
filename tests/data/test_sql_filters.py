"""A listing's optional filters: each one given adds its condition and binds its value."""

from __future__ import annotations

from data.sql import Filters


def test_only_the_filters_given_are_added_and_bound() -> None:
    where = Filters("t.seen", params={"limit": 10})
    where.add("t.grid_id = :grid_id", grid_id=0)  # 0 is a value, not "no filter"
    where.add("t.status = :status", status=None)
    where.add("t.at BETWEEN :lo AND :hi", lo=1, hi=None)  # half a range filters nothing
    assert where.sql == "t.seen AND t.grid_id = :grid_id"
    assert where.params == {"limit": 10, "grid_id": 0}


def test_the_callers_parameters_are_not_changed() -> None:
    params = {"limit": 10}
    Filters(params=params).add("t.kind = :kind", kind="school")
    assert params == {"limit": 10}
