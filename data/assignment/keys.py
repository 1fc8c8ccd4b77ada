"""Stored records no path can open: keys taken before :mod:`geo.assignment.keys` refused them.

The import, the API and the forms refuse a household code or source id with ``/``, a control
character or ``new``; a database filled before they did keeps such rows: listed and counted,
but impossible to open, move or remove from the pages or the API. ``gridwork check`` and
``GET /checks`` list them (:func:`unaddressable_keys`); ``gridwork recode`` gives one a key
the pages can open (:func:`recode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from data.assignment.service import ROW_KEY
from geo.assignment.keys import REFUSED_CHARACTERS_SQL, RESERVED, key_problem
from geo.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True)
class Unaddressable:
    """A stored row whose key no path reaches: its table, key, grid (code) and why."""

    table: str
    key: str
    grid: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "key": self.key, "grid": self.grid, "reason": self.reason}


def unaddressable_keys(db: Connection) -> list[Unaddressable]:
    """Every household, facility and incident whose key :func:`key_problem` refuses, by table
    and key. The database narrows the search (an index-free scan of one text column); the
    domain's rule says why for each row found."""
    found: list[Unaddressable] = []
    for table, key in ROW_KEY.items():
        rows = db.execute(
            text(
                f"SELECT t.{key} AS key, g.code AS grid FROM {table} t "  # noqa: S608 - constants
                "LEFT JOIN grid g ON g.id = t.grid_id "
                f"WHERE t.{key} ~ :refused OR t.{key} = ANY(:reserved) "
                f'ORDER BY t.{key} COLLATE "C"'
            ),
            {"refused": REFUSED_CHARACTERS_SQL, "reserved": sorted(RESERVED)},
        ).all()
        for r in rows:
            reason = key_problem(str(r.key))
            if reason is not None:
                found.append(Unaddressable(table, str(r.key), r.grid, reason))
    return found


def recode(session: Session, table: str, old: str, new: str) -> None:
    """Give the row keyed ``old`` the key ``new``, which the rule must accept and no row of
    the table may hold. The row keeps its id, so what refers to it (an elder's household,
    a case's history) follows; the audit log keeps the old key, as it was read then."""
    if table not in ROW_KEY:
        raise InvalidInput(f"must be one of {', '.join(ROW_KEY)}, got {table!r}", field="table")
    problem = key_problem(new)
    if problem:
        raise InvalidInput(problem, field="new")
    key = ROW_KEY[table]
    taken = session.execute(
        text(f"SELECT 1 FROM {table} WHERE {key} = :new"),  # noqa: S608 - constants
        {"new": new},
    ).first()
    if taken is not None:
        raise Conflict(f"a {table} is already coded {new!r}")
    changed = session.execute(
        text(f"UPDATE {table} SET {key} = :new WHERE {key} = :old RETURNING id"),  # noqa: S608
        {"new": new, "old": old},
    ).first()
    if changed is None:
        raise NotFound(f"no {table} coded {old!r}", field="old")
