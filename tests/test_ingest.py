"""Import: validation rules (one test each), atomicity, re-runs and updates by id."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SMALL_WORLD, write_table
from sqlalchemy import func, select

from doorstep.ingest import ImportFailure, import_workspace
from doorstep.store import Store
from doorstep.store.export import write_csv
from doorstep.store.models import (
    IMPORTED_MODELS,
    Account,
    PartnerAccount,
    QuarantinedRow,
    Rep,
    SourceLead,
)


def quarantine(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(QuarantinedRow).order_by(QuarantinedRow.id)).mappings()
        return [dict(r) for r in rows]


def count(store: Store, model: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def with_row(workspace: Path, table: str, **changes: object) -> None:
    """Rewrite `table` with one more row: a copy of its first row with `changes`."""
    rows = [dict(r) for r in SMALL_WORLD[table]]
    rows.append({**rows[0], **changes})
    write_table(workspace, table, rows)


def only_problem(store: Store) -> dict[str, Any]:
    problems = quarantine(store)
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_workspace_loads_every_row(small_workspace: Path, store: Store) -> None:
    report = import_workspace(small_workspace, store)
    assert report.quarantined == 0
    for name, rows in SMALL_WORLD.items():
        assert report.tables[name].inserted == len(rows)
    with store.engine.connect() as conn:
        account = conn.execute(select(Account).where(Account.account_id == "a1")).one()
    assert account.employees == 250 and account.is_customer is False
    assert account.website == "https://www.northwind.de/"  # stored as given


# A bad id, required value or reference quarantines the row; a bad optional value is left out
# of a row that loads ("cell").
@pytest.mark.parametrize(
    ("table", "changes", "column", "reason", "outcome"),
    [
        ("accounts", {"account_id": "a9", "name": ""}, "name", "required value is missing", "row"),
        ("accounts", {"account_id": "a9", "employees": "12.5"}, "employees", "whole number",
         "cell"),
        ("accounts", {"account_id": "a9", "employees": "-3"}, "employees", "at least 0", "cell"),
        (
            "accounts",
            {"account_id": "a9", "annual_revenue": "lots"},
            "annual_revenue",
            "expected a number",
            "cell",
        ),
        ("accounts", {"account_id": "a9", "is_customer": "maybe"}, "is_customer", "true or false",
         "cell"),
        (
            "partner_accounts",
            {"partner_account_id": "x9", "relationship": "friend"},
            "relationship",
            "one of customer, opportunity, prospect",
            "row",
        ),
        (
            "partner_accounts",
            {"partner_account_id": "x9", "relationship_strength": "7"},
            "relationship_strength",
            "at most 5",
            "cell",
        ),
        (
            "partner_accounts",
            {"partner_account_id": "x9", "customer_since": "01/05/2023"},
            "customer_since",
            "ISO 8601 date",
            "cell",
        ),
        (
            "partner_accounts",
            {"partner_account_id": "x9", "partner_owner_email": "nobody"},
            "partner_owner_email",
            "email address",
            "cell",
        ),
        ("leads", {"lead_id": "l9", "created_at": "yesterday"}, "created_at", "ISO 8601", "row"),
        ("reps", {"rep_id": "r9", "email": "not-an-email"}, "email", "email address", "row"),
        ("accounts", {"account_id": "a9", "owner_id": "r404"}, "owner_id", "unknown rep_id r404",
         "row"),
        (
            "partner_accounts",
            {"partner_id": "p404", "partner_account_id": "x9"},
            "partner_id",
            "unknown partner_id p404",
            "row",
        ),
        (
            "warmth_answers",
            {"partner_account_id": "x404"},
            "partner_id/partner_account_id",
            "unknown partner_accounts row",
            "row",
        ),
        ("accounts", {}, "account_id", "duplicate id a1 (first on row 2)", "row"),
    ],
)
def test_each_rule_quarantines_the_bad_row_or_value_with_file_row_column_and_reason(
    small_workspace: Path,
    store: Store,
    table: str,
    changes: dict[str, object],
    column: str,
    reason: str,
    outcome: str,
) -> None:
    with_row(small_workspace, table, **changes)
    report = import_workspace(small_workspace, store)
    problem = only_problem(store)
    assert problem["file"] == f"data/{table}.csv"
    assert problem["row_number"] == len(SMALL_WORLD[table]) + 2  # header is row 1
    assert problem["column_name"] == column
    assert reason in problem["reason"]
    counts = report.tables[table]
    assert problem["row_loaded"] is (outcome == "cell")
    assert counts.quarantined == (outcome == "row")
    assert counts.cells_left_out == (outcome == "cell")
    assert counts.inserted == len(SMALL_WORLD[table]) + (outcome == "cell")
    assert counts.inserted + counts.quarantined == counts.read


def test_a_bad_optional_value_loads_its_row_and_its_dependants_without_it(
    small_workspace: Path, store: Store
) -> None:
    with_row(small_workspace, "accounts", account_id="a9", employees="4,0x0")
    with_row(small_workspace, "leads", lead_id="l9", account_id="a9")
    report = import_workspace(small_workspace, store)
    with store.engine.connect() as conn:
        account = conn.execute(select(Account).where(Account.account_id == "a9")).one()
        lead = conn.execute(select(SourceLead).where(SourceLead.lead_id == "l9")).one()
    assert account.employees is None and account.name == SMALL_WORLD["accounts"][0]["name"]
    assert lead.account_id == "a9"
    assert report.quarantined == 0 and report.cells_left_out == 1
    (group,) = report.problems
    assert (group.table, group.column, group.value, group.loaded) == (
        "accounts", "employees", "4,0x0", True)
    out = io.StringIO()
    write_csv(store, "quarantine", out)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["outcome"] == "row loaded without this value"
    assert row["value"] == "4,0x0" and "whole number" in row["reason"]


def test_a_row_referencing_a_quarantined_row_names_the_parents_file_and_row(
    small_workspace: Path, store: Store
) -> None:
    with_row(small_workspace, "reps", rep_id="r9", email="broken")
    with_row(small_workspace, "accounts", account_id="a9", owner_id="r9")
    with_row(small_workspace, "partner_accounts", partner_account_id="x9", relationship="friend")
    with_row(small_workspace, "warmth_answers", partner_account_id="x9")
    import_workspace(small_workspace, store)
    reasons = {(p["table_name"], p["column_name"]): p["reason"] for p in quarantine(store)}
    assert reasons[("reps", "email")].startswith("expected an email address")
    rep_row = len(SMALL_WORLD["reps"]) + 2
    assert reasons[("accounts", "owner_id")].startswith(
        f"reps r9 is row {rep_row} of reps.csv, which was quarantined (expected an email")
    pa_row = len(SMALL_WORLD["partner_accounts"]) + 2
    said = reasons[("warmth_answers", "partner_id/partner_account_id")]
    assert f"is row {pa_row} of partner_accounts.csv, which was quarantined (expected one of" \
        in said
    assert "unknown" not in said


def test_ragged_csv_row_is_quarantined_not_dropped(small_workspace: Path, store: Store) -> None:
    path = small_workspace / "data" / "reps.csv"
    path.write_text(path.read_text() + "r7,Too,Many,Fields,Here,1,true,extra\n")
    import_workspace(small_workspace, store)
    problem = only_problem(store)
    assert problem["row_number"] == 4 and "expected 6 fields, found 8" in problem["reason"]


def test_an_oversized_cell_quarantines_its_row_and_the_rest_loads(
    small_workspace: Path, store: Store
) -> None:
    first = SMALL_WORLD["accounts"][0]
    huge = {**first, "account_id": "a9", "name": "Huge " + "x" * 1_048_576}
    write_table(small_workspace, "accounts",
                [*SMALL_WORLD["accounts"], huge, {**first, "account_id": "a8", "name": "Fine"}])
    report = import_workspace(small_workspace, store)
    problem = only_problem(store)
    assert problem["file"].endswith("accounts.csv")
    assert (problem["table_name"], problem["row_number"], problem["column_name"]) == (
        "accounts", len(SMALL_WORLD["accounts"]) + 2, "name"
    )
    assert "1,048,581 characters long" in problem["reason"]
    assert len(problem["value"]) < 1_100
    assert report.quarantined == 1
    with store.engine.connect() as conn:
        ids = set(conn.execute(select(Account.account_id)).scalars())
    assert "a8" in ids and "a9" not in ids


def test_missing_file_stops_the_import_and_changes_nothing(
    small_workspace: Path, store: Store
) -> None:
    import_workspace(small_workspace, store)
    (small_workspace / "data" / "partner_accounts.csv").unlink()
    write_table(small_workspace, "accounts", [{**SMALL_WORLD["accounts"][0], "name": "Changed"}])
    with pytest.raises(ImportFailure, match=r"partner_accounts\.csv is missing"):
        import_workspace(small_workspace, store)
    with store.engine.connect() as conn:
        assert (
            conn.execute(select(Account.name).where(Account.account_id == "a1")).scalar_one()
            == "Northwind Analytics GmbH"
        )


def test_missing_required_column_names_file_and_column(small_workspace: Path, store: Store) -> None:
    write_table(
        small_workspace,
        "leads",
        [{"lead_id": "l1", "created_at": "2026-01-01"}],
        columns=["lead_id", "created_at"],
    )
    with pytest.raises(ImportFailure) as failure:
        import_workspace(small_workspace, store)
    message = str(failure.value)
    assert "leads.csv" in message and "'source_type'" in message
    assert count(store, Rep) == 0  # nothing was loaded


def test_failure_midway_rolls_back_every_table(small_workspace: Path, store: Store) -> None:
    # A key far longer than the column allows fails on PostgreSQL; on SQLite we force a failure
    # by making the last table's file unreadable after the first tables were read.
    path = small_workspace / "data" / "warmth_answers.csv"
    path.write_bytes(b"partner_id,partner_account_id,answer,answered_at\n\xff\xfe,x,y,z\n")
    with pytest.raises(ImportFailure, match="not UTF-8"):
        import_workspace(small_workspace, store)
    assert count(store, Rep) == 0 and count(store, Account) == 0


def test_reimporting_the_same_files_changes_nothing(small_workspace: Path, store: Store) -> None:
    import_workspace(small_workspace, store)
    again = import_workspace(small_workspace, store)
    assert again.changed == 0
    assert all(t.unchanged == t.read for t in again.tables.values())


def test_changed_file_updates_by_id(small_workspace: Path, store: Store) -> None:
    import_workspace(small_workspace, store)
    accounts = [dict(r) for r in SMALL_WORLD["accounts"]]
    accounts[0]["employees"] = 300
    write_table(small_workspace, "accounts", accounts)
    report = import_workspace(small_workspace, store)
    assert (report.tables["accounts"].updated, report.tables["accounts"].unchanged) == (1, 1)
    assert report.tables["reps"].unchanged == 2
    with store.engine.connect() as conn:
        assert (
            conn.execute(select(Account.employees).where(Account.account_id == "a1")).scalar_one()
            == 300
        )
    assert count(store, Account) == 2


def test_extra_columns_are_kept_as_attributes(small_workspace: Path, store: Store) -> None:
    accounts = [{**r, "segment": "enterprise"} for r in SMALL_WORLD["accounts"]]
    write_table(small_workspace, "accounts", accounts)
    import_workspace(small_workspace, store)
    with store.engine.connect() as conn:
        attributes = conn.execute(select(Account.attributes).where(Account.account_id == "a1"))
        assert attributes.scalar_one() == {"segment": "enterprise"}


def test_quarantine_holds_only_the_latest_import(small_workspace: Path, store: Store) -> None:
    with_row(small_workspace, "reps", rep_id="r9", email="broken")
    import_workspace(small_workspace, store)
    assert len(quarantine(store)) == 1
    write_table(small_workspace, "reps", SMALL_WORLD["reps"])
    import_workspace(small_workspace, store)
    assert quarantine(store) == []


def test_parquet_tables_load_like_csv(small_workspace: Path, store: Store) -> None:
    csv_path = small_workspace / "data" / "partner_accounts.csv"
    rows = SMALL_WORLD["partner_accounts"]
    pq.write_table(
        pa.Table.from_pylist([{k: str(v) for k, v in r.items()} for r in rows]),
        small_workspace / "data" / "partner_accounts.parquet",
    )
    csv_path.unlink()
    import_workspace(small_workspace, store)
    assert count(store, PartnerAccount) == 1


def store_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every imported table's rows, without their hashes (a file's bytes differ by format)."""
    out = {}
    with store.engine.connect() as conn:
        for name, model in IMPORTED_MODELS.items():
            columns = [c for c in model.__table__.columns if c.name != "row_hash"]
            out[name] = sorted(tuple(r) for r in conn.execute(select(*columns)))
    return out


def test_every_table_as_parquet_with_native_types_loads_as_its_csv_does(
    small_workspace: Path, store: Store, tmp_path: Path
) -> None:
    import_workspace(small_workspace, store)
    from_csv = store_rows(store)
    assert all(from_csv[name] for name in SMALL_WORLD)

    parquet_ws = tmp_path / "pq"
    kinds: set[str] = set()
    (parquet_ws / "data").mkdir(parents=True)
    def native(value: Any) -> Any:
        if value in ("true", "false"):
            return value == "true"
        if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and value[10] == "T":
            return datetime.fromisoformat(value)
        return value

    for name, rows in SMALL_WORLD.items():
        # numbers, booleans and date-times as Parquet types, not text
        table = pa.Table.from_pylist([{k: native(v) for k, v in r.items()} for r in rows])
        pq.write_table(table, parquet_ws / "data" / f"{name}.parquet")
        kinds.update(str(t) for t in table.schema.types)
    other = store
    with other.engine.begin() as conn:  # the same store, emptied
        for model in reversed(list(IMPORTED_MODELS.values())):
            conn.execute(model.__table__.delete())
    report = import_workspace(parquet_ws, other)
    assert {"bool", "int64"} <= kinds and any(k.startswith("timestamp") for k in kinds)
    assert report.quarantined == 0 and report.cells_left_out == 0
    assert store_rows(other) == from_csv


def test_datetimes_with_offsets_are_stored_in_utc(small_workspace: Path, store: Store) -> None:
    leads = [{**SMALL_WORLD["leads"][0], "created_at": "2026-06-01T10:00:00+02:00"}]
    write_table(small_workspace, "leads", leads)
    import_workspace(small_workspace, store)
    with store.engine.connect() as conn:
        created = conn.execute(select(SourceLead.created_at)).scalar_one()
    assert (created.hour, created.tzinfo) == (8, None)


def test_a_nul_character_is_quarantined_not_stored(small_workspace: Path, store: Store) -> None:
    with_row(small_workspace, "accounts", account_id="a9", name="Bad\x00Name", industry="x\x00")
    report = import_workspace(small_workspace, store)
    problems = quarantine(store)
    assert {p["column_name"] for p in problems} == {"name", "industry"}
    assert all("NUL character" in p["reason"] for p in problems)
    assert {p["value"] for p in problems} == {"Bad\\0Name", "x\\0"}
    assert report.tables["accounts"].quarantined == 1 and count(store, Account) == 2


def test_exported_text_never_runs_as_a_spreadsheet_formula(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "ws"
    for name, rows in SMALL_WORLD.items():
        write_table(folder, name, rows)
    evil = '=HYPERLINK("http://evil.example","x")'
    write_table(folder, "partner_accounts", [
        *SMALL_WORLD["partner_accounts"],
        {"partner_id": "p1", "partner_account_id": "x9", "name": "Evil Corp",
         "relationship": evil},
    ])  # fmt: skip
    import_workspace(folder, store)
    out = io.StringIO()
    write_csv(store, "quarantine", out)
    values = [r["value"] for r in csv.DictReader(io.StringIO(out.getvalue()))]
    assert "'" + evil in values
    assert not any(v.startswith(("=", "+", "-", "@")) for v in values)
