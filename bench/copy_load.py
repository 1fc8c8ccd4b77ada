"""Bulk loading points with their grid already set: a numpy-built binary ``COPY`` encoder.

Only the benchmarks load this way (``bench.assign``, ``bench.postgis_e2e``): the product's
imports go through ``data.importing.importer``. It lives here, beside the benchmarks, so that
the product does not carry code only a benchmark runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text

from data.assignment.service import (
    PG_COPY_HEADER,
    PG_COPY_TRAILER,
    ROW_KEY,
    Db,
    GridIndex,
    Placed,
    assigned_grid_ids,
    raw_connection,
)
from geo.errors import InvalidInput

# --- bulk insert with the grid already set ------------------------------------------------

_FIXED = {"int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "u1"}


Column = tuple[str, Any] | tuple[str, Any, Any]  # (type, values) or (type, values, nulls)


def _binary_copy_rows(columns: Sequence[Column]) -> bytes:
    """Binary COPY tuples (no header) for ``(type, values[, nulls])`` columns, built with
    numpy, not row by row; callers pass slices of ~100k rows to keep index arrays small.

    Types: ``int4``, ``int8``, ``float8``, ``bool`` (NULL where the optional boolean mask
    ``nulls`` says so), ``text`` (str; None is NULL) and ``point`` (an (n, 2) lon/lat array,
    sent as EWKB with SRID 4326, which PostGIS's binary input reads directly).
    """
    n = len(columns[0][1])
    widths: list[NDArray[np.int64]] = []
    blocks: list[tuple[str, Any]] = []
    for kind, values, *rest in columns:
        if kind in _FIXED or kind == "point":
            if kind == "point":
                dtype = np.dtype(
                    [("len", ">i4"), ("order", "u1"), ("type", "<u4"), ("srid", "<u4"),
                     ("x", "<f8"), ("y", "<f8")]
                )  # fmt: skip
                block = np.empty(n, dtype=dtype)
                block["len"], block["order"] = 25, 1
                block["type"], block["srid"] = 0x20000001, 4326
                block["x"], block["y"] = values[:, 0], values[:, 1]
            else:
                dtype = np.dtype([("len", ">i4"), ("v", _FIXED[kind])])
                block = np.empty(n, dtype=dtype)
                block["len"] = dtype["v"].itemsize
                block["v"] = values
            nulls = np.asarray(rest[0], dtype=bool) if rest else np.zeros(n, dtype=bool)
            block["len"][nulls] = -1
            width = np.where(nulls, 4, dtype.itemsize).astype(np.int64)
            widths.append(width)
            blocks.append(("fixed", (block.view(np.uint8).reshape(n, dtype.itemsize), nulls)))
        elif kind == "text":
            encoded = [None if v is None else str(v).encode() for v in values]
            lengths = np.fromiter(
                (-1 if e is None else len(e) for e in encoded), dtype=np.int64, count=n
            )
            data = np.frombuffer(b"".join(e for e in encoded if e is not None), dtype=np.uint8)
            prefix = lengths.astype(">i4").view(np.uint8).reshape(n, 4)
            widths.append(4 + np.maximum(lengths, 0))
            blocks.append(("text", (prefix, np.maximum(lengths, 0), data)))
        else:
            raise InvalidInput(f"unknown column type {kind}", field="columns")
    sizes = 2 + np.sum(widths, axis=0)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    count = np.array([len(columns)], dtype=">i2").view(np.uint8)
    out[starts[:, None] + np.arange(2)] = count
    at = starts + 2
    for (shape, block), width in zip(blocks, widths, strict=True):
        if shape == "fixed":
            raw, nulls = block
            full = ~nulls
            out[at[full, None] + np.arange(raw.shape[1])] = raw[full]
            out[at[nulls, None] + np.arange(4)] = raw[nulls, :4]
        else:
            prefix, lengths, data = block
            out[at[:, None] + np.arange(4)] = prefix
            first = np.repeat(at + 4 - (np.cumsum(lengths) - lengths), lengths)
            out[first + np.arange(len(data))] = data
        at = at + width
    return out.tobytes()


def copy_rows(db: Db, sql: str, columns: Sequence[Column], chunk: int = 100_000) -> None:
    """Stream ``columns`` into a ``COPY … FROM STDIN (FORMAT BINARY)`` statement."""
    n = len(columns[0][1])
    with raw_connection(db).cursor() as cur, cur.copy(sql) as copy:
        copy.write(PG_COPY_HEADER)
        for start in range(0, n, chunk):
            part = slice(start, start + chunk)
            copy.write(_binary_copy_rows([(c[0], *(v[part] for v in c[1:])) for c in columns]))
        copy.write(PG_COPY_TRAILER)


BULK_ROWS = 100_000


@contextmanager
def bulk_load(db: Db, table: str) -> Iterator[None]:
    """PostgreSQL's advice for populating a table, inside the caller's transaction: drop the
    foreign keys and the non-unique indexes, load, then rebuild them from their own definitions.

    A foreign key checked once for the whole table (one join) instead of once per row, and a
    GiST index built sorted instead of grown point by point, make a million-row load several
    times faster. The price: the table is locked (ACCESS EXCLUSIVE) until the transaction
    ends, and a failure rolls everything back, the dropped indexes included.
    """
    if table not in ROW_KEY:
        raise InvalidInput(f"not a point table: {table}", field="table")
    indexes = db.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = CAST(:t AS regclass) "
            "AND NOT i.indisunique AND NOT i.indisprimary"
        ),
        {"t": table},
    ).all()
    keys = db.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"
        ),
        {"t": table},
    ).all()
    db.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
    for name, _ in keys:
        db.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        db.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in indexes:
        db.execute(text(definition))
    for name, definition in keys:
        db.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))


def insert_points(
    db: Db,
    table: str,
    *,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    index: GridIndex,
    values: Mapping[str, Column],
    bulk: bool | None = None,
) -> Placed:
    """Insert many points with their grid decided in-process: one binary COPY, no UPDATE.

    ``values`` maps column → (type, array) for the other columns (see
    :func:`_binary_copy_rows`). Coordinates must already be checked WGS-84. ``bulk`` (by
    default: from :data:`BULK_ROWS` rows on) loads through :func:`bulk_load`.
    """
    if table not in ROW_KEY:
        raise InvalidInput(f"not a point table: {table}", field="table")
    if bulk is None:
        bulk = len(lon) >= BULK_ROWS
    if bulk:
        with bulk_load(db, table):
            return insert_points(
                db, table, lon=lon, lat=lat, index=index, values=values, bulk=False
            )
    placed = index.assign(lon, lat)
    grid = assigned_grid_ids(index, placed)
    names = list(values)
    target = ", ".join([*names, "geom", "grid_id", "snapped", "assign_distance_m"])
    columns: list[Column] = [
        *(values[name] for name in names),
        ("point", np.column_stack([lon, lat])),
        ("int4", grid, grid < 0),
        ("bool", placed.snapped),
        ("float8", placed.distance_m, np.isnan(placed.distance_m)),
    ]
    copy_rows(db, f"COPY {table} ({target}) FROM STDIN (FORMAT BINARY)", columns)
    return placed
