"""Validation rules of the data contract, run in bulk in DuckDB; bad rows become problems."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from doorstep.ingest.contract import Column, Table
from doorstep.ingest.read import ROW, TableFile

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
_INTEGER = r"^[+-]?[0-9]+(\.0+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
NUL_REASON = "contains a NUL character (\\0), which the store cannot hold; remove it"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


@dataclass(frozen=True)
class Rule:
    """One check: rows where `condition` holds are quarantined with `reason`."""

    column: str
    condition: str
    reason: str


def q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


# Whitespace a cell may be padded with: every character Python's str.strip() removes (tabs,
# line breaks, no-break spaces ...). DuckDB's trim() alone strips spaces only, so a tab-only id
# would pass as present; and its trim() with a set of characters costs 16 times a plain one,
# per use. So each column is trimmed once, in Arrow, into a column beside it (`with_trimmed`).
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_TRIMMED = "\x1ftrimmed"


def value(column: str) -> str:
    """SQL for a column's value: trimmed of whitespace, an empty string meaning missing (the
    column `with_trimmed` adds)."""
    return q(column + _TRIMMED)


def with_trimmed(data: pa.Table) -> pa.Table:
    """`data` with, beside each column, its values trimmed of whitespace and blank as null."""
    for name in list(data.column_names):
        if name == ROW:
            continue
        trimmed = pc.utf8_trim(data.column(name), characters=_WHITESPACE)
        trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
        data = data.append_column(name + _TRIMMED, trimmed)
    return data


def _sql_list(items: tuple[str, ...]) -> str:
    return ", ".join("'" + i.replace("'", "''") + "'" for i in items)


def column_rules(column: Column) -> list[Rule]:
    """The per-value rules for one column, from its type, choices and range."""
    v = value(column.name)
    rules: list[Rule] = []
    if column.required:
        rules.append(Rule(column.name, f"{v} IS NULL",
                          "required value is missing; fill it in, or remove the row"))
    present = f"{v} IS NOT NULL AND "
    kind = column.type
    if kind == "integer":
        rules.append(
            Rule(
                column.name,
                present + f"NOT regexp_full_match({v}, '{_INTEGER}')",
                "expected a whole number such as 4000",
            )
        )
        number = f"TRY_CAST({v} AS DOUBLE)"
        valid = f"regexp_full_match({v}, '{_INTEGER}')"
    elif kind == "number":
        number = f"TRY_CAST({v} AS DOUBLE)"
        rules.append(
            Rule(
                column.name,
                present + f"({number} IS NULL OR NOT isfinite({number}))",
                "expected a number (for 1.234,5 set [import] decimal = \",\")",
            )
        )
        valid = f"isfinite({number})"
    elif kind == "boolean":
        words = _sql_list(TRUE_WORDS + FALSE_WORDS)
        rules.append(
            Rule(column.name, present + f"lower({v}) NOT IN ({words})",
                 "expected true or false (yes/no, y/n and 1/0 work too)")
        )
    elif kind == "date":
        rules.append(
            Rule(
                column.name,
                present + f"(NOT regexp_full_match({v}, '{_DATE}') "
                f"OR TRY_CAST({v} AS DATE) IS NULL)",
                "expected an ISO 8601 date (YYYY-MM-DD); for dates such as 11/10/2026 set "
                "[import] date_format in doorstep.toml",
            )
        )
    elif kind == "datetime":
        rules.append(
            Rule(
                column.name,
                present + f"(NOT regexp_full_match({v}, '{_DATETIME}') "
                f"OR TRY_CAST({v} AS TIMESTAMPTZ) IS NULL)",
                "expected an ISO 8601 date or date-time (YYYY-MM-DD[THH:MM:SS]); for dates such "
                "as 11/10/2026 set [import] date_format in doorstep.toml",
            )
        )
    elif kind == "enum":
        rules.append(
            Rule(
                column.name,
                present + f"lower({v}) NOT IN ({_sql_list(column.choices)})",
                f"expected one of {', '.join(column.choices)}",
            )
        )
    elif kind == "email":
        rules.append(
            Rule(
                column.name,
                present + f"NOT regexp_full_match({v}, '{_EMAIL}')",
                "expected an email address such as name@example.com",
            )
        )
    if kind in ("integer", "number"):
        if column.minimum is not None:
            rules.append(
                Rule(
                    column.name,
                    present + f"{valid} AND {number} < {column.minimum}",
                    f"expected at least {column.minimum:g}",
                )
            )
        if column.maximum is not None:
            rules.append(
                Rule(
                    column.name,
                    present + f"{valid} AND {number} > {column.maximum}",
                    f"expected at most {column.maximum:g}",
                )
            )
    return rules


def typed_expression(column: Column) -> str:
    """SQL turning a valid text value into its typed value for the store."""
    v = value(column.name)
    kind = column.type
    if kind == "integer":
        return f"CAST(CAST({v} AS DOUBLE) AS BIGINT)"
    if kind == "number":
        return f"CAST({v} AS DOUBLE)"
    if kind == "boolean":
        return f"CASE WHEN {v} IS NULL THEN NULL ELSE lower({v}) IN ({_sql_list(TRUE_WORDS)}) END"
    if kind == "date":
        return f"CAST({v} AS DATE)"
    if kind == "datetime":
        return f"CAST(CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if kind == "enum":
        return f"lower({v})"
    if kind == "email":
        return v
    if column.name in _KEY_LIKE or column.references:
        return v
    # Names, websites and free text are stored as given; only an empty value becomes missing.
    return f"NULLIF({q(column.name)}, '')"


_KEY_LIKE = {
    "rep_id",
    "partner_id",
    "account_id",
    "partner_account_id",
    "lead_id",
    "opportunity_id",
    "source_type",
}


@dataclass
class Checked:
    """A table after validation: the typed rows to load and the problems found."""

    table: Table
    valid: pa.Table  # typed contract columns + attributes JSON + row_hash + __row
    # __row, column, value, reason; loaded: the row loaded without the value; refuses: this
    # problem is why the row was quarantined
    problems: pa.Table

    @property
    def refused_rows(self) -> set[int]:
        """Row numbers quarantined whole (a cell left out of a loaded row does not count)."""
        return {p[ROW] for p in self.problems.to_pylist() if not p["loaded"]}

    @property
    def cells_left_out(self) -> int:
        """How many values were left out of rows that loaded."""
        return sum(1 for loaded in self.problems.column("loaded").to_pylist() if loaded)


def cell_level(table: Table, column: Column) -> bool:
    """Whether a bad value in `column` leaves the row loaded without it.

    Ids, required values and references decide what a row is and what it belongs to; without
    them a row would mean something else, so a bad one quarantines the row. Anything else is
    left out of a row that loads.
    """
    return not column.required and column.name not in table.key and column.references is None


def _present(table_file: TableFile) -> list[Column]:
    names = set(table_file.data.column_names)
    return [c for c in table_file.table.columns if c.name in names]


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parent_said(target: str, key_sql: str, fallback: str) -> str:
    """SQL for the reason of a reference that resolves to nothing: the parent's quarantined row
    (naming its file and row) when the value is there, else `fallback`."""
    return (
        f"coalesce((SELECT {_sql_text(f'{target} ')} || r.key_text || ' is row ' || r.row || "
        f"' of ' || r.file || ', which was quarantined (' || r.reason || '); fix that row' "
        f"FROM refused_{target} r WHERE {key_sql} LIMIT 1), {fallback})"
    )


def check_table(con: duckdb.DuckDBPyConnection, table_file: TableFile) -> Checked:
    """Validate one table against its rules, duplicates and references to tables checked before.

    A bad value in an optional column (`cell_level`) is left out and the row loads; any other
    problem quarantines the row. Referenced tables must already be registered in `con` as
    `keys_<table>` and `refused_<table>` (see `register_keys` and `_register_refused`), which
    checking them does.
    """
    table = table_file.table
    src = f"src_{table.name}"
    con.register(src, with_trimmed(table_file.data))
    present = _present(table_file)
    cell_columns = {c.name for c in present if cell_level(table, c)}
    cell_columns |= set(table_file.extra_columns)

    def select(column: str, condition: str, reason: str) -> str:
        loaded = "true" if column in cell_columns else "false"
        return (
            f"SELECT {ROW} AS row, {_sql_text(column)} AS col, {q(column)} AS value, "
            f"{_sql_text(reason)} AS reason, {loaded} AS loaded FROM {src} WHERE {condition}"
        )

    parts = [select(r.column, r.condition, r.reason) for c in present for r in column_rules(c)]
    # PostgreSQL text cannot hold NUL; such a value is refused, not silently altered.
    parts += [
        select(name, f"contains({q(name)}, chr(0))", NUL_REASON)
        for name in table_file.data.column_names
        if name != ROW
    ]
    empty = (
        "SELECT NULL::BIGINT AS row, NULL AS col, NULL AS value, NULL AS reason, "
        "NULL::BOOLEAN AS loaded WHERE false"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE bad_{table.name} AS {' UNION ALL '.join(parts) or empty}"
    )
    refused = f"(SELECT row FROM bad_{table.name} WHERE NOT loaded)"

    key_sql = ", ".join(value(k) for k in table.key)
    key_text = " || ' / ' || ".join(value(k) for k in table.key)
    con.execute(
        f"INSERT INTO bad_{table.name} SELECT row, '{'/'.join(table.key)}', key_text, "
        f"'duplicate id ' || key_text || ' (first on row ' || first_row || '); keep one row "
        f"per id', false FROM ("
        f"  SELECT {ROW} AS row, {key_text} AS key_text,"
        f"    min({ROW}) OVER (PARTITION BY {key_sql}) AS first_row"
        f"  FROM {src} WHERE {ROW} NOT IN {refused}"
        f") WHERE row <> first_row"
    )
    for c in present:
        if c.references is None:
            continue
        target, target_column = c.references
        v = value(c.name)
        unknown = (
            f"'unknown {target_column} ' || {v} || ' (not in {target}); add it to {target} or "
            f"correct the id'"
        )
        con.execute(
            f"INSERT INTO bad_{table.name} SELECT {ROW}, '{c.name}', {q(c.name)}, "
            f"{_parent_said(target, f'r.k0 = {v}', unknown)}, false FROM {src} "
            f"WHERE {v} IS NOT NULL AND {ROW} NOT IN {refused} "
            f"AND {v} NOT IN (SELECT k0 FROM keys_{target})"
        )
    for columns, target, target_columns in table.composite_references:
        shown = " || ' / ' || ".join(value(a) for a in columns)
        cond = " AND ".join(f"{value(a)} = k.k{i}" for i, a in enumerate(columns))
        parent = " AND ".join(f"{value(a)} = r.k{i}" for i, a in enumerate(columns))
        unknown = (
            f"'unknown {target} row (no {'/'.join(target_columns)} like this in {target}); "
            f"add it to {target} or correct the ids'"
        )
        con.execute(
            f"INSERT INTO bad_{table.name} SELECT {ROW}, '{'/'.join(columns)}', "
            f"{shown}, {_parent_said(target, parent, unknown)}, false "
            f"FROM {src} s WHERE {ROW} NOT IN {refused} "
            f"AND NOT EXISTS (SELECT 1 FROM keys_{target} k WHERE {cond})"
        )

    # the rows as they load: each bad optional value left out
    cleared = sorted(
        name for (name,) in con.execute(
            f"SELECT DISTINCT col FROM bad_{table.name} WHERE loaded"
        ).fetchall()
    )
    replace = ", ".join(
        f"CASE WHEN {ROW} IN (SELECT row FROM bad_{table.name} WHERE loaded AND col = "
        f"{_sql_text(name)}) THEN NULL ELSE {q(column)} END AS {q(column)}"
        for name in cleared
        for column in (name, name + _TRIMMED)
    )
    rows = f"(SELECT * REPLACE ({replace}) FROM {src})" if cleared else src
    typed = [f"{typed_expression(c)} AS {q(c.name)}" for c in present]
    extras = table_file.extra_columns
    attributes = (
        "json_object("
        + ", ".join(f"'{e.replace(chr(39), chr(39) * 2)}', {value(e)}" for e in extras)
        + ")"
        if extras
        else "NULL"
    )
    hashed = " || chr(31) || ".join(
        f"coalesce({q(n)}, chr(30))" for n in table_file.data.column_names if n != ROW
    )
    valid = con.sql(
        f"SELECT {', '.join(typed)}, {attributes} AS attributes, md5({hashed}) AS row_hash, {ROW} "
        f"FROM {rows} WHERE {ROW} NOT IN {refused} ORDER BY {ROW}"
    ).to_arrow_table()
    # a bad optional value of a row quarantined whole did not load either, but it is not why
    problems = con.sql(
        f"SELECT row AS {ROW}, col AS column, replace(value, chr(0), '\\0') AS value, reason, "
        f"loaded AND row NOT IN {refused} AS loaded, NOT loaded AS refuses "
        f"FROM bad_{table.name} ORDER BY row, col"
    ).to_arrow_table()
    register_keys(con, table, valid)
    _register_refused(con, table_file, key_text)
    con.unregister(src)
    return Checked(table, valid, problems)


def _register_refused(con: duckdb.DuckDBPyConnection, table_file: TableFile,
                      key_text: str) -> None:
    """Keep the keys of `table`'s quarantined rows, each with its row, file and first reason,
    so that a row referring to one can say so (see `_parent_said`)."""
    table = table_file.table
    keys = ", ".join(f"{value(k)} AS k{i}" for i, k in enumerate(table.key))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE refused_{table.name} AS "
        f"SELECT {keys}, {key_text} AS key_text, s.{ROW} AS row, "
        f"{_sql_text(table_file.path.name)} AS file, "
        f"(SELECT b.reason FROM bad_{table.name} b WHERE b.row = s.{ROW} AND NOT b.loaded "
        f"ORDER BY b.col LIMIT 1) AS reason "
        f"FROM src_{table.name} s WHERE s.{ROW} IN "
        f"(SELECT row FROM bad_{table.name} WHERE NOT loaded) "
        f"AND NOT EXISTS (SELECT 1 FROM keys_{table.name} k WHERE "
        + " AND ".join(f"{value(k)} = k.k{i}" for i, k in enumerate(table.key)) + ")"
    )


def register_keys(con: duckdb.DuckDBPyConnection, table: Table, valid: pa.Table) -> None:
    """Make the valid keys of `table` available to the reference checks of later tables."""
    keys = valid.select(list(table.key)).rename_columns([f"k{i}" for i in range(len(table.key))])
    con.register("keys_in", keys)
    con.execute(f"CREATE OR REPLACE TEMP TABLE keys_{table.name} AS SELECT * FROM keys_in")
    con.unregister("keys_in")
