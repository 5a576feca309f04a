"""CSV exports of the store's tables, with the columns users and other tools expect."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeAlias

from sqlalchemy import Select, select

from doorstep.store.db import Store
from doorstep.store.models import Overlap, QuarantinedRow

Query: TypeAlias = Select[*tuple[Any, ...]]


def _quarantine() -> Query:
    q = QuarantinedRow
    return select(
        q.file,
        q.row_number.label("row"),
        q.column_name.label("column"),
        q.value,
        q.reason,
    ).order_by(q.table_name, q.row_number, q.column_name)


def _overlaps() -> Query:
    o = Overlap
    return select(
        o.account_id,
        o.partner_id,
        o.partner_account_id,
        o.relationship,
        o.method,
        o.probability,
        o.evidence,
    ).order_by(o.partner_id, o.partner_account_id, o.account_id)


EXPORTS: dict[str, Callable[[], Query]] = {
    "overlaps": _overlaps,
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
        writer.writerow(
            ["" if v is None else json.dumps(v) if isinstance(v, dict | list) else v for v in row]
        )
        count += 1
    return count
