"""Report speed and memory: 1M leads and 200k opportunities measured from a SQLite store.

Writes accounts, imported leads (mql, sql, event, eql), doorstep leads with their events,
overlaps, warmth answers and opportunities straight into a store with executemany, then times
`build_report` (attribution, rates, intervals, tests, Kaplan-Meier, breakdowns, segments).
Baseline, in the same process on the same store: pandas reads the leads and opportunities and
computes only the raw rate per lead type (an opportunity on the account within the window),
with no open or influenced leads, no one-per-type rule, no statistics and no breakdowns.

    .venv/bin/python benchmarks/report_speed.py [--leads 1000000] [--opportunities 200000]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _measure import Measured, machine, measure
from rich.console import Console
from rich.table import Table

from doorstep.config import Config
from doorstep.measure import build_report
from doorstep.store import open_store
from doorstep.workspace import Workspace

console = Console(width=110)
NOW = datetime(2026, 11, 1)
WINDOW_DAYS = 90
HISTORY_DAYS = 540
SOURCE_TYPES = ("mql", "event", "sql", "eql")
SOURCE_SHARES = (0.55, 0.20, 0.15, 0.10)
P_OPPORTUNITY = {"mql": 0.07, "event": 0.04, "sql": 0.15, "eql": 0.28}
INDUSTRIES = ("software", "fintech", "retail", "logistics", "healthcare")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "JP")
PARTNERS = 10
DAY = np.timedelta64(1, "D")


def _stamps(moments: np.ndarray[Any, Any]) -> list[str]:
    """SQLAlchemy's SQLite datetime text for datetime64 values."""
    return [s.replace("T", " ") for s in np.datetime_as_string(moments, unit="us").tolist()]


def _insert(
    db: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[Any]
) -> None:
    """Insert rows straight through sqlite3's executemany."""
    marks = ", ".join("?" for _ in columns)
    db.executemany(f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})', rows)


def generate(path: Path, leads: int, opportunities: int, accounts: int, doorstep: int) -> None:
    """Write a funnel of the given size straight into the SQLite store at `path`."""
    rng = np.random.default_rng(7)
    now = np.datetime64(NOW, "us")
    db = sqlite3.connect(path)
    account_ids = [f"A{i:07d}" for i in range(accounts)]
    _insert(
        db, "accounts", ("account_id", "name", "industry", "employees", "country", "row_hash"),
        zip(
            account_ids, (f"Company {i}" for i in range(accounts)),
            rng.choice(INDUSTRIES, accounts).tolist(),
            rng.integers(5, 20_000, accounts).tolist(), rng.choice(COUNTRIES, accounts).tolist(),
            ["x"] * accounts, strict=True,
        ),
    )  # fmt: skip
    _insert(
        db, "partners", ("partner_id", "name", "row_hash"),
        [(f"P{p:02d}", f"Partner {p}", "x") for p in range(PARTNERS)],
    )  # fmt: skip

    kind = rng.choice(len(SOURCE_TYPES), leads, p=SOURCE_SHARES)
    lead_account = rng.integers(0, accounts, leads)
    lead_created = now - (rng.uniform(0, HISTORY_DAYS, leads) * 86_400e6).astype("timedelta64[us]")
    no_account = (kind == 0) & (rng.random(leads) < 0.15)
    lead_ids = [f"L{i:08d}" for i in range(leads)]
    _insert(
        db, "source_leads", ("lead_id", "source_type", "created_at", "account_id", "row_hash"),
        zip(
            lead_ids, np.array(SOURCE_TYPES)[kind].tolist(), _stamps(lead_created),
            [None if n else account_ids[a] for a, n in zip(lead_account, no_account, strict=True)],
            ["x"] * leads, strict=True,
        ),
    )  # fmt: skip

    # opportunities: most born from a lead (70% of those name it), the rest on random accounts
    p = np.array([P_OPPORTUNITY[t] for t in SOURCE_TYPES])[kind]
    born = np.flatnonzero((rng.random(leads) < p) & ~no_account)
    from_lead = rng.choice(born, min(len(born), int(opportunities * 0.8)), replace=False)
    others = opportunities - len(from_lead)
    opp_account = np.concatenate([lead_account[from_lead], rng.integers(0, accounts, others)])
    days = 3 + rng.lognormal(np.log(18), 0.8, len(from_lead))
    opp_created = np.concatenate([
        lead_created[from_lead] + (days * 86_400e6).astype("timedelta64[us]"),
        now - (rng.uniform(1, HISTORY_DAYS, others) * 86_400e6).astype("timedelta64[us]"),
    ])
    named = np.concatenate([rng.random(len(from_lead)) < 0.7, np.zeros(others, bool)])
    opp_lead = np.concatenate([from_lead, np.zeros(others, np.int64)])
    closed = opp_created + (rng.uniform(14, 200, opportunities) * 86_400e6).astype(
        "timedelta64[us]"
    )
    is_closed = closed < now
    won = rng.random(opportunities) < 0.3
    _insert(
        db, "opportunities",
        ("opportunity_id", "account_id", "created_at", "amount", "closed_at", "is_won",
         "lead_id", "row_hash"),
        zip(
            [f"O{i:08d}" for i in range(opportunities)],
            [account_ids[a] for a in opp_account], _stamps(opp_created),
            rng.integers(1_000, 200_000, opportunities).astype(float).tolist(),
            [s if c else None for s, c in zip(_stamps(closed), is_closed, strict=True)],
            [int(w) if c else None for w, c in zip(won, is_closed, strict=True)],
            [lead_ids[i] if n else None for i, n in zip(opp_lead, named, strict=True)],
            ["x"] * opportunities, strict=True,
        ),
    )  # fmt: skip

    # doorstep's own leads on shared accounts, with overlaps, answers and events
    shared = rng.choice(accounts, doorstep, replace=False)
    partner = rng.integers(0, PARTNERS, doorstep)
    status = rng.choice(
        ["eql", "routed", "rejected", "candidate", "warmth_requested"], doorstep,
        p=[0.2, 0.15, 0.05, 0.45, 0.15],
    )  # fmt: skip
    failed = np.where(np.isin(status, ["candidate"]), "fit", "")
    failed = np.where(status == "warmth_requested", "warmth", failed)
    created = now - (rng.uniform(0, 365, doorstep) * 86_400e6).astype("timedelta64[us]")
    created_text = _stamps(created)
    rows = [
        (f"L-{account_ids[a]}", account_ids[a], s, f"P{p:02d}", f"X{a}", f, float(w), c, c)
        for a, s, p, f, w, c in zip(
            shared, status.tolist(), partner, failed.tolist(), rng.uniform(0, 100, doorstep),
            created_text, strict=True,
        )
    ]
    _insert(
        db, "leads",
        ("lead_id", "account_id", "status", "partner_id", "partner_account_id", "failed_gates",
         "warmth_score", "created_at", "updated_at"),
        rows,
    )  # fmt: skip
    _insert(
        db, "overlaps",
        ("account_id", "partner_id", "partner_account_id", "relationship", "method",
         "probability", "mapped_at"),
        [(r[1], r[3], r[4], "customer", "exact_domain", 1.0, r[7]) for r in rows],
    )  # fmt: skip
    _insert(
        db, "warmth_answers",
        ("partner_id", "partner_account_id", "answered_at", "answer", "row_hash"),
        [(r[3], r[4], r[7], "strong" if i % 2 else "some", "x")
         for i, r in enumerate(rows) if i % 3 == 0],
    )  # fmt: skip
    _insert(
        db, "lead_events", ("lead_id", "kind", "to_status", "actor", "at", "detail"),
        [(r[0], "status_changed", "eql", "bench", r[7], None) for r in rows if not r[5]]
        + [(r[0], "rejected", "rejected", "rep", r[7], '{"reason": "bad timing"}')
           for r in rows if r[2] == "rejected"],
    )  # fmt: skip
    db.commit()
    db.close()


def pandas_rates(path: Path) -> dict[str, float]:
    """Baseline: read leads and opportunities with pandas and compute the raw rate per type."""
    db = sqlite3.connect(path)
    leads = pd.read_sql("SELECT lead_id, source_type, created_at, account_id FROM source_leads", db)
    opps = pd.read_sql("SELECT account_id, created_at FROM opportunities", db)
    db.close()
    leads["created_at"] = pd.to_datetime(leads["created_at"], format="ISO8601")
    opps["created_at"] = pd.to_datetime(opps["created_at"], format="ISO8601")
    pairs = leads.merge(opps, on="account_id", suffixes=("", "_opp"))
    days = (pairs["created_at_opp"] - pairs["created_at"]).dt.total_seconds() / 86_400
    hit = pairs.loc[(days >= 0) & (days <= WINDOW_DAYS), "lead_id"].unique()
    leads["converted"] = leads["lead_id"].isin(hit)
    return {str(k): float(v) for k, v in leads.groupby("source_type")["converted"].mean().items()}


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=500_000)
    parser.add_argument("--doorstep-leads", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="doorstep-bench-report-"))
    try:
        store = open_store(f"sqlite:///{root / 'doorstep.db'}")
        store.engine.dispose()
        with console.status("writing the funnel into the store"):
            generate(root / "doorstep.db", args.leads, args.opportunities, args.accounts,
                     args.doorstep_leads)
        console.print(
            f"{machine()}; {args.leads:,} imported leads, {args.doorstep_leads:,} doorstep "
            f"leads, {args.opportunities:,} opportunities, {args.accounts:,} accounts"
        )
        gc.collect()
        cpu = time.process_time()
        rates, base = measure(lambda: pandas_rates(root / "doorstep.db"))
        base_cpu = time.process_time() - cpu
        gc.collect()
        workspace = Workspace(root, Config(), open_store(f"sqlite:///{root / 'doorstep.db'}"))
        cpu = time.process_time()
        report, ours = measure(lambda: build_report(workspace, now=NOW))
        ours_cpu = time.process_time() - cpu
        runs: list[tuple[str, Measured, float]] = [
            ("baseline: pandas raw rate per lead type", base, base_cpu),
            ("doorstep build_report", ours, ours_cpu),
        ]
        table = Table(title="Report on a SQLite store")
        for name in ("run", "seconds", "CPU seconds", "peak RSS", "time vs baseline",
                     "RSS vs baseline"):
            table.add_column(name, justify="left" if name == "run" else "right")
        for name, m, cpu_seconds in runs:
            table.add_row(
                name, f"{m.seconds:.1f}", f"{cpu_seconds:.1f}", _gib(m.peak_rss),
                f"{m.seconds / base.seconds:.2f}x", f"{m.peak_rss / base.peak_rss:.2f}x",
            )  # fmt: skip
        console.print(table)
        console.print(f"load average while running: {Path('/proc/loadavg').read_text().split()[0]}")
        eql, mql = report.lead_types["eql"], report.lead_types["mql"]
        console.print(
            f"EQL {eql.rate:.1%} vs MQL {mql.rate:.1%} (doorstep, measured leads); "
            f"raw pandas rates: EQL {rates['eql']:.1%}, MQL {rates['mql']:.1%}"
        )
        workspace.store.engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
