"""Qualify speed and memory: 100k candidate accounts through the four gates, on SQLite.

Generates accounts, partner accounts, overlaps, reps and partner answers straight into a
store, then times `qualify_leads` (first run: every lead new; re-run: nothing changed; a
third run after 1% new partner answers). Baseline, in the same process on a copy of the same
store: a naive implementation that walks the accounts one by one through the ORM (a few
queries per account, one object per lead and event), using the same pure gate functions, so
the difference is the data access alone.

    .venv/bin/python benchmarks/qualify_speed.py [--accounts 100000] [--baseline-accounts N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from _measure import Measured, machine, measure
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.config import Config, IcpConfig
from doorstep.qualify import qualify_leads
from doorstep.qualify.fit import AccountFacts, icp_rules
from doorstep.qualify.gates import (
    GateResult,
    fit_verdict,
    lead_verdict,
    overlap_verdict,
    path_rank,
    warmth_verdict,
)
from doorstep.qualify.motion import RepFacts, motion_rules, resolve_motion, routing_input
from doorstep.qualify.warmth import PartnerPath, TrackRecord, warmth_score
from doorstep.store import Store, open_store
from doorstep.store.bulk import bulk_write, table_of
from doorstep.store.models import (
    Account,
    Lead,
    LeadEvent,
    Overlap,
    Partner,
    PartnerAccount,
    Rep,
    WarmthAnswer,
)
from doorstep.workspace import Workspace

console = Console(width=120)
T = TypeVar("T")
NOW = datetime(2026, 11, 1)
PARTNERS = 10
INDUSTRIES = ("software", "fintech", "retail", "logistics")
COUNTRIES = ("US", "GB", "DE", "FR", "NL")
RELATIONSHIPS = ("customer", "opportunity", "prospect")
ANSWERS = ("strong", "some", "none")


def generate(store: Store, accounts: int, seed: int = 7) -> int:
    """Fill the store: `accounts` accounts, each shared by 1-3 partners; returns the overlaps."""
    rng = random.Random(seed)
    reps = [
        {
            "rep_id": f"r{i}",
            "name": f"Rep {i}",
            "email": f"rep{i}@example.com",
            "territory": f"T{i % 6}",
            "capacity": 400,
            "active": i % 10 != 0,
            "attributes": None,
            "row_hash": "x",
        }
        for i in range(500)
    ]
    account_rows, partner_rows, overlap_rows, answer_rows = [], [], [], []
    for i in range(accounts):
        account_rows.append(
            {
                "account_id": f"a{i}",
                "name": f"Company {i}",
                "website": f"company{i}.com",
                "country": COUNTRIES[i % 5],
                "industry": INDUSTRIES[i % 4],
                "employees": None if i % 17 == 0 else 10 + (i * 7919) % 8000,
                "annual_revenue": (i % 1000) * 100_000.0,
                "owner_id": f"r{i % 500}" if i % 3 else None,
                "territory": f"T{i % 6}",
                "is_customer": i % 13 == 0,
                "attributes": None,
                "row_hash": "x",
            }
        )
        for p in rng.sample(range(PARTNERS), rng.choice((1, 1, 2, 3))):
            key = {"partner_id": f"p{p}", "partner_account_id": f"x{p}-{i}"}
            relationship = RELATIONSHIPS[rng.randrange(3)]
            partner_rows.append(
                {
                    **key,
                    "name": f"COMPANY {i}",
                    "relationship": relationship,
                    "website": None,
                    "country": None,
                    "partner_owner_email": f"owner{i % 50}@p{p}.example" if i % 4 else None,
                    "last_activity_at": NOW - timedelta(days=rng.randrange(400)),
                    "relationship_strength": rng.randint(1, 5),
                    "contacts_engaged": rng.randrange(8),
                    "customer_since": None,
                    "attributes": None,
                    "row_hash": "x",
                }
            )
            overlap_rows.append(
                {
                    "account_id": f"a{i}",
                    **key,
                    "relationship": relationship,
                    "method": "domain",
                    "probability": 0.99,
                    "evidence": None,
                    "mapped_at": NOW,
                }
            )
            if rng.random() < 0.3:
                answer_rows.append(
                    {
                        **key,
                        "answered_at": NOW - timedelta(days=rng.randrange(60)),
                        "answer": rng.choice(ANSWERS),
                        "note": None,
                        "answered_by": None,
                        "attributes": None,
                        "row_hash": "x",
                    }
                )
    partners = [
        {"partner_id": f"p{p}", "name": f"Partner {p}", "attributes": None, "row_hash": "x"}
        for p in range(PARTNERS)
    ]
    with store.engine.begin() as conn:
        for model, rows in (
            (Rep, reps),
            (Partner, partners),
            (Account, account_rows),
            (PartnerAccount, partner_rows),
            (Overlap, overlap_rows),
            (WarmthAnswer, answer_rows),
        ):
            bulk_write(conn, table_of(model), rows)
    return len(overlap_rows)


def add_answers(store: Store, share: float, seed: int = 11) -> int:
    """Partners answer `share` of the still unanswered partner accounts; returns how many."""
    rng = random.Random(seed)
    with store.engine.begin() as conn:
        answered = {
            tuple(r)
            for r in conn.execute(select(WarmthAnswer.partner_id, WarmthAnswer.partner_account_id))
        }
        keys = [
            tuple(k)
            for k in conn.execute(select(Overlap.partner_id, Overlap.partner_account_id))
            if tuple(k) not in answered
        ]
        chosen = rng.sample(keys, int(len(keys) * share))
        rows = [
            {
                "partner_id": pid,
                "partner_account_id": paid,
                "answered_at": NOW,
                "answer": rng.choice(ANSWERS),
                "note": None,
                "answered_by": None,
                "attributes": None,
                "row_hash": "x",
            }
            for pid, paid in chosen
        ]
        bulk_write(conn, table_of(WarmthAnswer), rows)
    return len(rows)


def naive_qualify(store: Store, config: Config, now: datetime, limit: int | None) -> int:
    """Baseline: one account at a time through the ORM, a few queries each, same gates."""
    rules = icp_rules(config.icp)
    with Session(store.engine) as s:
        reps = {
            r.rep_id: RepFacts(r.rep_id, territory=r.territory, capacity=r.capacity,
                               active=r.active)
            for r in s.scalars(select(Rep))
        }
        rules_of_motion = motion_rules(config)
        loads: Counter[str] = Counter()
        records: dict[str, TrackRecord] = {}
        ids = s.scalars(select(Overlap.account_id).distinct().order_by(Overlap.account_id))
        account_ids = list(ids)[:limit]
        leads = 0
        for account_id in account_ids:
            a = s.get_one(Account, account_id)
            if a.is_customer:
                continue
            leads += 1
            account = AccountFacts(
                a.account_id, a.name, a.country, a.industry, a.employees, a.annual_revenue,
                a.owner_id, a.territory, a.is_customer,
            )  # fmt: skip
            overlaps = s.scalars(select(Overlap).where(Overlap.account_id == account_id)).all()
            scored = []
            for o in overlaps:
                pa = s.get_one(PartnerAccount, (o.partner_id, o.partner_account_id))
                latest = s.scalars(
                    select(WarmthAnswer)
                    .where(
                        WarmthAnswer.partner_id == o.partner_id,
                        WarmthAnswer.partner_account_id == o.partner_account_id,
                    )
                    .order_by(WarmthAnswer.answered_at.desc())
                    .limit(1)
                ).first()
                if o.partner_id not in records:  # once per partner, so not a strawman
                    total, positive = s.execute(
                        select(
                            func.count(),
                            func.count().filter(WarmthAnswer.answer.in_(("strong", "some"))),
                        ).where(WarmthAnswer.partner_id == o.partner_id)
                    ).one()
                    records[o.partner_id] = TrackRecord(positive, total)
                path = PartnerPath(
                    o.partner_id, o.partner_account_id, o.relationship, pa.name,
                    pa.partner_owner_email, pa.last_activity_at, pa.relationship_strength,
                    pa.contacts_engaged, latest.answer if latest else None,
                    latest.answered_at if latest else None,
                )  # fmt: skip
                score = warmth_score(
                    path,
                    now=now,
                    max_activity_age_days=config.warmth.max_activity_age_days,
                    partners_on_account=len({x.partner_id for x in overlaps}),
                    track_record=records[o.partner_id],
                )
                scored.append((path, score))
            scored.sort(key=lambda ps: path_rank(ps[0], ps[1].total, config.warmth))
            path, best = scored[0]
            warmth = warmth_verdict(path, best, config.warmth)
            overlap = overlap_verdict(account, [p for p, _ in scored], include_customers=False)
            fit = fit_verdict(account, rules)
            facts = routing_input(
                account, path, {}, warmth_score=best.total, fit_score=None
            ).facts()
            routed = resolve_motion(facts, reps, rules_of_motion, loads, now=now)
            motion = GateResult("motion", routed.resolved, routed.reason,
                                {"owner_id": routed.owner_id, "action": routed.action})
            verdict = lead_verdict((overlap, warmth, fit, motion))
            if verdict.status == "eql":
                loads[str(routed.owner_id)] += 1
            lead_id = f"N-{account_id}"
            if s.get(Lead, lead_id) is None:
                s.add(
                    Lead(
                        lead_id=lead_id, account_id=account_id, status=verdict.status,
                        partner_id=path.partner_id, partner_account_id=path.partner_account_id,
                        failed_gates=verdict.failed_gates, reason=verdict.reason,
                        gates={r.gate: r.as_json() for r in (overlap, warmth, fit, motion)},
                        warmth_score=warmth.detail["score"], fit_score=fit.detail["fit_score"],
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
                s.add(
                    LeadEvent(
                        lead_id=lead_id, kind="created", to_status=verdict.status, actor="naive",
                        at=now,
                    )
                )  # fmt: skip
        s.commit()
    return leads


def timed(work: Callable[[], T]) -> tuple[T, tuple[Measured, float]]:
    """`measure`, plus the CPU seconds the process spent (steadier on a busy machine)."""
    cpu = time.process_time()
    result, measured = measure(work)
    return result, (measured, time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--baseline-accounts",
        type=int,
        default=None,
        help="run the naive baseline on only this many accounts (default: all)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="doorstep-bench-qualify-"))
    try:
        config = Config(
            icp=IcpConfig(
                industries=["software", "fintech", "logistics"], countries=["US", "GB", "DE"]
            )
        )
        store = open_store(f"sqlite:///{root / 'doorstep.db'}")
        with console.status("generating accounts, partner accounts and overlaps"):
            overlaps = generate(store, args.accounts)
        store.engine.dispose()
        shutil.copy(root / "doorstep.db", root / "naive.db")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        console.print(f"{machine()}; load average {load} when the runs started")

        workspace = Workspace(root, config, store)
        first_report, first = timed(lambda: qualify_leads(workspace, now=NOW))
        again_report, again = timed(lambda: qualify_leads(workspace, now=NOW))
        answers = add_answers(store, 0.01)
        third_report, third = timed(lambda: qualify_leads(workspace, now=NOW))
        assert again_report.changed == again_report.created == again_report.events == 0

        naive_store = open_store(f"sqlite:///{root / 'naive.db'}")
        naive_leads, base = timed(
            lambda: naive_qualify(naive_store, config, NOW, args.baseline_accounts)
        )
        base_rate = naive_leads / base[0].seconds

        table = Table(
            title=f"Qualify of {args.accounts:,} accounts, {overlaps:,} overlaps (SQLite)",
            title_justify="left",
        )
        for col in ("run", "leads", "seconds", "CPU s", "leads/s", "peak RSS", "vs baseline"):
            table.add_column(col, justify="right" if col != "run" else "left")

        def row(label: str, n: int, run: tuple[Measured, float]) -> None:
            m, cpu = run
            rate = n / m.seconds
            table.add_row(
                label,
                f"{n:,}",
                f"{m.seconds:,.2f}",
                f"{cpu:,.2f}",
                f"{rate:,.0f}",
                f"{m.peak_rss / 2**30:,.2f} GiB",
                f"{rate / base_rate:,.1f}x",
            )

        row("baseline: row by row through the ORM", naive_leads, base)
        row("qualify, first run", first_report.leads, first)
        row("qualify, re-run (nothing changed)", again_report.leads, again)
        row(f"qualify after {answers:,} new answers", third_report.leads, third)
        console.print(table)
        console.print(
            f"first run: {first_report.by_status}, {first_report.events:,} events, "
            f"{first_report.warmth_requests:,} warmth requests; after the new answers: "
            f"{third_report.changed:,} leads rewritten (partners' track records moved their "
            f"scores), {third_report.events:,} moved (events)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
