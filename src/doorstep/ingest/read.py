"""Reading workspace files into Arrow tables of text, remembering each row's number."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from doorstep.ingest.contract import Table

ROW = "__row"
FORMATS = (".csv", ".parquet")
_CHUNK = 200_000

ReadProgress = Callable[[int, int], None]  # (bytes done, bytes total)


class ImportFailure(Exception):
    """The import cannot go ahead; the message is one sentence naming the file and what to do."""


# A cell longer than this is not a value anyone typed (a pasted file, a broken export): its row
# goes to quarantine. The CSV reader itself accepts cells up to _READ_LIMIT, so that it can name
# the row instead of stopping the import.
MAX_CELL_CHARS = 100_000
_READ_LIMIT = 256 * 1024 * 1024


@dataclass
class RejectedRow:
    """A CSV row that cannot be read as the table's columns: it goes to quarantine as it is."""

    row: int
    text: str
    reason: str
    column: str | None = None


@dataclass
class TableFile:
    """One workspace file, read: every value as text, plus its row number."""

    table: Table
    path: Path
    data: pa.Table
    extra_columns: list[str]
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return int(self.data.num_rows) + len(self.rejected)


_FOLD = re.compile(r"[^0-9a-z]+")
DELIMITERS = (",", ";", "\t", "|")


def fold_header(name: str) -> str:
    """A header as the contract spells its columns: lower case, words joined by "_"
    ("Partner Account ID" → "partner_account_id")."""
    return _FOLD.sub("_", name.strip().lower()).strip("_")


def _check_header(path: Path, table: Table, header: list[str]) -> list[str]:
    contract = set(table.column_names)
    # a header that folds to a contract column is that column; any other keeps its spelling
    names = [fold_header(h) if fold_header(h) in contract else h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if not name:
            raise ImportFailure(f"{path}: the header has an empty column name; name it and retry.")
        if name in seen:
            raise ImportFailure(f"{path}: column '{name}' appears twice in the header; keep one.")
        seen.add(name)
    for required in table.required:
        if required not in seen:
            raise ImportFailure(
                f"{path}: required column '{required}' is missing (expected columns: "
                f"{', '.join(table.required)}); add it and retry."
            )
    return names


def _oversized(names: list[str], record: list[str], row: int) -> RejectedRow | None:
    for name, value in zip(names, record, strict=False):
        if len(value) > MAX_CELL_CHARS:
            return RejectedRow(
                row,
                f"{value[:200]}...",
                f"the value is {len(value):,} characters long, more than the "
                f"{MAX_CELL_CHARS:,} a cell may hold; shorten it or clear it and re-import",
                name,
            )
    return None


def encoding_of(path: Path, default: str) -> str:
    """UTF-8 or UTF-16 by the file's byte-order mark, else `default`."""
    with path.open("rb") as f:
        start = f.read(4)
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text"
    return "utf-8-sig" if default.replace("_", "-").lower() in ("utf-8", "utf8") else default


def delimiter_of(path: Path, encoding: str) -> str:
    """The delimiter the header line uses most: , ; tab or |."""
    try:
        with path.open(encoding=encoding, newline="") as f:
            header = f.readline()
    except (UnicodeDecodeError, UnicodeError):
        return ","  # the read that follows names the bad byte
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _bad_byte_line(path: Path, encoding: str) -> tuple[int, int]:
    """The line (from 1) holding the first byte `encoding` cannot decode, and its column."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as exc:
                return number, exc.start + 1
    return 0, 0


def _read_csv(
    path: Path, table: Table, progress: ReadProgress | None, default_encoding: str = "utf-8"
) -> TableFile:
    csv.field_size_limit(max(csv.field_size_limit(), _READ_LIMIT))
    total = path.stat().st_size
    encoding = encoding_of(path, default_encoding)
    delimiter = delimiter_of(path, encoding)
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        reader = csv.reader(text, delimiter=delimiter)
        row_number = 1
        try:
            header = next(reader, None)
            if header is None:
                raise ImportFailure(f"{path} is empty: it needs at least a header row.")
            names = _check_header(path, table, header)
            width = len(names)
            chunks: list[pa.RecordBatch] = []
            records: list[list[str]] = []
            rows: list[int] = []
            rejected: list[RejectedRow] = []
            for record in reader:
                row_number += 1
                if len(record) != width or not record[0].strip():
                    if not any(v.strip() for v in record):
                        continue  # a blank line or a row of empty cells: nothing to load or lose
                    if len(record) != width:
                        rejected.append(RejectedRow(
                            row_number, ",".join(v[:1000] for v in record),
                            f"expected {width} fields, found {len(record)}",
                        ))
                        continue
                too_long = _oversized(names, record, row_number)
                if too_long is not None:
                    rejected.append(too_long)
                    continue
                rows.append(row_number)
                records.append(record)
                if len(rows) >= _CHUNK:
                    chunks.append(_batch(names, records, rows))
                    records, rows = [], []
                    if progress:
                        progress(raw.tell(), total)
        except UnicodeDecodeError as exc:
            line, column = _bad_byte_line(path, encoding)
            shown = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16"}.get(encoding, encoding)
            raise ImportFailure(
                f"{path}, line {line}, character {column}: a byte that is not {shown} text; "
                f"save the file as UTF-8, or name its encoding in doorstep.toml "
                f'([import] encoding = "cp1252", say), and retry.'
            ) from exc
        except csv.Error as exc:
            raise ImportFailure(
                f"{path}, row {row_number}: {exc}; fix the quoting and retry."
            ) from exc
        chunks.append(_batch(names, records, rows))
    if progress:
        progress(total, total)
    data = pa.Table.from_batches(chunks)
    extra = [n for n in names if n not in table.column_names]
    return TableFile(table, path, data, extra, rejected)


def _batch(names: list[str], records: list[list[str]], rows: list[int]) -> pa.RecordBatch:
    columns = list(zip(*records, strict=True)) if records else [() for _ in names]
    arrays = [pa.array(c, type=pa.string()) for c in columns]
    arrays.append(pa.array(rows, type=pa.int64()))
    return pa.RecordBatch.from_arrays(arrays, names=[*names, ROW])


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
    if pa.types.is_date(column.type):
        return pc.strftime(column, format="%Y-%m-%d")
    if pa.types.is_boolean(column.type):
        return pc.if_else(column, "true", "false")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    return column.cast(pa.string())


def _read_parquet(path: Path, table: Table, progress: ReadProgress | None) -> TableFile:
    try:
        raw = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ImportFailure(
            f"{path} is not a readable Parquet file ({exc}); re-export it."
        ) from exc
    names = _check_header(path, table, list(raw.column_names))
    columns = []
    for name, column in zip(names, raw.columns, strict=True):
        try:
            columns.append(pc.fill_null(_as_text(column), ""))
        except pa.ArrowNotImplementedError as exc:
            raise ImportFailure(
                f"{path}: column '{name}' has type {column.type}, which cannot be read as text."
            ) from exc
    # Parquet has no header line: row N is the N-th record.
    columns.append(pa.chunked_array([pa.array(range(1, raw.num_rows + 1), type=pa.int64())]))
    data = pa.Table.from_arrays(columns, names=[*names, ROW])
    if progress:
        size = path.stat().st_size
        progress(size, size)
    extra = [n for n in names if n not in table.column_names]
    return TableFile(table, path, data, extra)


def read_table_file(
    path: Path, table: Table, progress: ReadProgress | None = None, *, encoding: str = "utf-8"
) -> TableFile:
    """Read one workspace file as text columns; stop with ImportFailure when it is unusable.

    `encoding` is for CSV files without a byte-order mark.
    """
    if path.suffix == ".parquet":
        return _read_parquet(path, table, progress)
    return _read_csv(path, table, progress, encoding)


def empty_table_file(data_dir: Path, table: Table) -> TableFile:
    """An optional table without a file: no rows."""
    columns = [pa.array([], type=pa.string()) for _ in table.column_names]
    data = pa.Table.from_arrays([*columns, pa.array([], type=pa.int64())],
                                names=[*table.column_names, ROW])
    return TableFile(table, data_dir / f"{table.name}.csv", data, [])


# Without these there is nothing to map; every other table may be left out (an empty table).
REQUIRED_TABLES = ("accounts", "partners", "partner_accounts")
