"""Mapping speed: 1M of our accounts against 2 partners x 1M accounts, beside Splink.

    .venv/bin/python benchmarks/mapping_speed.py [--accounts 1000000] [--partners 2]
                                                 [--partner-accounts 1000000] [--cache DIR]
                                                 [--only JOB ...] [--blocking-counts]

Four runs on the same generated world (doorstep's demo generator, with its truth), one after
the other, each in a process of its own so that each peak memory is its own:

1. `doorstep`: the map stage's matching (`doorstep.map.stage`, the exact tiers and the
   probabilistic tier) from nothing: no cached keys, no saved model.
2. `doorstep-incremental`: the same a day later, when 1% of the first partner's rows changed
   (a third renamed, a third removed, a third new), on the model run 1 saved.
3. `splink-careful`: what a careful Splink user does: clean each row with cleanco, tldextract
   and pycountry (`careful_keys`), then Splink on DuckDB, trained without labels.
4. `splink`: Splink alone on doorstep's bulk-normalised keys.

`--cache DIR` writes the world's three tables (ours, theirs, truth) to DIR as parquet on first
use and reads them back on later runs with the same sizes; without it the world is generated in
a temporary directory. `--only JOB` (repeatable) runs some of them.

Both Splink runs are a genuine, unsupervised Splink model:

- keys: in `splink-careful`, from `careful_keys`; in `splink`, name_key, domain and
  country_code come from doorstep's own bulk normaliser
  (`doorstep.map.canonical.canonicalise`, into the DuckDB connection Splink then uses), exactly
  as doorstep computes them; non-identifying websites have no domain. That normalisation is timed
  as part of the Splink run, as doorstep pays for it too. An empty name_key is NULL (it was "",
  which put every nameless record into one blocking group), and first_token is the name_key's
  first word.
- comparisons: Jaro-Winkler on name_key at 0.95 and 0.88 with term frequency adjustments, exact
  domain, exact country_code.
- blocking for prediction: exact name_key; exact domain; first_token + country_code where the
  names are Jaro-Winkler >= 0.88. That filter is new: first word + country alone forms 341M
  pairs at full scale (common first words), nearly all of which fall in the name comparison's
  "else" level and cannot reach 0.9 unless their domains agree, which the domain rule covers.
  At fifth scale it cut the comparisons from 13.5M to 1.4M and the predictions were unchanged.
- training, without labels: lambda from deterministic rules (name_key + country, domain) at
  recall 0.8, u by random sampling (max_pairs 5e6), m by EM blocked on domain, then on name_key.
- prediction at match probability 0.9.
- engine: Splink's DuckDBAPI on our own DuckDB connection with `memory_limit` 10GB,
  `preserve_insertion_order` off and a temporary spill directory; input tables are passed to
  Splink as DuckDB table names, results are read back as Arrow (no pandas conversions).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _measure import machine, measure
from rich.console import Console
from rich.table import Table

from doorstep.demo_world import generate_world
from doorstep.map import find_matches
from doorstep.map.canonical import canonicalise

console = Console()
Pair = tuple[str, str, str]
Phases = list[tuple[str, float]]
SEED = 5
TODAY = date(2026, 11, 1)
SPLINK_MEMORY_LIMIT = "10GB"
OURS_COLUMNS = ["account_id", "name", "website", "country"]
THEIRS_COLUMNS = ["partner_id", "partner_account_id", "name", "website", "country", "relationship"]
TRUTH_COLUMNS = ["account_id", "partner_id", "partner_account_id"]
# first word + country, only where the names are close enough to reach the name comparison's
# lowest similar level (see the module docstring)
FIRST_TOKEN_RULE = ("l.first_token = r.first_token AND l.country_code = r.country_code"
                    " AND jaro_winkler_similarity(l.name_key, r.name_key) >= 0.88")


def _read(path: Path) -> pa.Table:
    header = path.open(encoding="utf-8").readline().strip().split(",")
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in header}, strings_can_be_null=True))


def _generate(accounts: int, partners: int, partner_accounts: int
              ) -> tuple[pa.Table, pa.Table, pa.Table]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with console.status("generating the world"):
            generate_world(root, accounts=accounts, partners=partners,
                           partner_accounts=partner_accounts, seed=SEED, today=TODAY,
                           bad_rows=False)
        ours = _read(root / "data" / "accounts.csv").select(OURS_COLUMNS)
        theirs = _read(root / "data" / "partner_accounts.csv").select(THEIRS_COLUMNS)
        truth = _read(root / "truth" / "overlaps.csv").select(TRUTH_COLUMNS)
    return ours, theirs, truth


def load_world(cache: Path | None, accounts: int, partners: int, partner_accounts: int
               ) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The world's (ours, theirs, truth): from `cache` if it holds this world, else generated."""
    if cache is None:
        return _generate(accounts, partners, partner_accounts)
    spec = {"accounts": accounts, "partners": partners, "partner_accounts": partner_accounts,
            "seed": SEED, "today": TODAY.isoformat(), "bad_rows": False}
    files = {name: cache / f"{name}.parquet" for name in ("ours", "theirs", "truth")}
    meta = cache / "world.json"
    if meta.exists():
        cached = json.loads(meta.read_text())
        if cached != spec:
            raise SystemExit(f"{cache} holds a different world ({cached}); use another --cache")
        if all(f.exists() for f in files.values()):
            console.print(f"world read from {cache}")
            return (pq.read_table(files["ours"]), pq.read_table(files["theirs"]),
                    pq.read_table(files["truth"]))
    tables = _generate(accounts, partners, partner_accounts)
    cache.mkdir(parents=True, exist_ok=True)
    for table, path in zip(tables, files.values(), strict=True):
        pq.write_table(table, path)
    meta.write_text(json.dumps(spec, indent=2) + "\n")  # last: marks the cache complete
    console.print(f"world written to {cache}")
    return tables


def _block_sizes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """Upper bound of the pairs each prediction blocking rule forms (before its filter)."""
    rules = {"name_key": ["name_key"], "domain": ["domain"],
             "first_token + country_code": ["first_token", "country_code"]}
    out = []
    for label, cols in rules.items():
        keys = ", ".join(cols)
        not_null = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        row = con.sql(f"""
            WITH l AS (SELECT {keys}, count(*) AS n FROM splink_ours WHERE {not_null} GROUP BY ALL),
                 r AS (SELECT {keys}, count(*) AS n FROM splink_theirs WHERE {not_null}
                       GROUP BY ALL)
            SELECT coalesce(sum(l.n * r.n), 0) FROM l JOIN r USING ({keys})
        """).fetchall()
        out.append((label, int(row[0][0])))
    return out


def careful_keys(records: pa.Table, ids: list[str]) -> pa.Table:
    """What a careful Splink user writes before Splink: per row, cleanco's basename of the
    name (lower case, punctuation and accents folded), tldextract's registrable domain of the
    website (its bundled suffix list, nothing fetched; social and free-mail sites dropped) and
    an ISO country code from pycountry, each value cached once seen."""
    import re
    import unicodedata

    import pycountry
    import tldextract
    from cleanco import basename

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    shared = {"linkedin.com", "facebook.com", "gmail.com", "yahoo.com", "hotmail.com",
              "outlook.com", "wixsite.com", "twitter.com", "instagram.com"}

    @functools.cache
    def name_key(name: str) -> str | None:
        folded = unicodedata.normalize("NFKD", basename(name)).encode("ascii", "ignore")
        key = " ".join(re.sub(r"[^a-z0-9]+", " ", folded.decode().lower()).split())
        return key or None

    def domain(site: str) -> str | None:
        host = site.split("@")[-1]
        found = extract(host).top_domain_under_public_suffix.lower()
        return found if found and found not in shared else None

    @functools.cache
    def country(text: str) -> str | None:
        try:
            return str(pycountry.countries.lookup(text.strip()).alpha_2)
        except LookupError:
            return None

    names = [name_key(n) if n else None for n in records.column("name").to_pylist()]
    return pa.table({
        "unique_id": pa.array(ids, pa.string()),
        "name_key": pa.array(names, pa.string()),
        "domain": pa.array([domain(w) if w else None
                            for w in records.column("website").to_pylist()], pa.string()),
        "country_code": pa.array([country(c) if c else None
                                  for c in records.column("country").to_pylist()], pa.string()),
        "first_token": pa.array([n.split(" ", 1)[0] if n else None for n in names],
                                pa.string()),
    })


def splink_only(ours: pa.Table, theirs: pa.Table, threshold: float = 0.9, *,
                phases: Phases | None = None, blocking_counts: bool = False,
                spill: Path | None = None, careful: bool = False) -> set[Pair]:
    """Splink 5 on DuckDB alone, trained without labels (settings in the module docstring).

    `careful`: the keys come from per-row cleaning with cleanco and tldextract
    (`careful_keys`) instead of doorstep's bulk normaliser.
    """
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.blocking_analysis import count_comparisons_from_blocking_rules
    from splink.blocking_rule_library import CustomRule

    phases = phases if phases is not None else []
    start = time.perf_counter()

    def phase(step: str) -> None:
        phases.append((step, time.perf_counter() - start))

    with tempfile.TemporaryDirectory(dir=spill, prefix="splink-spill-") as tmp:
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{SPLINK_MEMORY_LIMIT}'")
        con.execute(f"SET temp_directory = '{tmp}'")
        con.execute("SET preserve_insertion_order = false")
        try:
            if careful:
                phase("cleaning per row (cleanco, tldextract, pycountry)")
                left = careful_keys(ours, ours.column("account_id").to_pylist())
                right = careful_keys(theirs, [f"{p}\x1f{a}" for p, a in zip(
                    theirs.column("partner_id").to_pylist(),
                    theirs.column("partner_account_id").to_pylist(), strict=True)])
                con.register("left_in", left)
                con.register("right_in", right)
                con.sql("CREATE TABLE splink_ours AS SELECT * FROM left_in")
                con.sql("CREATE TABLE splink_theirs AS SELECT * FROM right_in")
                con.unregister("left_in")
                con.unregister("right_in")
                del left, right
            else:
                phase("normalising (doorstep's canonicalise)")
                canonicalise(con, ours, "ours_keyed")
                canonicalise(con, theirs, "theirs_keyed")
            con.sql("SELECT 1" if careful else """
                CREATE TABLE splink_ours AS
                SELECT account_id AS unique_id, nullif(name_key, '') AS name_key, domain,
                       country_code, nullif(split_part(name_key, ' ', 1), '') AS first_token
                FROM ours_keyed;
                CREATE TABLE splink_theirs AS
                SELECT partner_id || chr(31) || partner_account_id AS unique_id,
                       nullif(name_key, '') AS name_key, domain, country_code,
                       nullif(split_part(name_key, ' ', 1), '') AS first_token
                FROM theirs_keyed;
                DROP TABLE ours_keyed; DROP TABLE theirs_keyed;
            """)
            sizes = _block_sizes(con)
            console.print("Splink blocking, pairs per rule before filters: " + ", ".join(
                f"{label} {n:,}" for label, n in sizes))

            phase("Splink setup")
            db = DuckDBAPI(connection=con)
            settings = SettingsCreator(
                link_type="link_only",
                comparisons=[
                    cl.JaroWinklerAtThresholds("name_key", [0.95, 0.88]).configure(
                        term_frequency_adjustments=True),
                    cl.ExactMatch("domain"),
                    cl.ExactMatch("country_code"),
                ],
                blocking_rules_to_generate_predictions=[
                    block_on("name_key"),
                    block_on("domain"),
                    CustomRule(FIRST_TOKEN_RULE, sql_dialect="duckdb"),
                ],
            )
            inputs = [db.register("splink_ours", dataset_display_name="ours"),
                      db.register("splink_theirs", dataset_display_name="theirs")]
            linker = Linker(inputs, settings, log_level=logging.ERROR)
            if blocking_counts:
                phase("blocking analysis (diagnostic)")
                records = ours.num_rows + theirs.num_rows
                counts = count_comparisons_from_blocking_rules(
                    inputs, blocking_rules=settings.blocking_rules_to_generate_predictions,
                    link_type="link_only",
                    record_sample_proportion=1.0 if records <= 500_000 else 0.1)
                console.print("Splink blocking analysis: " + ", ".join(
                    f"+{c['marginal_comparison_count']:,}" for c in counts)
                    + f" = {counts[-1]['cumulative_comparison_count']:,} comparisons"
                    + (" (estimated)" if counts[-1]["is_estimate"] else ""))

            phase("training: lambda")
            linker.training.estimate_probability_two_random_records_match(
                [block_on("name_key", "country_code"), block_on("domain")], recall=0.8)
            phase("training: u by random sampling")
            linker.training.estimate_u_using_random_sampling(max_pairs=5e6)
            phase("training: m by EM")
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on("domain"))
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on("name_key"))
            phase("prediction")
            predicted = linker.inference.predict(threshold_match_probability=threshold)
            phase("collecting pairs")
            found = con.sql(f"""
                SELECT CASE WHEN source_dataset_l = 'ours' THEN unique_id_l
                            ELSE unique_id_r END AS account_id,
                       CASE WHEN source_dataset_l = 'ours' THEN unique_id_r
                            ELSE unique_id_l END AS other
                FROM {predicted.physical_name}
            """).to_arrow_table()
            pairs: set[Pair] = set()
            for acc, other in zip(found["account_id"].to_pylist(),
                                  found["other"].to_pylist(), strict=True):
                partner, partner_account = other.split("\x1f", 1)
                pairs.add((acc, partner, partner_account))
            console.print(f"Splink predicted {found.num_rows:,} pairs at >= {threshold}")
            phase("done")
        finally:
            con.close()
    return pairs


def _prf(found: set[Pair], truth: set[Pair]) -> tuple[float, float]:
    tp = len(found & truth)
    return (tp / len(found) if found else 1.0), (tp / len(truth) if truth else 1.0)


class _LapRecorder(logging.Handler):
    """Collects the steps match_names logs: (what, seconds)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.laps: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 3:
            self.laps.append((str(args[0]), float(args[1])))  # type: ignore[arg-type]


def _phase_table(title: str, phases: Phases) -> Table:
    where = Table(title=title, title_justify="left")
    where.add_column("phase")
    where.add_column("seconds", justify="right")
    for (step, t0), (_, t1) in zip(phases, phases[1:], strict=False):
        where.add_row(step, f"{t1 - t0:,.1f}")
    return where


def change_one_partner(theirs: pa.Table, share: float = 0.01,
                       ) -> tuple[pa.Table, dict[tuple[str, str], str]]:
    """The first partner's list a day later: `share` of its rows touched, a third each renamed
    (a word added), removed, and added (new records copied from its other rows, new ids).
    Also returns the copies: (partner, copied row's id) -> the new id."""
    first = theirs.column("partner_id")[0].as_py()
    rows = theirs.to_pylist()
    mine = [k for k, r in enumerate(rows) if r["partner_id"] == first]
    step = max(int(1 / (share / 3)), 1)
    renamed, removed = set(mine[::step]), set(mine[step // 2::step])
    out = [{**r, "name": f"{r['name']} Group"} if k in renamed else r
           for k, r in enumerate(rows) if k not in removed]
    copies = {(rows[k]["partner_id"], rows[k]["partner_account_id"]): f"NEW-{n:07d}"
              for n, k in enumerate(mine[step // 3::step])}
    out += [{**rows[k], "partner_account_id": copies[(rows[k]["partner_id"],
                                                      rows[k]["partner_account_id"])]}
            for k in mine[step // 3::step]]
    return pa.Table.from_pylist(out, schema=theirs.schema), copies


JOBS = ("doorstep", "doorstep-incremental", "splink-careful", "splink")
LABELS = {
    "doorstep": "doorstep map, full (cold: nothing cached)",
    "doorstep-incremental": "doorstep re-map after 1% of one partner changed",
    "splink-careful": "careful Splink 5 pipeline (cleanco + tldextract per row)",
    "splink": "Splink 5 alone (doorstep's keys)",
}


def run_job(job: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one job in this process; return its measurements as plain data."""
    ours, theirs, truth_t = load_world(args.cache, args.accounts, args.partners,
                                       args.partner_accounts)
    truth = set(zip(*(truth_t[c].to_pylist() for c in TRUTH_COLUMNS), strict=True))
    theirs = theirs.append_column("shared_account_id", pa.nulls(theirs.num_rows, pa.string()))
    phases: Phases = []
    laps = _LapRecorder()
    logging.getLogger("doorstep.map.matcher").addHandler(laps)
    logging.getLogger("doorstep.map.matcher").setLevel(logging.INFO)
    state = Path(args.state)
    extra: dict[str, Any] = {}
    if job.startswith("doorstep"):
        start = time.perf_counter()

        def progress(step: str) -> None:
            phases.append((step, time.perf_counter() - start))

        if job == "doorstep-incremental":
            theirs, copies = change_one_partner(theirs)
            ids = set(theirs.column("partner_account_id").to_pylist())
            truth = {t for t in truth if t[2] in ids} | {
                (acc, partner, copies[(partner, pid)]) for acc, partner, pid in truth
                if (partner, pid) in copies}

        def work() -> tuple[Any, Any]:
            found = find_matches(ours, theirs, threshold=0.9, progress=progress,
                                 state_dir=state)
            return found.overlaps, found.run

        (result, run), m = measure(work)
        phases.append(("done", m.seconds))
        extra = {"mode": run.mode, "reason": run.reason, "rescored": run.rescored}
        found = {(r["account_id"], r["partner_id"], r["partner_account_id"])
                 for r in result.select(TRUTH_COLUMNS).to_pylist()}
    else:
        found, m = measure(lambda: splink_only(
            ours, theirs, phases=phases, blocking_counts=args.blocking_counts,
            spill=args.cache, careful=job == "splink-careful"))
        phases.append(("done", m.seconds))
    p, r = _prf(found, truth)
    return {"job": job, "seconds": m.seconds, "peak": m.peak_rss, "precision": p, "recall": r,
            "records": ours.num_rows + theirs.num_rows, "truth": len(truth),
            "phases": phases, "laps": laps.laps, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=2)
    parser.add_argument("--partner-accounts", type=int, default=1_000_000)
    parser.add_argument("--only", choices=JOBS, action="append",
                        help="run only these (repeatable; default: all, in order)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="keep the generated world in DIR as parquet and reuse it")
    parser.add_argument("--blocking-counts", action="store_true",
                        help="also run Splink's blocking analysis (adds to Splink's time)")
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:  # a child: one job, its result as JSON
        Path(args.out).write_text(json.dumps(run_job(args.job, args)))
        return
    with tempfile.TemporaryDirectory(prefix="mapping-speed-") as tmp:
        if args.cache is None:
            args.cache = Path(tmp) / "world"
        ours, theirs, truth = load_world(args.cache, args.accounts, args.partners,
                                         args.partner_accounts)
        console.print(f"{machine()}\n{ours.num_rows:,} accounts x {theirs.num_rows:,} partner "
                      f"accounts ({args.partners} partners), {truth.num_rows:,} true overlaps")
        del ours, theirs, truth
        jobs = [j for j in JOBS if not args.only or j in args.only]
        if "doorstep-incremental" in jobs and "doorstep" not in jobs:
            parser.error("the incremental run needs the full run before it (--only doorstep)")
        results = []
        for job in jobs:
            out = Path(tmp) / f"{job}.json"
            # each run in a process of its own, so that its peak memory is its own
            command = [sys.executable, __file__, "--job", job, "--state", str(Path(tmp) / "map"),
                       "--out", str(out), "--cache", str(args.cache),
                       "--accounts", str(args.accounts), "--partners", str(args.partners),
                       "--partner-accounts", str(args.partner_accounts)]
            if args.blocking_counts:
                command.append("--blocking-counts")
            with console.status(f"running {LABELS[job]}"):
                subprocess.run(command, check=True)
            results.append(json.loads(out.read_text()))
            done = results[-1]
            console.print(f"{LABELS[job]}: {done['seconds']:,.1f} s, peak "
                          f"{done['peak'] / 2**30:.2f} GiB, precision {done['precision']:.4f}, "
                          f"recall {done['recall']:.4f}"
                          + (f" ({done['mode']}: {done['rescored']:,} records scored)"
                             if "mode" in done else ""))
    _report(results)


def _report(results: list[dict[str, Any]]) -> None:
    base = next((r for r in results if r["job"] == "doorstep"), results[0])
    table = Table(title="Mapping speed", title_justify="left")
    for col in ("run", "wall s", "records/s", "peak memory", "precision", "recall",
                "time vs doorstep"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in results:
        table.add_row(LABELS[r["job"]], f"{r['seconds']:,.1f}",
                      f"{r['records'] / r['seconds']:,.0f}", f"{r['peak'] / 2**30:.2f} GiB",
                      f"{r['precision']:.4f}", f"{r['recall']:.4f}",
                      f"{r['seconds'] / base['seconds']:.2f}x")
    console.print(table)
    for r in results:
        console.print(_phase_table(f"Where the time goes: {LABELS[r['job']]}",
                                   [(a, b) for a, b in r["phases"]]))
        if r["laps"]:
            inside = Table(title="  inside the probabilistic tier", title_justify="left")
            inside.add_column("step")
            inside.add_column("seconds", justify="right")
            for step, seconds in r["laps"]:
                inside.add_row(step, f"{seconds:,.1f}")
            console.print(inside)


if __name__ == "__main__":
    main()
