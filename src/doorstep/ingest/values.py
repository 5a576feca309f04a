"""Values as people write them, declared once per workspace ([import] in doorstep.toml).

Before the contract's checks, which take ISO 8601 dates and plain numbers only, each file's
numbers lose their thousands separators (`4,000`; `4.000` with `decimal = ","`) and take a
decimal point, and its dates written as `date_format` says (`11/10/2026` under "MM/DD/YYYY")
become ISO dates; times on a 12-hour clock ("2:22 PM", as Salesforce reports write them) become
24-hour ones. Without a date_format only ISO 8601 is taken: `11/10/2026` could be either
day, so it is never guessed; it goes to the quarantine with the setting that would read it.
"""

from __future__ import annotations

import re

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


_TWELVE_HOUR = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2})[ ,T]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp])\.?\s*[Mm]\.?\s*$")


def _twelve_hour(value: str) -> str:
    """ "2026-11-10, 2:22 PM" (as Salesforce and Excel write times) as ISO 8601."""
    m = _TWELVE_HOUR.match(value)
    if m is None:
        return value
    day, hour, minute, second, half = m.groups()
    h = int(hour)
    if not 1 <= h <= 12:
        return value  # "13:00 PM" is no time: left as it is, and quarantined
    h = h % 12 + (12 if half in "Pp" else 0)
    return f"{day}T{h:02d}:{minute}:{second or '00'}"


def _times(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Times on a 12-hour clock ("2:22 PM") on a 24-hour one; anything else as it was."""
    matches = pc.match_substring_regex(column, r"[0-9]\s*[AaPp]\.?\s*[Mm]\.?\s*$")
    if not pc.any(matches).as_py():
        return column
    unique = pc.unique(column.filter(matches))
    fixed = pa.array([_twelve_hour(v) for v in unique.to_pylist()], pa.string())
    found = pc.index_in(column, unique)
    return pc.if_else(matches, pc.take(fixed, pc.fill_null(found, 0)), column)


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
        elif column.type in ("date", "datetime"):
            if date_format:
                values = _dates(values, date_format)
            if column.type == "datetime":
                values = _times(values)
        else:
            continue
        data = data.set_column(index, column.name, values)
    table_file.data = data
    return table_file
