"""CSV exports of the store's tables, with the columns users and other tools expect."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import IO, Any

from sqlalchemy import Select, select

from doorstep.store.db import Store
from doorstep.store.models import QuarantinedRow


def _quarantine() -> Select[Any]:
    q = QuarantinedRow
    return select(
        q.file, q.row_number.label("row"), q.column_name.label("column"), q.value, q.reason,
    ).order_by(q.table_name, q.row_number, q.column_name)


EXPORTS: dict[str, Callable[[], Select[Any]]] = {
    "quarantine": _quarantine,
}


def export_rows(store: Store, table: str) -> Iterator[tuple[Any, ...]]:
    """The header, then every row of an export, streamed from the store."""
    statement = EXPORTS[table]()
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(statement)
        yield tuple(result.keys())
        yield from result


def write_csv(store: Store, table: str, out: IO[str]) -> int:
    """Write one export as CSV to `out`; returns the number of data rows."""
    writer = csv.writer(out)
    rows = export_rows(store, table)
    writer.writerow(next(rows))
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count
