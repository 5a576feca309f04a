"""Bulk writes straight through the driver, chunked IN lists: the store helpers every stage uses."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, Connection, DateTime, Table

from doorstep.store.models import Base

_CHUNK = 10_000
# Bound parameters per IN list: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 5_000
T = TypeVar("T")


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in slices short enough for one `IN (...)` list."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


class RawJSON(str):
    """Text that is already JSON, written to a JSON column as it is."""

    __slots__ = ()


def json_text(value: Any) -> str | None:
    """A JSON column's value as text, exactly as SQLAlchemy's JSON type would write it."""
    if value is None or isinstance(value, RawJSON):
        return value
    return json.dumps(value)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a model, for `bulk_write`."""
    return Base.metadata.tables[model.__tablename__]


def _converter(conn: Connection, column: Column[Any]) -> Any:
    if isinstance(column.type, JSON):
        return json_text
    if isinstance(column.type, DateTime) and conn.dialect.name == "sqlite":
        cache: dict[datetime, str] = {}

        def sqlite_datetime(value: datetime | None) -> str | None:
            # SQLAlchemy's SQLite storage format, so the ORM reads these back as datetimes.
            if value is None:
                return None
            text = cache.get(value)
            if text is None:
                text = cache[value] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
            return text

        return sqlite_datetime
    return None


def bulk_write(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str] = (),
) -> int:
    """Insert `rows` into `table`, or with `key` update them by key, straight through the driver.

    SQLAlchemy's per-row parameter processing costs more than the database at 100k rows; this
    converts JSON and (on SQLite) datetime values once per column and executes in chunks.
    """
    if not rows:
        return 0
    names = [n for n in rows[0] if n not in key] + list(key)
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if key:
        sql = (
            f"UPDATE {quote(table.name)} SET "
            + ", ".join(f"{quote(n)} = {mark}" for n in names if n not in key)
            + " WHERE "
            + " AND ".join(f"{quote(k)} = {mark}" for k in key)
        )
    else:
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join(mark for _ in names)})"
        )
    converters = [_converter(conn, table.c[n]) for n in names]
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        columns = [
            [r[n] for r in chunk] if convert is None else [convert(r[n]) for r in chunk]
            for n, convert in zip(names, converters, strict=True)
        ]
        conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
    return len(rows)
