"""Mapping speed: 1M of our accounts against 10 partners x 200k accounts, beside Splink alone.

    .venv/bin/python benchmarks/mapping_speed.py [--accounts 1000000] [--partners 10]
                                                 [--partner-accounts 200000]
                                                 [--only {doorstep,splink}] [--cache DIR]
                                                 [--blocking-counts]

Both runs use the same generated world (doorstep's demo generator, with its truth) in the same
process. `--cache DIR` writes the world's three tables (ours, theirs, truth) to DIR as parquet on
first use and reads them back on later runs with the same sizes; without it the world is
generated in a temporary directory. `--only` runs one of the two.

The Splink-only run ("Splink 5 alone") is a genuine, unsupervised Splink model:

- keys: name_key, domain and country_code come from doorstep's own bulk normaliser
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
import json
import logging
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _measure import Measured, machine, measure
from rich.console import Console
from rich.table import Table

from doorstep.demo_world import generate_world
from doorstep.map import find_overlaps
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


def splink_only(ours: pa.Table, theirs: pa.Table, threshold: float = 0.9, *,
                phases: Phases | None = None, blocking_counts: bool = False,
                spill: Path | None = None) -> set[Pair]:
    """Splink 5 on DuckDB alone, trained without labels (settings in the module docstring)."""
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
            phase("normalising (doorstep's canonicalise)")
            canonicalise(con, ours, "ours_keyed")
            canonicalise(con, theirs, "theirs_keyed")
            con.execute("""
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


def _row(run: str, m: Measured, records: int, found: set[Pair], truth: set[Pair],
         base: Measured | None) -> list[str]:
    p, r = _prf(found, truth)
    return [run, f"{m.seconds:,.0f}", f"{records / m.seconds:,.0f}",
            f"{m.peak_rss / 2**30:.1f} GiB", f"{p:.4f}", f"{r:.4f}",
            f"{m.seconds / base.seconds:.2f}x" if base else "-"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument("--partner-accounts", type=int, default=200_000)
    parser.add_argument("--only", choices=("doorstep", "splink"),
                        help="run only doorstep or only the Splink baseline (default: both)")
    parser.add_argument("--no-splink", action="store_true", help="same as --only doorstep")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="keep the generated world in DIR as parquet and reuse it")
    parser.add_argument("--blocking-counts", action="store_true",
                        help="also run Splink's blocking analysis (adds to Splink's time)")
    args = parser.parse_args()
    if args.no_splink:
        if args.only == "splink":
            parser.error("--no-splink contradicts --only splink")
        args.only = "doorstep"
    run_doorstep = args.only in (None, "doorstep")
    run_splink = args.only in (None, "splink")

    ours, theirs, truth_t = load_world(args.cache, args.accounts, args.partners,
                                       args.partner_accounts)
    truth = set(zip(*(truth_t[c].to_pylist() for c in TRUTH_COLUMNS), strict=True))
    theirs = theirs.append_column("shared_account_id", pa.nulls(theirs.num_rows, pa.string()))
    records = ours.num_rows + theirs.num_rows
    console.print(f"{machine()}\n{ours.num_rows:,} accounts x {theirs.num_rows:,} partner "
                  f"accounts ({args.partners} partners), {len(truth):,} true overlaps")

    table = Table(title="Mapping speed", title_justify="left")
    columns = ("run", "wall s", "records/s", "peak RSS", "precision", "recall", "vs doorstep")
    for col in columns:
        table.add_column(col, justify="left" if col == "run" else "right")
    notes: list[Table] = []
    doorstep: Measured | None = None
    if run_doorstep:
        phases: Phases = []
        start = time.perf_counter()

        def progress(step: str) -> None:
            phases.append((step, time.perf_counter() - start))

        laps = _LapRecorder()
        logging.getLogger("doorstep.map.matcher").addHandler(laps)
        logging.getLogger("doorstep.map.matcher").setLevel(logging.INFO)
        result, doorstep = measure(lambda: find_overlaps(ours, theirs, threshold=0.9,
                                                         progress=progress))
        logging.getLogger("doorstep.map.matcher").removeHandler(laps)
        phases.append(("done", doorstep.seconds))
        found = {(r["account_id"], r["partner_id"], r["partner_account_id"])
                 for r in result.select(TRUTH_COLUMNS).to_pylist()}
        del result
        p, r = _prf(found, truth)
        console.print(f"doorstep: {doorstep.seconds:,.0f} s, peak "
                      f"{doorstep.peak_rss / 2**30:.1f} GiB, precision {p:.4f}, recall {r:.4f}")
        table.add_row(*_row("doorstep map (exact tiers + match_names)", doorstep, records, found,
                            truth, doorstep))
        notes.append(_phase_table("Where doorstep's time goes", phases))
        inside = Table(title="Inside the probabilistic tier", title_justify="left")
        inside.add_column("step")
        inside.add_column("seconds", justify="right")
        for step, seconds in laps.laps:
            inside.add_row(step, f"{seconds:,.1f}")
        notes.append(inside)
    if run_splink:
        splink_phases: Phases = []
        pairs, spl = measure(lambda: splink_only(
            ours, theirs, phases=splink_phases, blocking_counts=args.blocking_counts,
            spill=args.cache))
        p, r = _prf(pairs, truth)
        console.print(f"Splink: {spl.seconds:,.0f} s, peak {spl.peak_rss / 2**30:.1f} GiB, "
                      f"precision {p:.4f}, recall {r:.4f}")
        table.add_row(*_row("Splink 5 alone (DuckDB, EM)", spl, records, pairs, truth, doorstep))
        notes.append(_phase_table("Where Splink's time goes", splink_phases))
    console.print(table)
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    main()
