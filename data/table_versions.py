"""Whether a whole table, or one grid's households, changed, from the token the store keeps
for it (migrations 0021 and 0025).

A cache of a whole table (the coverage cache's road graph and households) must notice any
committed write to it. Scanning the table for ``count(*), max(id), max(xmin)`` took 0.13 s
at 500,000 rows and grows with it; ``table_version`` holds a token per watched table that a
statement-level trigger makes anew in the writing transaction, so reading it is one
primary-key lookup, the same on a hot standby (the token commits, and replays, with the rows).
``grid_household_version`` does the same per grid for the households filed under it, so a
cache of households per grid re-reads only the grids written since.

Read the version **before** the rows it stands for: the rows are then at least as new as the
token, so a cache is never filed under a token newer than its contents.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

_READ = text("SELECT name, version::text FROM table_version WHERE name = ANY(:names)")
_READ_GRIDS = text(
    "SELECT grid_id, version::text FROM grid_household_version WHERE grid_id = ANY(:ids)"
)


class Unversioned:
    """Stands for a version that is not stored (its row was deleted by hand: a table's
    trigger only updates its row; a grid's comes back at its next household write): equal
    only to itself, so a key holding one never matches a later key and the cache is rebuilt
    on every read, slow but never stale, until the row is put back."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unversioned>"


def table_versions(conn: Connection, *tables: str) -> tuple[str | Unversioned, ...]:
    """The current version token of each of ``tables``, in that order."""
    found: dict[str, str] = dict(conn.execute(_READ, {"names": list(tables)}).tuples().all())
    return tuple(found.get(t) or Unversioned() for t in tables)


def grid_household_versions(conn: Connection, grid_ids: Sequence[int]) -> list[str | Unversioned]:
    """The token of each grid's households, in the order of ``grid_ids``: one read by primary
    key for a request's grids, however many households were written elsewhere."""
    found: dict[int, str] = dict(conn.execute(_READ_GRIDS, {"ids": list(grid_ids)}).tuples().all())
    return [found.get(g) or Unversioned() for g in grid_ids]
