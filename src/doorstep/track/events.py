"""The lead event log: every transition in a lead's life, appended, never changed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, DateTime, Table, select

from doorstep.store.models import Base, LeadEvent

_CHUNK = 10_000
_EVENT_COLUMNS = ("lead_id", "kind", "from_status", "to_status", "actor", "at", "detail")


@dataclass(frozen=True)
class Event:
    """One transition of one lead: what happened, from which status to which, who, when."""

    lead_id: str
    kind: str
    to_status: str | None
    actor: str
    at: datetime
    from_status: str | None = None
    detail: dict[str, Any] | None = None
    event_id: int | None = None


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


def record_events(conn: Connection, events: Iterable[Event]) -> int:
    """Append events to the log in the caller's transaction; returns how many were written."""
    rows = [{name: getattr(e, name) for name in _EVENT_COLUMNS} for e in events]
    return bulk_write(conn, table_of(LeadEvent), rows)


def lead_history(conn: Connection, lead_id: str) -> list[Event]:
    """Every event of one lead, oldest first."""
    rows = conn.execute(
        select(LeadEvent)
        .where(LeadEvent.lead_id == lead_id)
        .order_by(LeadEvent.at, LeadEvent.event_id)
    )
    return [
        Event(
            lead_id=r.lead_id,
            kind=r.kind,
            to_status=r.to_status,
            actor=r.actor,
            at=r.at,
            from_status=r.from_status,
            detail=r.detail,
            event_id=r.event_id,
        )
        for r in rows
    ]


def status_from_history(history: Sequence[Event]) -> str | None:
    """A lead's current status as its history tells it: the last status it moved to."""
    for event in reversed(history):
        if event.to_status is not None:
            return event.to_status
    return None
