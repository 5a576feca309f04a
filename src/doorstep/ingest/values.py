"""Values as people write them, declared once per workspace ([import] in doorstep.toml).

Before the contract's checks, which take ISO 8601 dates and plain numbers only, each file's
numbers lose their thousands separators (`4,000`; `4.000` with `decimal = ","`) and take a
decimal point, and its dates written as `date_format` says (`11/10/2026` under "MM/DD/YYYY")
become ISO dates. Without a date_format only ISO 8601 is taken: `11/10/2026` could be either
day, so it is never guessed; it goes to the quarantine with the setting that would read it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from doorstep.ingest.read import TableFile

# Each date format: how to find its parts, and where they go in an ISO date.
DATE_FORMATS = {
    "MM/DD/YYYY": (r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})", r"\3-\1-\2"),
    "DD/MM/YYYY": (r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})", r"\3-\2-\1"),
    "DD.MM.YYYY": (r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})", r"\3-\2-\1"),
}
_PAD = (r"^(\d{4})-(\d)-", r"\1-0\2-"), (r"^(\d{4}-\d{2})-(\d)(\D|$)", r"\1-0\2\3")


def _numbers(column: pa.ChunkedArray, decimal: str) -> pa.ChunkedArray:
    point, thousands = (",", ".") if decimal == "," else (".", ",")
    grouped = rf"^\s*(-?)(\d{{1,3}}(?:\{thousands}\d{{3}})+)(\{point}\d+)?\s*$"
    # "4,000" (or "4.000" under decimal ","): the separators go only from a well-grouped number
    matches = pc.match_substring_regex(column, grouped)
    ungrouped = pc.replace_substring(column, thousands, "")
    column = pc.if_else(matches, ungrouped, column)
    if point == ",":
        plain = r"^\s*-?\d+(,\d+)?\s*$"
        column = pc.if_else(pc.match_substring_regex(column, plain),
                            pc.replace_substring(column, ",", "."), column)
    return column


def _dates(column: pa.ChunkedArray, date_format: str) -> pa.ChunkedArray:
    pattern, iso = DATE_FORMATS[date_format]
    column = pc.replace_substring_regex(column, pattern=pattern, replacement=iso)
    for pad, to in _PAD:
        column = pc.replace_substring_regex(column, pattern=pad, replacement=to)
    return column


def as_declared(table_file: TableFile, *, date_format: str | None, decimal: str) -> TableFile:
    """`table_file` with its numbers and dates rewritten to the contract's plain forms."""
    data = table_file.data
    for column in table_file.table.columns:
        if column.name not in data.column_names:
            continue
        index = data.column_names.index(column.name)
        values = data.column(index)
        if column.type in ("integer", "number"):
            values = _numbers(values, decimal)
        elif column.type in ("date", "datetime") and date_format:
            values = _dates(values, date_format)
        else:
            continue
        data = data.set_column(index, column.name, values)
    table_file.data = data
    return table_file
