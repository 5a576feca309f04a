"""Loading a validated workspace into the store, all tables in one transaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Connection, delete, insert, select, update

from doorstep.ingest.contract import TABLES, Table
from doorstep.ingest.profiles import adapt, locate_sources, raw_table, with_partners
from doorstep.ingest.read import (
    REQUIRED_TABLES,
    ROW,
    TableFile,
    empty_table_file,
    read_table_file,
)
from doorstep.ingest.validate import Checked, check_table
from doorstep.ingest.values import as_declared
from doorstep.store import Store
from doorstep.store.db import hold_stage_lock
from doorstep.store.models import IMPORTED_MODELS, ImportRun, QuarantinedRow

_WRITE_CHUNK = 20_000

# (phase, table, done, total): phase is "read" (bytes) or "load" (rows)
ImportProgress = Callable[[str, str, int, int], None]


@dataclass
class TableCounts:
    """What happened to one table's rows."""

    file: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0  # rows quarantined whole
    not_in_file: int = 0
    cells_left_out: int = 0  # bad optional values left out of rows that loaded
    layout: str | None = None  # the export layout the file was read as, if not the contract's

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass
class ProblemGroup:
    """Quarantined rows or values sharing a table, column and reason: how many, and the first."""

    table: str
    column: str
    reason: str
    count: int
    file: str
    row: int
    value: str
    loaded: bool  # the rows loaded without the values


@dataclass
class ImportReport:
    """The outcome of one import: per-table counts and the number of quarantined rows."""

    import_id: int
    tables: dict[str, TableCounts] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # optional tables without a file
    problems: list[ProblemGroup] = field(default_factory=list)  # most frequent first

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables.values())

    @property
    def cells_left_out(self) -> int:
        return sum(t.cells_left_out for t in self.tables.values())

    @property
    def changed(self) -> int:
        return sum(t.inserted + t.updated for t in self.tables.values())


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _columns_for_driver(batch: pa.Table, dialect: str, has_attributes: bool) -> list[list[Any]]:
    """Column values ready for the database driver, converted in bulk from Arrow."""
    columns: list[list[Any]] = []
    for name, column in zip(batch.column_names, batch.columns, strict=True):
        if name == "attributes":
            columns.append(column.to_pylist() if has_attributes else [None] * batch.num_rows)
        elif dialect == "sqlite" and pa.types.is_timestamp(column.type):
            # SQLAlchemy's SQLite DateTime storage format, so reads come back as datetimes.
            columns.append(column.cast(pa.string()).to_pylist())
        elif dialect == "sqlite" and pa.types.is_date(column.type):
            columns.append(column.cast(pa.string()).to_pylist())
        else:
            columns.append(column.to_pylist())
    return columns


def _rows(
    valid: pa.Table, start: int, stop: int, dialect: str, has_attributes: bool
) -> tuple[list[str], list[tuple[Any, ...]]]:
    batch = valid.slice(start, stop - start).drop_columns([ROW])
    columns = _columns_for_driver(batch, dialect, has_attributes)
    return batch.column_names, list(zip(*columns, strict=True))


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _existing_hashes(conn: Connection, table: Table, schema: pa.Schema) -> pa.Table:
    model_table = IMPORTED_MODELS[table.name].__table__
    cols = [model_table.c[k] for k in table.key]
    result = conn.execute(select(*cols, model_table.c.row_hash))
    rows = result.fetchall()
    names = [*table.key, "row_hash"]
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table(
        {n: pa.array(c, type=schema.field(n).type) for n, c in zip(names, columns, strict=True)}
    )


def _plan(checked: Checked, existing: pa.Table) -> tuple[pa.Table, pa.Table, int, int]:
    """Split valid rows into new and changed ones; count unchanged rows and rows not in the file."""
    key = checked.table.key
    con = duckdb.connect()
    con.register("valid", checked.valid)
    con.register("existing", existing)
    on = " AND ".join(f'v."{k}" = e."{k}"' for k in key)
    new = con.sql(
        f"SELECT v.* FROM valid v ANTI JOIN existing e ON {on} ORDER BY v.{ROW}"
    ).to_arrow_table()
    changed = con.sql(
        f"SELECT v.* FROM valid v JOIN existing e ON {on} WHERE v.row_hash <> e.row_hash "
        f"ORDER BY v.{ROW}"
    ).to_arrow_table()
    unchanged = con.sql(
        f"SELECT count(*) FROM valid v JOIN existing e ON {on} WHERE v.row_hash = e.row_hash"
    ).fetchall()[0]
    gone = con.sql(f"SELECT count(*) FROM existing e ANTI JOIN valid v ON {on}").fetchall()[0]
    con.close()
    return new, changed, int(unchanged[0]), int(gone[0])


def _write(
    conn: Connection,
    checked: Checked,
    counts: TableCounts,
    has_attributes: bool,
    progress: ImportProgress | None,
) -> None:
    table = checked.table
    table_name = IMPORTED_MODELS[table.name].__tablename__
    new, changed, counts.unchanged, counts.not_in_file = _plan(
        checked, _existing_hashes(conn, table, checked.valid.schema)
    )
    # Straight to the driver: SQLAlchemy's per-row parameter processing costs more than the
    # database at millions of rows. Values arrive typed from DuckDB; JSON is already text.
    mark = _placeholder(conn)
    dialect = conn.dialect.name
    quote = conn.dialect.identifier_preparer.quote
    total = new.num_rows + changed.num_rows
    done = 0
    for frame, is_update in ((new, False), (changed, True)):
        for start in range(0, frame.num_rows, _WRITE_CHUNK):
            stop = min(start + _WRITE_CHUNK, frame.num_rows)
            names, rows = _rows(frame, start, stop, dialect, has_attributes)
            if is_update:
                sets = [n for n in names if n not in table.key]
                sql = (
                    f"UPDATE {quote(table_name)} SET "
                    + ", ".join(f"{quote(n)} = {mark}" for n in sets)
                    + " WHERE "
                    + " AND ".join(f"{quote(k)} = {mark}" for k in table.key)
                )
                order = [names.index(n) for n in (*sets, *table.key)]
                rows = [tuple(r[i] for i in order) for r in rows]
            else:
                sql = (
                    f"INSERT INTO {quote(table_name)} ("
                    + ", ".join(quote(n) for n in names)
                    + ") VALUES ("
                    + ", ".join(mark for _ in names)
                    + ")"
                )
            conn.exec_driver_sql(sql, rows)
            done += stop - start
            if progress:
                progress("load", table.name, done, total)
    counts.inserted, counts.updated = new.num_rows, changed.num_rows
    if progress and total == 0:
        progress("load", table.name, 0, 0)


def _quarantine_rows(
    import_id: int, table_file: TableFile, checked: Checked, workspace: Path
) -> list[dict[str, Any]]:
    file = (
        str(table_file.path.relative_to(workspace))
        if table_file.path.is_relative_to(workspace)
        else str(table_file.path)
    )
    rows = [
        {
            "import_id": import_id,
            "table_name": checked.table.name,
            "file": file,
            "row_number": p[ROW],
            "column_name": p["column"],
            "value": p["value"],
            "reason": p["reason"],
            "row_loaded": bool(p["loaded"]),
            "refuses": bool(p["refuses"]),
        }
        for p in checked.problems.to_pylist()
    ]
    rows += [
        {
            "import_id": import_id,
            "table_name": checked.table.name,
            "file": file,
            "row_number": r.row,
            "column_name": r.column,
            "value": r.text[:1000].replace("\x00", "\\0"),
            "reason": r.reason,
            "row_loaded": False,
            "refuses": True,
        }
        for r in table_file.rejected
    ]
    return rows


def problem_groups(quarantine: list[dict[str, Any]]) -> list[ProblemGroup]:
    """Group one table's quarantine by column and kind of reason, keeping the first of each."""
    groups: dict[tuple[str, str, bool], ProblemGroup] = {}
    for row in quarantine:
        if not row["row_loaded"] and not row["refuses"]:
            continue  # a value of a row quarantined for another reason
        column = row["column_name"] or "(row)"
        key = (column, _reason_kind(row["reason"], row["value"]), row["row_loaded"])
        group = groups.get(key)
        if group is None:
            groups[key] = ProblemGroup(
                row["table_name"], column, row["reason"], 1, row["file"], row["row_number"],
                row["value"] or "", row["row_loaded"],
            )
        else:
            group.count += 1
    return list(groups.values())


def _reason_kind(reason: str, value: str | None) -> str:
    """A reason without the values it quotes ("unknown rep_id r9 (not in reps)" and "... r8 ..."
    are one kind)."""
    if value and value.strip():
        reason = reason.replace(value.strip(), "#")
    return re.sub(r"\d+", "#", reason)


def import_workspace(
    workspace: Path,
    store: Store,
    *,
    progress: ImportProgress | None = None,
    encoding: str = "utf-8",
    date_format: str | None = None,
    decimal: str = ".",
    profile: str | None = None,
) -> ImportReport:
    """Validate every table of the workspace and load it into the store in one transaction.

    A missing file or required column raises ImportFailure before anything is written; bad
    rows go to the quarantine table; rows already in the store are updated by id. Files in a
    known export layout (`profiles`) are recognised by their headers; `profile` restricts
    them to one profile's.
    """
    data_dir = workspace / "data"
    sources = locate_sources(data_dir, profile=profile, encoding=encoding,
                             required=REQUIRED_TABLES)
    files: dict[str, TableFile] = {}
    named_partners: list[tuple[str, str, int]] = []
    for table in TABLES:

        def read_progress(done: int, total: int, name: str = table.name) -> None:
            if progress:
                progress("read", name, done, total)

        source = sources[table.name]
        if source is None:
            table_file = empty_table_file(data_dir, table)
        elif source.layout is None:
            table_file = read_table_file(source.path, table, read_progress, encoding=encoding)
        else:
            raw = read_table_file(source.path, raw_table(table), read_progress,
                                  encoding=encoding)
            adapted = adapt(raw, source.layout, files.get("reps"))
            table_file, named_partners = adapted.table_file, named_partners + adapted.partners
        files[table.name] = as_declared(table_file, date_format=date_format, decimal=decimal)
    if named_partners:
        files["partners"] = with_partners(files["partners"], named_partners)
    absent = [name for name, source in sources.items()
              if source is None and not (name == "partners" and named_partners)]

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    checked = {t.name: check_table(con, files[t.name]) for t in TABLES}
    con.close()

    started = _now()
    with store.engine.begin() as conn:
        hold_stage_lock(conn)
        run = conn.execute(
            insert(ImportRun).values(started_at=started, counts={}).returning(ImportRun.import_id)
        )
        import_id = int(run.scalar_one())
        report = ImportReport(import_id, absent=absent)
        conn.execute(delete(QuarantinedRow))
        for table in TABLES:
            table_file, result = files[table.name], checked[table.name]
            source = sources[table.name]
            counts = TableCounts(
                file="(no file)" if source is None else str(table_file.path.name),
                layout=source.layout.label if source and source.layout else None,
                read=table_file.rows_read,
                quarantined=len(result.refused_rows) + len(table_file.rejected),
                cells_left_out=result.cells_left_out,
            )
            _write(conn, result, counts, bool(table_file.extra_columns), progress)
            quarantine = _quarantine_rows(import_id, table_file, result, workspace)
            if quarantine:
                conn.execute(insert(QuarantinedRow),
                             [{k: v for k, v in q.items() if k != "refuses"} for q in quarantine])
            report.problems += problem_groups(quarantine)
            report.tables[table.name] = counts
        report.problems.sort(key=lambda g: (-g.count, g.table, g.column))
        conn.execute(
            update(ImportRun)
            .where(ImportRun.import_id == import_id)
            .values(
                finished_at=_now(),
                counts={name: asdict(c) for name, c in report.tables.items()},
            )
        )
    return report
