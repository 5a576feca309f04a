"""Names-only account mapping on real names: S&P 500 common names against the SEC's list.

Our accounts are the S&P 500 `Security` names (id: CIK), the partner list is the SEC's
company_tickers.json (`title`, id: `cik_str`); nobody on the team wrote either. A predicted
pair is correct when the SEC record's CIK is the S&P row's CIK; a match to any other CIK is
false, even when it is the same company under an old CIK. The SEC file holds one title per
CIK (10,077 tickers, 7,854 CIKs), so the partner list is deduplicated to one record per CIK and
"Alphabet (Class A)" and "(Class C)" matching "Alphabet Inc." are two correct pairs.

    .venv/bin/python benchmarks/sp500_names.py                # the S&P 500 / SEC table
    .venv/bin/python benchmarks/sp500_names.py --errors       # and every remaining error
    .venv/bin/python benchmarks/sp500_names.py --generated    # also the synthetic demo world
    .venv/bin/python benchmarks/sp500_names.py --scale 200000 # also time 200k x 200k names
    .venv/bin/python benchmarks/sp500_names.py --members      # the S&P 600 list instead
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from cleanco import basename
from rapidfuzz import fuzz, process, utils
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import machine, measure  # noqa: E402

from doorstep.map.matcher import match_names  # noqa: E402
from doorstep.map.normalize import identifying_domain, normalise_name  # noqa: E402

# sp500_constituents.csv and sec_company_tickers.json; by default beside the repository.
DATA = Path(os.environ.get("DOORSTEP_REFERENCE_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
THRESHOLD = 0.9
console = Console(width=max(Console().width, 140))


@dataclass
class Score:
    """Precision, recall and F1 of one method's predicted pairs."""

    method: str
    predicted: int
    correct: int
    positives: int
    seconds: float

    @property
    def precision(self) -> float:
        """Return correct / predicted."""
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Return correct / true pairs."""
        return self.correct / self.positives if self.positives else 0.0

    @property
    def f1(self) -> float:
        """Return the harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


# --------------------------------------------------------------------------- data


def load(members: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (ours, partner): S&P rows with their CIK, and one SEC record per CIK.

    With `members`, ours are instead the US index members of `data/us_index_members.csv`
    (the S&P 600's small caps, mostly, as Wikipedia names them; none is in the S&P 500), each
    with the CIK the SEC gives its ticker; members whose ticker the SEC does not list are left
    out.
    """
    raw = json.loads((DATA / "sec_company_tickers.json").read_text())
    sec = pd.DataFrame(list(raw.values()))
    if members:
        listed = pd.read_csv(Path(__file__).resolve().parent / "data" / "us_index_members.csv",
                             keep_default_na=False)
        cik_of = dict(zip(sec["ticker"].str.upper(), sec["cik_str"].astype(int), strict=True))
        listed = listed[listed["symbol"].isin(cik_of)].reset_index(drop=True)
        ours = pd.DataFrame({"id": [str(i) for i in range(len(listed))], "name": listed["name"],
                             "cik": [cik_of[t] for t in listed["symbol"]]})
    else:
        sp = pd.read_csv(DATA / "sp500_constituents.csv")
        ours = pd.DataFrame({"id": [str(i) for i in range(len(sp))], "name": sp["Security"],
                             "cik": sp["CIK"].astype(int)})
    titles_per_cik = sec.groupby("cik_str")["title"].nunique()
    assert titles_per_cik.max() == 1, "a CIK with several titles: count any title as correct"
    sec = sec.drop_duplicates("cik_str").reset_index(drop=True)
    partner = pd.DataFrame({"id": sec["cik_str"].astype(str), "name": sec["title"],
                            "cik": sec["cik_str"].astype(int)})
    return ours, partner


Pairs = set[tuple[str, int]]  # (S&P row id, predicted CIK)


def score(method: str, pairs: Pairs, ours: pd.DataFrame, partner: pd.DataFrame,
          seconds: float) -> Score:
    """Score predicted (row, CIK) pairs against the truth (same CIK)."""
    cik = dict(zip(ours["id"], ours["cik"], strict=True))
    known = set(partner["cik"])
    positives = int(ours["cik"].isin(known).sum())
    correct = sum(1 for row, c in pairs if cik[row] == c)
    return Score(method, len(pairs), correct, positives, seconds)


def timed(fn: Callable[[], Pairs]) -> tuple[Pairs, float]:
    """Run fn and return its result and wall time."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# --------------------------------------------------------------------------- methods


def exact_cleanco(ours: pd.DataFrame, partner: pd.DataFrame) -> Pairs:
    """Pairs whose names are equal after cleanco's basename and lower-casing."""
    index: dict[str, list[int]] = {}
    for name, cik in zip(partner["name"], partner["cik"], strict=True):
        index.setdefault(basename(name).lower().strip(), []).append(cik)
    return {(row, c) for row, name in zip(ours["id"], ours["name"], strict=True)
            for c in index.get(basename(name).lower().strip(), [])}


def exact_normalised(ours: pd.DataFrame, partner: pd.DataFrame) -> Pairs:
    """Pairs whose names are equal after doorstep's `normalise_name` (the exact name tier)."""
    index: dict[str, list[int]] = {}
    for name, cik in zip(partner["name"], partner["cik"], strict=True):
        index.setdefault(normalise_name(name), []).append(cik)
    return {(row, c) for row, name in zip(ours["id"], ours["name"], strict=True)
            for c in index.get(normalise_name(name), []) if normalise_name(name)}


def wratio(ours: pd.DataFrame, partner: pd.DataFrame, cutoff: float = 88.0) -> Pairs:
    """Each S&P name's best SEC title by rapidfuzz WRatio on cleanco-cleaned names, if >= cutoff."""
    left = [utils.default_process(basename(n)) for n in ours["name"]]
    right = [utils.default_process(basename(n)) for n in partner["name"]]
    scores = process.cdist(left, right, scorer=fuzz.WRatio, workers=-1)
    best = scores.argmax(axis=1)
    ciks = partner["cik"].to_numpy()
    return {(row, int(ciks[j])) for row, j, s in
            zip(ours["id"], best, scores[np.arange(len(left)), best], strict=True)
            if s >= cutoff}


def splink_em(ours: pd.DataFrame, partner: pd.DataFrame, threshold: float = THRESHOLD) -> Pairs:
    """Plain Splink 5: names compared exactly (TF-adjusted) and by shared words, trained by EM."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    def prepare(df: pd.DataFrame) -> pd.DataFrame:
        keys = [normalise_name(n) for n in df["name"]]
        return pd.DataFrame({"unique_id": df["id"], "name_key": keys,
                             "tokens": [k.split() for k in keys],
                             "first_token": [k.split()[0] if k else "" for k in keys]})

    db = DuckDBAPI()
    left = db.register(prepare(ours), dataset_display_name="sp500")
    right = db.register(prepare(partner), dataset_display_name="sec")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.ExactMatch("name_key").configure(term_frequency_adjustments=True),
            cl.ArrayIntersectAtSizes("tokens", [3, 2, 1]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_token"),
            block_on("tokens", arrays_to_explode=["tokens"]),
        ],
    )
    linker = Linker([left, right], settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name_key")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_token"), record_sample_proportion=1.0)
    found = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
    found = found.sort_values("match_probability", ascending=False)
    sp_side = found["source_dataset_l"] == "sp500"
    rows = np.where(sp_side, found["unique_id_l"], found["unique_id_r"])
    ciks = np.where(sp_side, found["unique_id_r"], found["unique_id_l"])
    best = pd.DataFrame({"row": rows, "cik": ciks}).drop_duplicates("row")
    return {(str(r), int(c)) for r, c in zip(best["row"], best["cik"], strict=True)}


def doorstep_names(ours: pd.DataFrame, partner: pd.DataFrame,
                   threshold: float = THRESHOLD) -> tuple[Pairs, pd.DataFrame]:
    """doorstep.map.matcher.match_names on names only; also return its raw output (all p)."""
    out = match_names(ours[["id", "name"]], partner[["id", "name"]], threshold=0.05)
    found = out.to_pandas()
    chosen = found[found["probability"] >= threshold]
    pairs = {(r, int(c)) for r, c in zip(chosen["left_id"], chosen["right_id"], strict=True)}
    return pairs, found


# --------------------------------------------------------------------------- reports


def print_scores(title: str, scores: list[Score]) -> None:
    """Print scores side by side as a rich table."""
    table = Table(title=title)
    for col in ("method", "predicted", "correct", "precision", "recall", "F1", "seconds"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for s in scores:
        table.add_row(s.method, f"{s.predicted:,}", f"{s.correct:,}", f"{s.precision:.4f}",
                      f"{s.recall:.4f}", f"{s.f1:.4f}", f"{s.seconds:.1f}")
    console.print(table)


def print_calibration(found: pd.DataFrame, ours: pd.DataFrame) -> None:
    """Print observed precision per probability band (does p mean what it says?)."""
    cik = dict(zip(ours["id"], ours["cik"], strict=True))
    ok = np.array([cik[r] == int(c) for r, c in zip(found["left_id"], found["right_id"],
                                                     strict=True)])
    table = Table(title="match_names calibration: pairs and observed precision per band")
    for col in ("probability", "pairs", "correct", "observed precision", "mean p"):
        table.add_column(col, justify="right")
    bands = [(0.05, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 0.99), (0.99, 1.01)]
    p = found["probability"].to_numpy()
    for lo, hi in bands:
        sel = (p >= lo) & (p < hi)
        n = int(sel.sum())
        table.add_row(f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}", f"{n}",
                      f"{int(ok[sel].sum())}", f"{ok[sel].mean():.3f}" if n else "-",
                      f"{p[sel].mean():.3f}" if n else "-")
    console.print(table)


def print_errors(found: pd.DataFrame, ours: pd.DataFrame, partner: pd.DataFrame,
                 threshold: float) -> None:
    """Print every false match and every missed pair of match_names, with its best candidate."""
    cik = dict(zip(ours["id"], ours["cik"], strict=True))
    sp_name = dict(zip(ours["id"], ours["name"], strict=True))
    title = dict(zip(partner["cik"], partner["name"], strict=True))
    found = found.assign(cik=found["right_id"].astype(int))
    found["ok"] = [cik[r] == c for r, c in zip(found["left_id"], found["cik"], strict=True)]
    chosen = found[found["probability"] >= threshold]
    table = Table(title=f"match_names errors at p >= {threshold}")
    for col in ("kind", "S&P name", "SEC title (best candidate)", "p", "words", "true title"):
        table.add_column(col)
    for r in chosen[~chosen["ok"]].itertuples():
        ev = json.loads(r.evidence)
        table.add_row("false match", sp_name[r.left_id], title[r.cik], f"{r.probability:.3f}",
                      ev["name"].get("words", ""), title.get(cik[r.left_id], "(not in SEC list)"))
    hit = set(chosen.loc[chosen["ok"], "left_id"])
    for row in ours["id"]:
        if row in hit or cik[row] not in title:
            continue
        cands = found[found["left_id"] == row].sort_values("probability", ascending=False)
        if len(cands):
            best = cands.iloc[0]
            ev = json.loads(best["evidence"])
            table.add_row("missed", sp_name[row], str(title[int(best["cik"])]),
                          f"{best['probability']:.3f}", ev["name"].get("words", ""),
                          title[cik[row]])
        else:
            table.add_row("missed", sp_name[row], "(no candidate above 0.05)", "", "",
                          title[cik[row]])
    console.print(table)


# --------------------------------------------------------------------------- generated data


def generated(accounts: int = 5000, partners: int = 4, seed: int = 11) -> None:
    """Score the demo world's true overlaps: exact tiers, the full mapping stage, match_names."""
    from doorstep.demo_world import generate_world
    from doorstep.map.stage import find_overlaps

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        generate_world(path, accounts=accounts, partners=partners, bad_rows=False, seed=seed)
        acc = pd.read_csv(path / "data/accounts.csv", dtype=str)
        par = pd.read_csv(path / "data/partner_accounts.csv", dtype=str)
        truth = pd.read_csv(path / "truth/overlaps.csv", dtype=str)
    true = set(zip(truth["account_id"], truth["partner_id"] + "|" + truth["partner_account_id"],
                   strict=True))
    scores = []

    def add(method: str, pairs: set[tuple[str, str]], seconds: float) -> None:
        scores.append(Score(method, len(pairs), len(pairs & true), len(true), seconds))

    ours = pa.table({"account_id": acc["account_id"], "name": acc["name"],
                     "website": acc["website"], "country": acc["country"]})
    theirs = pa.table({"partner_id": par["partner_id"],
                       "partner_account_id": par["partner_account_id"], "name": par["name"],
                       "website": par["website"], "country": par["country"],
                       "relationship": par["relationship"],
                       "shared_account_id": pa.nulls(len(par), pa.string())})
    start = time.perf_counter()
    found = find_overlaps(ours, theirs, threshold=THRESHOLD).to_pandas()
    seconds = time.perf_counter() - start
    found["rid"] = found["partner_id"] + "|" + found["partner_account_id"]
    exact = found[found["method"] != "probabilistic"]
    add("stage exact tiers only (domain, name + country)",
        set(zip(exact["account_id"], exact["rid"], strict=True)), seconds)
    add("stage: exact tiers + match_names (as wired today)",
        set(zip(found["account_id"], found["rid"], strict=True)), seconds)
    left = pd.DataFrame({"id": acc["account_id"], "name": acc["name"], "country": acc["country"],
                         "domain": acc["website"].map(identifying_domain)})
    right = pd.DataFrame({"id": par["partner_id"] + "|" + par["partner_account_id"],
                          "name": par["name"], "country": par["country"],
                          "domain": par["website"].map(identifying_domain),
                          "group": par["partner_id"]})
    for method, lcols, rcols in (
        ("match_names alone: name + country + domain", ["id", "name", "country", "domain"],
         ["id", "name", "country", "domain", "group"]),
        ("match_names alone: name + country", ["id", "name", "country"],
         ["id", "name", "country", "group"]),
        ("match_names alone: names only", ["id", "name"], ["id", "name", "group"]),
    ):
        start = time.perf_counter()
        out = match_names(left[lcols], right[rcols], threshold=THRESHOLD).to_pandas()
        add(method, set(zip(out["left_id"], out["right_id"], strict=True)),
            time.perf_counter() - start)
    print_scores(f"Generated demo world: {len(acc):,} accounts, {len(par):,} partner accounts "
                 f"({partners} partners), {len(true):,} true pairs, p >= {THRESHOLD}", scores)


# --------------------------------------------------------------------------- scale


def synthetic(n: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[str, str]]]:
    """Return n left and n right names from random pseudo-words; half the right are ours."""
    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"]
    words = np.array(sorted({"".join(rng.choice(syllables, rng.integers(2, 4)))
                             for _ in range(80_000)}))
    weights = 1 / np.arange(1, len(words) + 1) ** 0.5
    weights /= weights.sum()
    descriptors = np.array("Analytics Software Systems Logistics Freight Health Capital Partners "
                           "Media Foods Energy Labs Retail Consulting Robotics Security Finance "
                           "Insurance Medical Works".split())
    legal = np.array(["", "", "Inc", "Inc.", "LLC", "Ltd", "GmbH", "Corp.", "S.A.", "plc"])

    def names(k: int) -> list[str]:
        first, second = rng.choice(words, k, p=weights), rng.choice(words, k, p=weights)
        two, desc = rng.random(k) < 0.6, rng.random(k) < 0.7
        picked = rng.choice(descriptors, k)
        return [a.title() + (" " + b.title() if t else "") + (" " + c if d else "")
                for a, b, t, c, d in zip(first, second, two, picked, desc, strict=True)]

    # distinct companies have distinct names, as in a real deduplicated list
    pool: dict[str, str] = {}
    while len(pool) < 2 * n:
        for name in names(2 * n):
            pool.setdefault(normalise_name(name), name)
    base = list(pool.values())[: 2 * n]
    ours, others = base[:n], base[n:]
    left = [b + (" " + str(rng.choice(legal)) if rng.random() < 0.5 else "") for b in ours]
    m = n // 2
    shared = rng.choice(n, m, replace=False)
    right = []
    for i in shared:
        s = ours[i]
        r = rng.random()
        if r < 0.05 and len(s) > 6:  # one typo past the first letter
            j = int(rng.integers(1, len(s) - 1))
            s = s[:j] + s[j + 1:]
        elif r < 0.08 and s.count(" ") > 1:  # the descriptor dropped
            s = s.rsplit(" ", 1)[0]
        s += " " + str(rng.choice(legal)) if rng.random() < 0.6 else ""
        right.append(s.upper() if rng.random() < 0.2 else s)
    right += others[: n - m]
    left_df = pd.DataFrame({"id": [f"L{i}" for i in range(n)], "name": left})
    right_df = pd.DataFrame({"id": [f"R{i}" for i in range(n)], "name": right})
    truth = {(f"L{i}", f"R{j}") for j, i in enumerate(shared)}
    return left_df, right_df, truth


def scale(n: int) -> None:
    """Time match_names on n x n synthetic names and print time, memory and quality."""
    left, right, truth = synthetic(n)
    cpu = time.process_time()
    out, m = measure(lambda: match_names(left, right, threshold=THRESHOLD))
    cpu = time.process_time() - cpu
    pairs = set(zip(out["left_id"].to_pylist(), out["right_id"].to_pylist(), strict=True))
    s = Score("match_names, names only", len(pairs), len(pairs & truth), len(truth), m.seconds)
    print_scores(f"Synthetic names: {n:,} x {n:,} ({len(truth):,} true pairs); wall "
                 f"{m.seconds:.0f} s, CPU {cpu:.0f} s, peak RSS {m.peak_rss / 2**30:.2f} GiB; "
                 f"{machine()}", [s])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--errors", action="store_true", help="list every remaining error")
    parser.add_argument("--no-splink", action="store_true", help="skip the Splink baseline")
    parser.add_argument("--generated", action="store_true", help="also the demo world")
    parser.add_argument("--scale", type=int, default=0, help="also time n x n synthetic names")
    parser.add_argument("--only-scale", action="store_true", help="skip the S&P table")
    parser.add_argument("--members", action="store_true",
                        help="the US index members (S&P 600 and others, not in the S&P 500) "
                        "as our list instead of the S&P 500")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("doorstep.map.matcher").setLevel(logging.INFO)
    if args.only_scale:
        scale(args.scale or 200_000)
        return

    ours, partner = load(args.members)
    scores: list[Score] = []
    runs: list[tuple[str, Callable[[], Pairs]]] = [
        ("exact cleaned names (cleanco)", lambda: exact_cleanco(ours, partner)),
        ("exact normalised names (doorstep normalize)", lambda: exact_normalised(ours, partner)),
        ("rapidfuzz WRatio >= 88 (best per name)", lambda: wratio(ours, partner)),
    ]
    if not args.no_splink:
        runs.append((f"Splink 5 EM (exact + shared words), p >= {args.threshold}",
                     lambda: splink_em(ours, partner, args.threshold)))
    for method, fn in runs:
        pairs, seconds = timed(fn)
        scores.append(score(method, pairs, ours, partner, seconds))
    start = time.perf_counter()
    pairs, found = doorstep_names(ours, partner, args.threshold)
    seconds = time.perf_counter() - start
    scores.append(score(f"doorstep match_names, p >= {args.threshold}", pairs, ours, partner,
                        seconds))
    positives = scores[0].positives
    title = "US index members (S&P 600, ...)" if args.members else "S&P 500"
    print_scores(f"{title} names vs SEC company list: {len(ours)} accounts, {len(partner):,} "
                 f"partner records, {positives} true pairs (names only)", scores)
    print_calibration(found, ours)
    if args.errors:
        print_errors(found, ours, partner, args.threshold)
    if args.generated:
        generated()
    if args.scale:
        scale(args.scale)


if __name__ == "__main__":
    main()
