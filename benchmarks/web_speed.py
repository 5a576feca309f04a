"""Web page speed at a million leads: every page of every role, against a static page and
against the same pages without the web app's indexes.

Writes 1M leads (with accounts, partner accounts, overlaps, events, warmth checks and answers,
opportunities and MQLs) straight into a SQLite store, computes the dashboard's snapshot once,
then times each page in process through FastAPI's TestClient (the median and 95th percentile
of N requests: server time plus a few hundred microseconds of in-process client). Baselines:
`/healthz`, a static JSON answer (the floor of any request), and the same page after dropping
the four indexes migration 0004 adds (what the queries cost without them).

    .venv/bin/python benchmarks/web_speed.py [--leads 1000000] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from _measure import machine, measure
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from doorstep.config import CONFIG_FILE
from doorstep.store import open_store
from doorstep.web import auth, create_app
from doorstep.web.auth import add_user, issue_token
from doorstep.web.snapshot import compute_snapshot

console = Console(width=140)
NOW = datetime.now().replace(microsecond=0)
PARTNERS = 10
REPS = 200
CHUNK = 100_000
WEB_INDEXES = {  # what migrations 0004 and 0010 add for the pages, to drop for the baseline
    "ix_leads_partner_updated": "leads (partner_id, updated_at, lead_id)",
    "ix_leads_owner_due": "leads (owner_id, due_at, lead_id)",
    "ix_leads_status_due": "leads (status, due_at, lead_id)",
    "ix_overlaps_partner": "overlaps (partner_id, partner_account_id)",
    **{f"ix_leads_by_{c}": f"leads ({c}, lead_id)"
       for c in ("due_at", "updated_at", "created_at", "warmth_score", "fit_score")},
    "ix_accounts_name_lower": "accounts (lower(name))",
}
# The lifecycle share of doorstep leads, roughly as a busy year leaves them.
STATUSES = (
    ("candidate", 0.50), ("warmth_requested", 0.10), ("eql", 0.02), ("routed", 0.10),
    ("accepted", 0.05), ("intro_requested", 0.04), ("intro_made", 0.06), ("rejected", 0.08),
    ("expired", 0.05),
)
ACTIONS = ("partner_intro", "co_sell", "rep_outreach")
RELATIONSHIPS = ("customer", "opportunity", "prospect")


def _insert(conn: Any, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]) -> int:
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            conn.exec_driver_sql(sql, batch)
            count, batch = count + len(batch), []
    if batch:
        conn.exec_driver_sql(sql, batch)
        count += len(batch)
    return count


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(url: str, leads: int, seed: int = 5) -> dict[str, int]:
    """Write `leads` doorstep leads and everything around them straight into the store."""
    rng = random.Random(seed)
    weights = [w for _, w in STATUSES]
    names = [s for s, _ in STATUSES]
    statuses = rng.choices(names, weights, k=leads)
    store = open_store(url)
    counts: dict[str, int] = {}
    with store.engine.begin() as conn:
        counts["reps"] = _insert(conn, "reps", ("rep_id", "name", "email", "territory",
                                                "capacity", "active", "row_hash"),
                                 ((f"r{i}", f"Rep {i}", f"rep{i}@example.com", f"T{i % 8}",
                                   10_000, 1, "x") for i in range(REPS)))
        counts["partners"] = _insert(conn, "partners", ("partner_id", "name", "contact_email",
                                                        "row_hash"),
                                     ((f"p{p}", f"Partner {p}", f"alliances@p{p}.example", "x")
                                      for p in range(PARTNERS)))
        counts["accounts"] = _insert(
            conn, "accounts", ("account_id", "name", "country", "industry", "employees",
                               "owner_id", "territory", "is_customer", "row_hash"),
            ((f"a{i}", f"Company {i}", ("US", "GB", "DE", "FR")[i % 4],
              ("software", "fintech", "retail")[i % 3], 20 + (i * 7919) % 6000,
              f"r{i % REPS}", f"T{i % 8}", int(i % 29 == 0), "x") for i in range(leads)))
        counts["partner_accounts"] = _insert(
            conn, "partner_accounts", ("partner_id", "partner_account_id", "name",
                                       "relationship", "partner_owner_email", "row_hash"),
            ((f"p{i % PARTNERS}", f"x{i}", f"COMPANY {i}", RELATIONSHIPS[i % 3],
              f"owner{i % 40}@p{i % PARTNERS}.example", "x") for i in range(leads)))
        counts["overlaps"] = _insert(
            conn, "overlaps", ("account_id", "partner_id", "partner_account_id", "relationship",
                               "method", "probability", "mapped_at"),
            ((f"a{i}", f"p{i % PARTNERS}", f"x{i}", RELATIONSHIPS[i % 3], "exact_domain", 1.0,
              _ts(NOW - timedelta(days=200))) for i in range(leads)))

        def lead_rows() -> Iterator[tuple[Any, ...]]:
            for i, status in enumerate(statuses):
                created = NOW - timedelta(days=1 + (i * 37) % 400)
                surfaced = status not in ("candidate", "warmth_requested")
                routed = surfaced and status != "eql"
                due = created + timedelta(days=3) if surfaced else None
                yield (
                    f"L-a{i}", f"a{i}", status, f"p{i % PARTNERS}", f"x{i}",
                    "" if surfaced else ("warmth" if status == "warmth_requested" else "fit"),
                    "all four gates passed" if surfaced else "failed a gate",
                    '{"overlap": {"passed": true, "reason": "shared"}}',
                    float(30 + i % 70), 100.0,
                    f"r{(i * 13) % REPS}" if routed else None,
                    ACTIONS[i % 3] if surfaced else None,
                    _ts(due) if due else None, _ts(created),
                    _ts(created + timedelta(days=i % 5)),
                )

        counts["leads"] = _insert(
            conn, "leads", ("lead_id", "account_id", "status", "partner_id",
                            "partner_account_id", "failed_gates", "reason", "gates",
                            "warmth_score", "fit_score", "owner_id", "action", "due_at",
                            "created_at", "updated_at"), lead_rows())

        def event_rows() -> Iterator[tuple[Any, ...]]:
            for i, status in enumerate(statuses):
                created = NOW - timedelta(days=1 + (i * 37) % 400)
                surfaced = status not in ("candidate", "warmth_requested")
                yield (f"L-a{i}", "created", "eql" if surfaced else status, "doorstep qualify",
                       _ts(created))
                if surfaced and status != "eql":
                    yield (f"L-a{i}", "routed", "routed", "doorstep act",
                           _ts(created + timedelta(hours=1)))
                if status in ("intro_requested", "intro_made"):
                    yield (f"L-a{i}", "intro_requested", "intro_requested", "doorstep act",
                           _ts(created + timedelta(days=1)))
                if status == "intro_made":
                    yield (f"L-a{i}", "intro_made", "intro_made", "rep",
                           _ts(created + timedelta(days=2)))
                if status == "rejected":
                    yield (f"L-a{i}", "rejected", "rejected", "rep",
                           _ts(created + timedelta(days=2)))

        counts["lead_events"] = _insert(
            conn, "lead_events", ("lead_id", "kind", "to_status", "actor", "at"), event_rows())
        counts["warmth_requests"] = _insert(
            conn, "warmth_requests", ("partner_id", "partner_account_id", "account_id", "lead_id",
                                      "warmth_score", "status", "requested_at"),
            ((f"p{i % PARTNERS}", f"x{i}", f"a{i}", f"L-a{i}", 60.0, "open",
              _ts(NOW - timedelta(days=i % 30)))
             for i, status in enumerate(statuses) if status == "warmth_requested"))
        counts["warmth_answers"] = _insert(
            conn, "warmth_answers", ("partner_id", "partner_account_id", "answered_at", "answer",
                                     "row_hash"),
            ((f"p{i % PARTNERS}", f"x{i}", _ts(NOW - timedelta(days=300)),
              ("strong", "some")[i % 2], "x")
             for i, status in enumerate(statuses)
             if status not in ("candidate", "warmth_requested") and i % 2 == 0))
        counts["opportunities"] = _insert(
            conn, "opportunities", ("opportunity_id", "account_id", "created_at", "amount",
                                    "closed_at", "is_won", "row_hash"),
            ((f"o{i}", f"a{i}", _ts(NOW - timedelta(days=(i * 37) % 400 - 20)), 10_000.0,
              None, None, "x")
             for i, status in enumerate(statuses)
             if status in ("intro_made", "accepted") and i % 3 == 0))
        mqls = leads // 5
        counts["source_leads (mql)"] = _insert(
            conn, "source_leads", ("lead_id", "source_type", "created_at", "account_id",
                                   "row_hash"),
            ((f"m{i}", "mql", _ts(NOW - timedelta(days=1 + i % 400)), f"a{(i * 7) % leads}", "x")
             for i in range(mqls)))
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.engine.dispose()
    return counts


def timings(client: TestClient, url: str, headers: dict[str, str], runs: int) -> list[float]:
    """Milliseconds of `runs` requests (after one warm-up request); each must answer 200."""
    first = client.get(url, headers=headers)
    assert first.status_code == 200, (url, first.status_code, first.text[:200])
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        result.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return result


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the generated workspace")
    args = parser.parse_args()
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    root = Path(tempfile.mkdtemp(prefix="doorstep-bench-web-"))
    url = f"sqlite:///{root / 'doorstep.db'}"
    # every partner may see the overlaps it shares with us, so its pages and API hold leads
    sharing = "".join(f'[sharing.p{i}]\ncustomers = "overlaps"\nprospects = "overlaps"\n'
                      for i in range(PARTNERS))
    (root / CONFIG_FILE).write_text(f'[store]\nurl = "{url}"\n{sharing}', encoding="utf-8")
    try:
        with console.status(f"writing {args.leads:,} leads and what surrounds them"):
            counts, generated = measure(lambda: generate(url, args.leads))
        console.print(f"{machine()}; load average "
                      f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        console.print("generated in " + f"{generated.seconds:,.0f} s: "
                      + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        app = create_app(root, warm_up=False, snapshot_wait=0)
        app.state.doorstep.pages.max_age = 0  # every request rendered: this measures the work
        workspace = app.state.doorstep.workspace
        store = workspace.store
        roles = {
            "admin": ("admin@example.com", "admin", None, None),
            "partner_manager": ("pm@example.com", "partner_manager", None, None),
            "rep": ("rep@example.com", "rep", None, "r7"),
            "partner": ("partner@example.com", "partner", "p3", None),
        }
        tokens = {}
        for role, (email, kind, partner, rep) in roles.items():
            add_user(store, email, kind, "benchmark password", partner_id=partner, rep_id=rep)
            tokens[role] = {"Authorization": f"Bearer {issue_token(store, email)}"}
        with store.engine.connect() as conn:
            middle = args.leads // 20
            any_lead = conn.execute(text("SELECT lead_id FROM leads ORDER BY lead_id LIMIT 1 "
                                         f"OFFSET {args.leads // 2}")).scalar_one()
            own_lead = conn.execute(text(
                "SELECT lead_id FROM leads WHERE partner_id = 'p3' AND status = 'routed' "
                f"ORDER BY lead_id LIMIT 1 OFFSET {middle // 20}")).scalar_one()
            deep = conn.execute(text(
                "SELECT updated_at, lead_id FROM leads WHERE partner_id = 'p3' AND status NOT IN "
                "('candidate', 'warmth_requested') ORDER BY updated_at DESC, lead_id DESC "
                f"LIMIT 1 OFFSET {middle // 2}")).one()
        cursor = quote(f"{datetime.fromisoformat(str(deep[0])).isoformat()}|{deep[1]}")
        snapshot, computed = measure(lambda: compute_snapshot(workspace))
        cache = app.state.doorstep.snapshots
        cache._snapshot = snapshot  # the background thread's result, computed here in the open
        pages: list[tuple[str, str, str]] = [
            ("static baseline", "/healthz", "admin"),
            ("dashboard", "/dashboard", "admin"),
            ("all leads, first page", "/leads", "admin"),
            ("leads of one status", "/leads?status=routed", "admin"),
            ("leads sorted by warmth, highest first", "/leads?sort=warmth&desc=true", "admin"),
            ("leads sorted by last change, page 100", "/leads?sort=updated&offset=4950",
             "admin"),
            ("leads of one owner by fit", "/leads?owner=r7&sort=fit", "admin"),
            ("leads of one partner, failed warmth, by due",
             "/leads?partner=p3&gate=warmth&sort=due", "admin"),
            ("leads searched by account name", "/leads?q=company%2012345", "admin"),
            ("leads searched by partner name, by warmth", "/leads?q=partner%203&sort=warmth",
             "admin"),
            ("leads of one status, page 200", "/leads?status=routed&offset=9950", "admin"),
            ("one lead with history", f"/leads/{any_lead}", "admin"),
            ("a partner's portal (staff view)", "/partners/p3", "partner_manager"),
            ("rep queue", "/queue", "rep"),
            ("partner portal", "/portal", "partner"),
            ("partner portal, halfway (by key)", f"/portal?before={cursor}", "partner"),
            ("settings", "/settings", "admin"),
            ("API: leads (staff)", "/api/leads", "admin"),
            ("API: leads (rep)", "/api/leads", "rep"),
            ("API: leads (partner)", "/api/leads", "partner"),
            ("API: one lead (partner)", f"/api/leads/{own_lead}", "partner"),
            ("API: overlaps (partner)", "/api/overlaps", "partner"),
            ("API: warmth checks (partner)", "/api/warmth-checks", "partner"),
            ("API: scorecard (partner)", "/api/partners/p3/scorecard", "partner"),
            ("API: report (staff)", "/api/report", "admin"),
        ]
        measured: dict[str, list[float]] = {}
        with TestClient(app) as client:
            for label, path, role in pages:
                measured[label] = timings(client, path, tokens[role], args.runs)
            with store.engine.begin() as conn:
                for name in WEB_INDEXES:
                    conn.execute(text(f"DROP INDEX {name}"))
                conn.exec_driver_sql("ANALYZE")
            unindexed: dict[str, list[float]] = {}
            for label, path, role in pages:
                runs = max(3, args.runs // 10)
                unindexed[label] = timings(client, path, tokens[role], runs)
        static = statistics.median(measured["static baseline"])
        table = Table(
            title=f"Web pages at {counts['leads']:,} leads (SQLite, in-process TestClient, "
                  f"{args.runs} runs each)",
            title_justify="left",
        )
        for col in ("page", "role", "median ms", "p95 ms", "x static", "no web indexes ms",
                    "index speed-up", "< 100 ms"):
            table.add_column(col, justify="left" if col in ("page", "role") else "right")
        for label, _path, role in pages:
            median = statistics.median(measured[label])
            bare = statistics.median(unindexed[label])
            table.add_row(
                label, role, f"{median:,.1f}", f"{p95(measured[label]):,.1f}",
                f"{median / static:,.1f}x", f"{bare:,.1f}", f"{bare / median:,.1f}x",
                "yes" if p95(measured[label]) < 100 else "[red]NO[/]",
            )
        console.print(table)
        console.print(
            f"The dashboard's snapshot (measure report, scorecards, overlap matrix) is computed in "
            f"a background thread, not per request: {computed.seconds:,.1f} s and "
            f"{computed.peak_rss / 2**30:,.2f} GiB peak RSS at this size; pages serve the last "
            "one and recompute it after 5 minutes or a change made through the app."
        )
    finally:
        if args.keep:
            console.print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
