"""Mapping accuracy on the demo world's truth, beside two baselines, per tier and overall.

    .venv/bin/python benchmarks/mapping_accuracy.py [--accounts 5000] [--partners 4] [--seed 7]

Baselines, run on the same data in the same process: exact registrable domain only (the
normaliser doorstep uses, non-identifying sites excluded), the exact canonical keys the private
sync intersects (what private mode finds without seeing the other list), and name similarity
only (rapidfuzz WRatio >= 88 on normalised names, best match per partner record).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from rapidfuzz import fuzz, process
from rich.console import Console
from rich.table import Table

from doorstep.demo_world import generate_world
from doorstep.map import find_overlaps
from doorstep.map.normalize import normalise_name, registrable_domain
from doorstep.share.private import account_keys

console = Console()
Pair = tuple[str, str, str]


def _read(path: Path) -> pa.Table:
    names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 26)).column_names
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=True))


def scores(found: set[Pair], truth: set[Pair]) -> tuple[float, float, float]:
    """Precision, recall and F1 of `found` against `truth`."""
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def domain_only(ours: pa.Table, theirs: pa.Table) -> set[Pair]:
    """Baseline: pairs whose websites share a registrable domain."""
    by_domain: dict[str, list[str]] = {}
    for account_id, website in zip(ours["account_id"].to_pylist(), ours["website"].to_pylist(),
                                   strict=True):
        d = registrable_domain(website)
        if d:
            by_domain.setdefault(d, []).append(account_id)
    found: set[Pair] = set()
    for pid, paid, website in zip(theirs["partner_id"].to_pylist(),
                                  theirs["partner_account_id"].to_pylist(),
                                  theirs["website"].to_pylist(), strict=True):
        for account_id in by_domain.get(registrable_domain(website) or "", []):
            found.add((account_id, pid, paid))
    return found


def private_keys_only(ours: pa.Table, theirs: pa.Table) -> set[Pair]:
    """What the private sync can find: pairs sharing an exact canonical key (registrable
    domain, or normalised name with country); no fuzzy names, no website spellings."""
    mine = account_keys(zip(ours["account_id"].to_pylist(), ours["name"].to_pylist(),
                            ours["website"].to_pylist(), ours["country"].to_pylist(),
                            strict=True))
    by_key: dict[str, list[str]] = {}
    for account_id, keys in mine.items():
        for key in keys:
            by_key.setdefault(key, []).append(account_id)
    ids = [f"{p}\x00{a}" for p, a in zip(theirs["partner_id"].to_pylist(),
                                          theirs["partner_account_id"].to_pylist(), strict=True)]
    other = account_keys(zip(ids, theirs["name"].to_pylist(), theirs["website"].to_pylist(),
                             theirs["country"].to_pylist(), strict=True))
    found: set[Pair] = set()
    for record, keys in other.items():
        pid, paid = record.split("\x00")
        for key in keys:
            for account_id in by_key.get(key, []):
                found.add((account_id, pid, paid))
    return found


def names_only(ours: pa.Table, theirs: pa.Table, cutoff: float = 88) -> set[Pair]:
    """Baseline: best rapidfuzz WRatio match on normalised names, at or above `cutoff`."""
    our_ids = ours["account_id"].to_pylist()
    our_names = [normalise_name(n) for n in ours["name"].to_pylist()]
    found: set[Pair] = set()
    for pid, paid, name in zip(theirs["partner_id"].to_pylist(),
                               theirs["partner_account_id"].to_pylist(),
                               theirs["name"].to_pylist(), strict=True):
        best = process.extractOne(normalise_name(name), our_names, scorer=fuzz.WRatio,
                                  score_cutoff=cutoff)
        if best:
            found.add((our_ids[best[2]], pid, paid))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--partners", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-names-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_world(root, accounts=args.accounts, partners=args.partners, seed=args.seed,
                       today=date(2026, 11, 1), bad_rows=False)
        ours = _read(root / "data" / "accounts.csv")
        theirs = _read(root / "data" / "partner_accounts.csv")
        truth_table = _read(root / "truth" / "overlaps.csv")
    truth = set(zip(*(truth_table[c].to_pylist() for c in
                      ("account_id", "partner_id", "partner_account_id")), strict=True))
    console.print(f"Demo world: {ours.num_rows:,} accounts, {theirs.num_rows:,} partner "
                  f"accounts, {len(truth):,} true overlaps (seed {args.seed}).")

    start = time.perf_counter()
    result = find_overlaps(ours, theirs.append_column(
        "shared_account_id", pa.nulls(theirs.num_rows, pa.string())), threshold=0.9)
    doorstep_seconds = time.perf_counter() - start
    rows = result.to_pylist()
    found = {(r["account_id"], r["partner_id"], r["partner_account_id"]) for r in rows}

    table = Table(title="Mapping accuracy on the demo world", title_justify="left")
    for col in ("run", "pairs", "precision", "recall", "F1", "seconds"):
        table.add_column(col, justify="left" if col == "run" else "right")
    methods = sorted({r["method"] for r in rows})
    for method in methods:
        part = {(r["account_id"], r["partner_id"], r["partner_account_id"])
                for r in rows if r["method"] == method}
        p, r, _ = scores(part, truth)
        table.add_row(f"  doorstep tier: {method}", f"{len(part):,}", f"{p:.4f}",
                      f"{r:.4f} (share)", "", "")
    p, r, f = scores(found, truth)
    table.add_row("[bold]doorstep, all tiers[/]", f"{len(found):,}", f"{p:.4f}", f"{r:.4f}",
                  f"{f:.4f}", f"{doorstep_seconds:.1f}", end_section=True)
    start = time.perf_counter()
    base = domain_only(ours, theirs)
    p, r, f = scores(base, truth)
    table.add_row("baseline: exact domain only", f"{len(base):,}", f"{p:.4f}", f"{r:.4f}",
                  f"{f:.4f}", f"{time.perf_counter() - start:.1f}")
    start = time.perf_counter()
    base = private_keys_only(ours, theirs)
    p, r, f = scores(base, truth)
    table.add_row("private sync (exact canonical keys)", f"{len(base):,}", f"{p:.4f}",
                  f"{r:.4f}", f"{f:.4f}", f"{time.perf_counter() - start:.1f}")
    if not args.skip_names_baseline:
        start = time.perf_counter()
        base = names_only(ours, theirs)
        p, r, f = scores(base, truth)
        table.add_row("baseline: rapidfuzz WRatio >= 88", f"{len(base):,}", f"{p:.4f}",
                      f"{r:.4f}", f"{f:.4f}", f"{time.perf_counter() - start:.1f}")
    console.print(table)
    missed = truth - found
    wrong = found - truth
    console.print(f"missed {len(missed):,} true pairs, {len(wrong):,} false matches")


if __name__ == "__main__":
    main()
