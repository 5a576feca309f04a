"""Shared fixtures: a real workspace on disk and a real store (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from doorstep.ingest.contract import TABLE_BY_NAME
from doorstep.store import Store, open_store

PG_ENV = "DOORSTEP_TEST_DATABASE_URL"

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get(PG_ENV),
            reason=f"PostgreSQL tests need {PG_ENV} (CI sets it; e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test)",
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'doorstep.db'}"
        return
    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    # A web app's background dashboard query may still be reading: dropping the schema under it
    # can deadlock with it, so try again once it has had a moment to finish.
    for attempt in range(10):
        try:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            break
        except OperationalError:
            if attempt == 9:
                raise
            time.sleep(0.5)
    admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store."""
    s = open_store(store_url)
    yield s
    s.engine.dispose()


def write_table(
    workspace: Path, table: str, rows: list[dict[str, object]], columns: list[str] | None = None
) -> Path:
    """Write one workspace table as CSV with the contract's columns (plus any extra ones)."""
    names = columns or list(TABLE_BY_NAME[table].column_names)
    for row in rows:
        names += [k for k in row if k not in names]
    path = workspace / "data" / f"{table}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


SMALL_WORLD: dict[str, list[dict[str, object]]] = {
    "reps": [
        {
            "rep_id": "r1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "territory": "EMEA",
            "capacity": 20,
            "active": "true",
        },
        {
            "rep_id": "r2",
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "territory": "NA",
            "capacity": 10,
            "active": "false",
        },
    ],
    "partners": [
        {
            "partner_id": "p1",
            "name": "Cloudway",
            "partner_manager_id": "r1",
            "contact_email": "alliances@cloudway.example",
        },
    ],
    "accounts": [
        {
            "account_id": "a1",
            "name": "Northwind Analytics GmbH",
            "website": "https://www.northwind.de/",
            "country": "DE",
            "industry": "software",
            "employees": 250,
            "annual_revenue": 3.5e7,
            "owner_id": "r1",
            "territory": "EMEA",
            "is_customer": "false",
        },
        {
            "account_id": "a2",
            "name": "Bluepeak Logistics",
            "website": "bluepeak.com",
            "country": "US",
            "industry": "logistics",
            "employees": 1200,
            "owner_id": "r2",
            "territory": "NA",
            "is_customer": "true",
        },
    ],
    "partner_accounts": [
        {
            "partner_id": "p1",
            "partner_account_id": "x1",
            "name": "NORTHWIND ANALYTICS",
            "relationship": "customer",
            "website": "northwind.de",
            "country": "Germany",
            "last_activity_at": "2026-10-01T10:00:00Z",
            "relationship_strength": 4,
            "contacts_engaged": 3,
            "customer_since": "2023-05-01",
        },
    ],
    "leads": [
        {
            "lead_id": "l1",
            "source_type": "mql",
            "created_at": "2026-06-01",
            "account_id": "a2",
            "behavior_score": 71,
        },
    ],
    "opportunities": [
        {
            "opportunity_id": "o1",
            "account_id": "a2",
            "created_at": "2026-07-01",
            "stage": "Closed Won",
            "amount": 50000,
            "closed_at": "2026-09-01",
            "is_won": "true",
            "lead_id": "l1",
        },
    ],
    "warmth_answers": [
        {
            "partner_id": "p1",
            "partner_account_id": "x1",
            "answer": "strong",
            "answered_at": "2026-10-05T09:00:00",
            "note": "CIO is a friend",
            "answered_by": "kim",
        },
    ],
}


@pytest.fixture
def small_workspace(tmp_path: Path) -> Path:
    """A valid workspace with a row or two in every table."""
    workspace = tmp_path / "ws"
    for name, rows in SMALL_WORLD.items():
        write_table(workspace, name, rows)
    return workspace


def mapping_inputs(world: Path) -> tuple[pa.Table, pa.Table]:
    """Return (ours, theirs) as the map stage takes them, read from a generated world's CSVs."""

    def read(name: str, columns: list[str]) -> pa.Table:
        path = world / "data" / f"{name}.csv"
        header = path.open(encoding="utf-8").readline().strip().split(",")
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in header}, strings_can_be_null=True,
            include_columns=columns))

    ours = read("accounts", ["account_id", "name", "website", "country"])
    theirs = read("partner_accounts", ["partner_id", "partner_account_id", "name", "website",
                                       "country", "relationship"])
    return ours, theirs.append_column("shared_account_id",
                                      pa.nulls(theirs.num_rows, pa.string()))
