"""Pieces of hand-written SQL that several repositories build the same way."""

from __future__ import annotations

from typing import Any


class Filters:
    """The AND-ed conditions of a ``WHERE`` clause and the values they bind.

    A listing's optional filters each add one condition, and only when given: a filter left
    as ``None`` adds nothing, so an unfiltered listing binds no parameter it does not use.
    """

    def __init__(self, *always: str, params: dict[str, Any] | None = None) -> None:
        self.conditions = list(always)
        self.params: dict[str, Any] = dict(params or {})

    def add(self, condition: str, **bound: Any) -> None:
        """``condition`` with the values it binds, unless one of them is ``None``."""
        if all(value is not None for value in bound.values()):
            self.conditions.append(condition)
            self.params.update(bound)

    @property
    def sql(self) -> str:
        """The conditions joined with ``AND``, for after ``WHERE``."""
        return " AND ".join(self.conditions)
