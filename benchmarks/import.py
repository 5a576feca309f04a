"""Import speed and memory: 1M accounts and 2M partner accounts from CSV into the store.

Baseline, in the same process and on the same files: a bare load with the csv module and
sqlite3 executemany (no validation, no types, no quarantine): the floor any importer sits on.

    .venv/bin/python benchmarks/import.py [--accounts 1000000] [--partner-accounts 2000000]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sqlite3
import tempfile
from pathlib import Path

import duckdb
from _measure import machine, measure
from rich.console import Console
from rich.table import Table

from doorstep.ingest import import_workspace, init_workspace
from doorstep.store import open_store

console = Console()


def generate(workspace: Path, accounts: int, partner_accounts: int) -> None:
    """Write a workspace with `accounts` accounts and `partner_accounts` rows over 10 partners."""
    init_workspace(workspace, overwrite=True)
    data = workspace / "data"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'r' || i AS rep_id, 'Rep ' || i AS name,
        'rep' || i || '@example.com' AS email, 'T' || (i % 6) AS territory, 50 AS capacity,
        true AS active FROM range(500) t(i)) TO '{data}/reps.csv' (HEADER)""")
    con.execute(f"""COPY (SELECT 'p' || i AS partner_id, 'Partner ' || i AS name,
        'r' || i AS partner_manager_id, 'alliances@p' || i || '.example' AS contact_email
        FROM range(10) t(i)) TO '{data}/partners.csv' (HEADER)""")
    con.execute(f"""COPY (SELECT 'a' || i AS account_id,
        'Company ' || i || (CASE i % 4 WHEN 0 THEN ' Inc.' WHEN 1 THEN ' GmbH' ELSE '' END) AS name,
        'https://www.company' || i || '.com/' AS website,
        ['US','GB','DE','FR','NL'][1 + i % 5] AS country,
        ['software','fintech','retail'][1 + i % 3] AS industry,
        10 + (i * 7919) % 20000 AS employees, (i % 1000) * 100000.0 AS annual_revenue,
        'r' || (i % 500) AS owner_id, 'T' || (i % 6) AS territory, i % 13 = 0 AS is_customer
        FROM range({accounts}) t(i)) TO '{data}/accounts.csv' (HEADER)""")
    con.execute(f"""COPY (SELECT 'p' || (i % 10) AS partner_id, 'x' || i AS partner_account_id,
        'COMPANY ' || (i * 31 % {accounts}) AS name,
        ['customer','opportunity','prospect'][1 + i % 3] AS relationship,
        'company' || (i * 31 % {accounts}) || '.com' AS website, 'US' AS country,
        'owner' || (i % 50) || '@partner.example' AS partner_owner_email,
        TIMESTAMP '2026-01-01' + INTERVAL (i % 300) DAY AS last_activity_at,
        1 + i % 5 AS relationship_strength, i % 7 AS contacts_engaged,
        CAST(DATE '2020-01-01' + INTERVAL (i % 1000) DAY AS DATE) AS customer_since
        FROM range({partner_accounts}) t(i)) TO '{data}/partner_accounts.csv' (HEADER)""")
    con.close()


def bare_load(workspace: Path, db: Path) -> int:
    """Baseline: csv.reader straight into sqlite3 executemany, no checks at all."""
    conn = sqlite3.connect(db)
    rows = 0
    for name in ("reps", "partners", "accounts", "partner_accounts"):
        with (workspace / "data" / f"{name}.csv").open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            cols = ", ".join(f'"{h}"' for h in header)
            conn.execute(f"CREATE TABLE {name} ({cols})")
            marks = ", ".join("?" for _ in header)
            batch: list[list[str]] = []
            for record in reader:
                batch.append(record)
                if len(batch) == 50_000:
                    conn.executemany(f"INSERT INTO {name} VALUES ({marks})", batch)
                    rows += len(batch)
                    batch = []
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", batch)
            rows += len(batch)
    conn.commit()
    conn.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--partner-accounts", type=int, default=2_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="doorstep-bench-import-"))
    try:
        workspace = root / "ws"
        with console.status("generating CSV files"):
            generate(workspace, args.accounts, args.partner_accounts)
        size = sum(p.stat().st_size for p in (workspace / "data").iterdir())
        console.print(f"{machine()}; input {size / 2**20:,.0f} MiB of CSV")

        rows, base = measure(lambda: bare_load(workspace, root / "bare.db"))
        store = open_store(f"sqlite:///{root / 'doorstep.db'}")
        report, first = measure(lambda: import_workspace(workspace, store))
        _, again = measure(lambda: import_workspace(workspace, store))
        loaded = sum(t.loaded for t in report.tables.values())
        assert loaded == rows, f"loaded {loaded:,} of {rows:,} rows"

        table = Table(title=f"Import of {rows:,} rows (SQLite)", title_justify="left")
        for col in ("run", "seconds", "rows/s", "peak RSS", "time vs baseline"):
            table.add_column(col, justify="right" if col != "run" else "left")
        for label, m in (
            ("baseline: csv + sqlite3, no checks", base),
            ("doorstep import (validate, load)", first),
            ("doorstep re-import (no changes)", again),
        ):
            table.add_row(
                label,
                f"{m.seconds:,.1f}",
                f"{rows / m.seconds:,.0f}",
                f"{m.peak_rss / 2**30:,.2f} GiB",
                f"{m.seconds / base.seconds:.2f}x",
            )
        console.print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
