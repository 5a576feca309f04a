"""Mapping speed: 1M of our accounts against 10 partners x 200k accounts, beside Splink alone.

    .venv/bin/python benchmarks/mapping_speed.py [--accounts 1000000] [--partners 10]
                                                 [--partner-accounts 200000] [--no-splink]

Both runs use the same generated world (doorstep's demo generator, with its truth) in the same
process. The Splink-only run normalises the same way, blocks on exact name, exact domain and
first name word + country, and trains without labels (u by random sampling, m by EM).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from _measure import machine, measure
from rich.console import Console
from rich.table import Table

from doorstep.demo_world import generate_world
from doorstep.map import find_overlaps
from doorstep.map.canonical import country_keys, name_keys, website_keys

console = Console()
Pair = tuple[str, str, str]


def _read(path: Path) -> pa.Table:
    header = path.open(encoding="utf-8").readline().strip().split(",")
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in header}, strings_can_be_null=True))


def _keys(records: pd.DataFrame) -> pd.DataFrame:
    names = name_keys(records["name"]).to_pandas().set_index("name")["name_key"]
    sites = website_keys(records["website"]).to_pandas().set_index("website")
    countries = country_keys(records["country"]).to_pandas().set_index("country")
    out = pd.DataFrame({"name_key": records["name"].map(names).fillna("")})
    domain = records["website"].map(sites["domain"])
    flagged = records["website"].map(sites["non_identifying"]).notna()
    out["domain"] = domain.where(~flagged & domain.notna(), None)
    code = records["country"].map(countries["country_code"])
    out["country_code"] = code.where(code.notna(), None)
    out["first_token"] = out["name_key"].str.split().str[0].fillna("")
    return out


def splink_only(ours: pa.Table, theirs: pa.Table, threshold: float = 0.9) -> set[Pair]:
    """Splink 5 on DuckDB alone, trained without labels."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    left = ours.to_pandas().astype(object).where(lambda d: d.notna(), None)
    right = theirs.to_pandas().astype(object).where(lambda d: d.notna(), None)
    lk = _keys(left)
    lk.insert(0, "unique_id", left["account_id"])
    rk = _keys(right)
    rk.insert(0, "unique_id", right["partner_id"] + "\x1f" + right["partner_account_id"])
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("name_key", [0.95, 0.88]).configure(
                term_frequency_adjustments=True),
            cl.ExactMatch("domain"),
            cl.ExactMatch("country_code"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name_key"), block_on("domain"), block_on("first_token", "country_code"),
        ],
    )
    linker = Linker([db.register(lk, dataset_display_name="ours"),
                     db.register(rk, dataset_display_name="theirs")],
                    settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name_key", "country_code"), block_on("domain")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("domain"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_key"))
    found = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
    ours_left = found["source_dataset_l"] == "ours"
    acc = found["unique_id_l"].where(ours_left, found["unique_id_r"])
    other = found["unique_id_r"].where(ours_left, found["unique_id_l"])
    return {(a, *o.split("\x1f", 1)) for a, o in zip(acc, other, strict=True)}  # type: ignore[misc]


def _prf(found: set[Pair], truth: set[Pair]) -> tuple[float, float]:
    tp = len(found & truth)
    return (tp / len(found) if found else 1.0), (tp / len(truth) if truth else 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument("--partner-accounts", type=int, default=200_000)
    parser.add_argument("--no-splink", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with console.status("generating the world"):
            generate_world(root, accounts=args.accounts, partners=args.partners,
                           partner_accounts=args.partner_accounts, seed=5,
                           today=date(2026, 11, 1), bad_rows=False)
        ours = _read(root / "data" / "accounts.csv").select(
            ["account_id", "name", "website", "country"])
        theirs = _read(root / "data" / "partner_accounts.csv").select(
            ["partner_id", "partner_account_id", "name", "website", "country", "relationship"])
        truth_t = _read(root / "truth" / "overlaps.csv")
    truth = set(zip(*(truth_t[c].to_pylist() for c in
                      ("account_id", "partner_id", "partner_account_id")), strict=True))
    theirs = theirs.append_column("shared_account_id", pa.nulls(theirs.num_rows, pa.string()))
    records = ours.num_rows + theirs.num_rows
    console.print(f"{machine()}\n{ours.num_rows:,} accounts x {theirs.num_rows:,} partner "
                  f"accounts ({args.partners} partners), {len(truth):,} true overlaps")

    phases: list[tuple[str, float]] = []
    start = time.perf_counter()
    result, doorstep = measure(lambda: find_overlaps(
        ours, theirs, threshold=0.9,
        progress=lambda step: phases.append((step, time.perf_counter() - start))))
    phases.append(("done", doorstep.seconds))
    found = {(r["account_id"], r["partner_id"], r["partner_account_id"])
             for r in result.select(["account_id", "partner_id", "partner_account_id"])
             .to_pylist()}

    table = Table(title="Mapping speed", title_justify="left")
    columns = ("run", "wall s", "records/s", "peak RSS", "precision", "recall", "vs doorstep")
    for col in columns:
        table.add_column(col, justify="left" if col == "run" else "right")
    p, r = _prf(found, truth)
    console.print(f"doorstep: {doorstep.seconds:,.0f} s, peak {doorstep.peak_rss / 2**30:.1f} GiB, "
                  f"precision {p:.4f}, recall {r:.4f}; phases: "
                  + ", ".join(f"{step} at {t:,.0f} s" for step, t in phases))
    table.add_row("doorstep map (exact tiers + match_names)", f"{doorstep.seconds:,.0f}",
                  f"{records / doorstep.seconds:,.0f}", f"{doorstep.peak_rss / 2**30:.1f} GiB",
                  f"{p:.4f}", f"{r:.4f}", "1.00x")
    if not args.no_splink:
        pairs, spl = measure(lambda: splink_only(ours, theirs))
        p, r = _prf(pairs, truth)
        table.add_row("Splink 5 alone (DuckDB, EM)", f"{spl.seconds:,.0f}",
                      f"{records / spl.seconds:,.0f}", f"{spl.peak_rss / 2**30:.1f} GiB",
                      f"{p:.4f}", f"{r:.4f}", f"{spl.seconds / doorstep.seconds:.2f}x")
    console.print(table)
    where = Table(title="Where doorstep's time goes", title_justify="left")
    where.add_column("phase")
    where.add_column("seconds", justify="right")
    for (step, t0), (_, t1) in zip(phases, phases[1:], strict=False):
        where.add_row(step, f"{t1 - t0:,.1f}")
    console.print(where)


if __name__ == "__main__":
    main()
