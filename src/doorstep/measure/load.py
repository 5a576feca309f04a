"""The report's data: the store's tables copied into DuckDB, typed and normalised once.

Segments use the same normalised values as the gates: countries as the fit gate reads them
(ISO codes), industries and relationships folded as the gates compare them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Connection

from doorstep.lifecycle import PRE_EQL
from doorstep.measure.attribution import is_holdout
from doorstep.qualify.fit import country_key, value_key
from doorstep.store.queries import latest_answers
from doorstep.workspace import Workspace


def segment_value(value: Any) -> str | None:
    """A text value as the gates compare it (trimmed, case-folded); None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value_key(value)


def _country(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return country_key(value)


def _mapped(column: pa.ChunkedArray, fn: Any) -> pa.Array:
    """`fn` over a text column, once per distinct value."""
    values = column.to_pylist()
    known = {v: fn(v) for v in set(values)}
    return pa.array([known[v] for v in values], pa.string())


def _normalised_segments(table: pa.Table) -> pa.Table:
    table = table.set_column(
        table.schema.get_field_index("industry"), "industry",
        _mapped(table["industry"], segment_value),
    )
    return table.set_column(
        table.schema.get_field_index("country"), "country", _mapped(table["country"], _country)
    )


def _normalised_relationships(table: pa.Table) -> pa.Table:
    return table.set_column(
        table.schema.get_field_index("relationship"), "relationship",
        _mapped(table["relationship"], segment_value),
    )


_TEXT, _FLOAT, _INT = pa.string(), pa.float64(), pa.int64()

# name -> (select against the store, Arrow types of its columns); timestamps come as text, and
# table names are quoted because OVERLAPS is an SQL keyword.
_SELECTS: dict[str, tuple[str, dict[str, pa.DataType]]] = {
    "src_leads": (
        "SELECT lead_id, source_type, CAST(created_at AS TEXT), account_id FROM \"source_leads\"",
        {"lead_id": _TEXT, "source_type": _TEXT, "created_at": _TEXT, "account_id": _TEXT},
    ),
    "ds_leads": (
        "SELECT lead_id, account_id, status, partner_id, partner_account_id, failed_gates, "
        "warmth_score, CAST(created_at AS TEXT) FROM \"leads\"",
        {
            "lead_id": _TEXT, "account_id": _TEXT, "status": _TEXT, "partner_id": _TEXT,
            "partner_account_id": _TEXT, "failed_gates": _TEXT, "warmth_score": _FLOAT,
            "created_at": _TEXT,
        },
    ),
    "eql_times": (
        "SELECT lead_id, CAST(MIN(at) AS TEXT) FROM \"lead_events\" WHERE to_status = 'eql' "
        "GROUP BY lead_id",
        {"lead_id": _TEXT, "eql_at": _TEXT},
    ),
    "rejections": (
        "SELECT lead_id, CAST(detail AS TEXT), CAST(at AS TEXT) FROM \"lead_events\" "
        "WHERE kind = 'rejected'",
        {"lead_id": _TEXT, "detail": _TEXT, "rejected_at": _TEXT},
    ),
    "opps_raw": (
        "SELECT opportunity_id, account_id, CAST(created_at AS TEXT), amount, "
        "CAST(closed_at AS TEXT), CAST(is_won AS INTEGER), lead_id FROM \"opportunities\"",
        {
            "opportunity_id": _TEXT, "account_id": _TEXT, "created_at": _TEXT, "amount": _FLOAT,
            "closed_at": _TEXT, "is_won": _INT, "lead_id": _TEXT,
        },
    ),
    "account_facts": (
        "SELECT account_id, industry, employees, country FROM \"accounts\"",
        {"account_id": _TEXT, "industry": _TEXT, "employees": _INT, "country": _TEXT},
    ),
    "partner_overlaps": (
        "SELECT account_id, partner_id, partner_account_id, relationship, probability "
        "FROM \"overlaps\"",
        {
            "account_id": _TEXT, "partner_id": _TEXT, "partner_account_id": _TEXT,
            "relationship": _TEXT, "probability": _FLOAT,
        },
    ),
    "partner_names": (
        "SELECT partner_id, name FROM \"partners\"",
        {"partner_id": _TEXT, "name": _TEXT},
    ),
}
_FETCH_ROWS = 250_000


def _fetch_arrow(conn: Connection, sql: str, schema: Mapping[str, pa.DataType]) -> pa.Table:
    """Run a select straight through the driver and return its rows as an Arrow table."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        batches: list[pa.RecordBatch] = []
        while rows := cursor.fetchmany(_FETCH_ROWS):
            # one list per column: much faster than zip(*rows) on wide batches
            columns = [
                pa.array([row[i] for row in rows], type=t) for i, t in enumerate(schema.values())
            ]
            batches.append(pa.record_batch(columns, names=list(schema)))
    finally:
        cursor.close()
    return pa.Table.from_batches(batches, schema=pa.schema(list(schema.items())))


def load_store(workspace: Workspace, con: duckdb.DuckDBPyConnection, holdout_share: float) -> None:
    """Copy the tables the report needs from the store into DuckDB."""
    with workspace.store.engine.connect() as conn:
        tables = {name: _fetch_arrow(conn, sql, schema) for name, (sql, schema) in _SELECTS.items()}
        answers = latest_answers(conn)
    tables["latest_answers"] = pa.table(
        {
            "partner_id": pa.array([k[0] for k in answers], pa.string()),
            "partner_account_id": pa.array([k[1] for k in answers], pa.string()),
            "answer": pa.array([segment_value(a.answer) for a in answers.values()], pa.string()),
        }
    )
    tables["account_facts"] = _normalised_segments(tables["account_facts"])
    tables["partner_overlaps"] = _normalised_relationships(tables["partner_overlaps"])
    doorstep = tables["ds_leads"]
    held = [is_holdout(lead_id, holdout_share) for lead_id in doorstep["lead_id"].to_pylist()]
    tables["ds_leads"] = doorstep.append_column("holdout", pa.array(held, pa.bool_()))
    for name, table in tables.items():
        con.register(name, table)  # a view over the Arrow table: no copy


_LEADS_SQL_TEMPLATE = """
CREATE OR REPLACE TEMP TABLE opportunities AS
SELECT opportunity_id, account_id, TRY_CAST(created_at AS TIMESTAMP) AS created_at, amount,
       TRY_CAST(closed_at AS TIMESTAMP) AS closed_at,
       CASE is_won WHEN 1 THEN true WHEN 0 THEN false END AS is_won, lead_id
FROM opps_raw
WHERE TRY_CAST(created_at AS TIMESTAMP) IS NOT NULL;

CREATE OR REPLACE TEMP TABLE best_overlap AS
SELECT account_id, partner_id, partner_account_id, relationship
FROM partner_overlaps
QUALIFY row_number() OVER (
    PARTITION BY account_id ORDER BY probability DESC, partner_id, partner_account_id) = 1;

CREATE OR REPLACE TEMP TABLE latest_rejections AS
SELECT lead_id,
       coalesce(nullif(trim(json_extract_string(detail, '$.reason')), ''), 'no reason given')
           AS reason
FROM rejections
QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY rejected_at DESC) = 1;

CREATE OR REPLACE TEMP TABLE leads AS
WITH doorstep AS (
    SELECT d.*, TRY_CAST(e.eql_at AS TIMESTAMP) AS eql_at,
           d.status NOT IN ({pre_eql}) AS ever_eql
    FROM ds_leads d LEFT JOIN eql_times e USING (lead_id)
),
typed AS (
    SELECT 'imported:' || s.lead_id AS lead_key, s.lead_id, 'imported' AS origin,
           lower(trim(s.source_type)) AS lead_type, s.account_id,
           TRY_CAST(s.created_at AS TIMESTAMP) AS created_at,
           b.partner_id, b.partner_account_id,
           CAST(NULL AS DOUBLE) AS warmth_score, false AS holdout
    FROM src_leads s
    LEFT JOIN best_overlap b
           ON b.account_id = s.account_id AND lower(trim(s.source_type)) = 'eql'
    UNION ALL
    SELECT 'doorstep:' || lead_id, lead_id, 'doorstep',
           CASE WHEN ever_eql THEN 'eql'
                ELSE 'candidate:'
                     || coalesce(nullif(split_part(failed_gates, ';', 1), ''), 'unknown')
           END,
           account_id,
           CASE WHEN ever_eql THEN coalesce(eql_at, TRY_CAST(created_at AS TIMESTAMP))
                ELSE TRY_CAST(created_at AS TIMESTAMP) END,
           partner_id, partner_account_id, warmth_score, holdout AND ever_eql
    FROM doorstep
)
SELECT * FROM typed WHERE created_at IS NOT NULL
UNION ALL
SELECT * REPLACE ('candidate' AS lead_type)
FROM typed WHERE created_at IS NOT NULL AND lead_type LIKE 'candidate:%';
"""
# Surfaced (an EQL) is the lifecycle's one definition: past the statuses before EQL.
LEADS_SQL = _LEADS_SQL_TEMPLATE.replace(
    "{pre_eql}", ", ".join(f"'{s}'" for s in PRE_EQL)
)

# After attribution: the attributes breakdowns group by, joined once for the leads that need
# them (partner-sourced leads; EQLs and MQLs for the segment comparisons).
SEGMENTS_SQL = """
CREATE OR REPLACE TEMP TABLE partner_outcomes AS
SELECT l.*,
       coalesce(l.partner_id || coalesce(' ' || p.name, ''), 'unknown') AS partner,
       coalesce(o.relationship, 'unknown') AS relationship,
       CASE WHEN l.warmth_score IS NULL THEN 'unknown'
            WHEN l.warmth_score < 40 THEN 'under 40'
            WHEN l.warmth_score < 70 THEN '40-69'
            ELSE '70+' END AS warmth_band,
       coalesce(w.answer, 'no answer') AS partner_answer,
       CASE WHEN l.origin = 'doorstep' THEN coalesce(r.reason, 'not rejected') END
           AS rejection_reason
FROM lead_outcomes l
LEFT JOIN partner_names p ON p.partner_id = l.partner_id
LEFT JOIN partner_overlaps o ON o.account_id = l.account_id AND o.partner_id = l.partner_id
                            AND o.partner_account_id = l.partner_account_id
LEFT JOIN latest_answers w ON w.partner_id = l.partner_id
                          AND w.partner_account_id = l.partner_account_id
LEFT JOIN latest_rejections r ON l.origin = 'doorstep' AND r.lead_id = l.lead_id
WHERE l.lead_type IN ('eql', 'candidate');

CREATE OR REPLACE TEMP TABLE segment_outcomes AS
SELECT l.*,
       CASE WHEN a.employees IS NULL THEN 'unknown'
            WHEN a.employees < 50 THEN '1-49'
            WHEN a.employees < 200 THEN '50-199'
            WHEN a.employees < 1000 THEN '200-999'
            WHEN a.employees < 5000 THEN '1000-4999'
            ELSE '5000+' END AS employees,
       coalesce(a.industry, 'unknown') AS industry,
       coalesce(a.country, 'unknown') AS country
FROM lead_outcomes l
LEFT JOIN account_facts a ON a.account_id = l.account_id
WHERE l.lead_type IN ('eql', 'mql') AND l.state = 'measured';
"""
