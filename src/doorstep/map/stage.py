"""The mapping stage: match our accounts against every partner's accounts, store the overlaps."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, delete, insert, select, tuple_, update

from doorstep.map.canonical import canonicalise
from doorstep.map.normalize import identifying_domain, is_name_usable, website_hint
from doorstep.store.db import hold_stage_lock
from doorstep.store.models import Account, Overlap, Partner, PartnerAccount, RelatedAccount
from doorstep.workspace import Workspace

MapProgress = Callable[[str], None]

# Match probability recorded for each exact tier: an exact shared id is certain; a shared
# registrable domain (social, builder and free-mail sites excluded) almost so; the same
# normalised name in the same country with no conflicting domain is strong but not certain.
TIER_PROBABILITY = {"shared_id": 1.0, "domain": 0.99, "name_country": 0.97}

# An overlap found for one of our accounts holds for our other accounts of the same company
# (regional duplicates: "Acme (EMEA)" beside "Acme Inc"), recorded with this method.
DUPLICATE_METHOD = "our_duplicate"


@dataclass
class MapReport:
    """What mapping found and what it changed in the store."""

    overlaps: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    by_partner: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    related: int = 0
    warnings: list[str] = field(default_factory=list)
    # "full" (the model fitted again, every record scored) or "incremental"
    mode: str = "full"
    mode_reason: str = ""
    rescored: int = 0  # partner records the probabilistic tier scored
    gone: int = 0  # partner records it dropped


def _fetch(conn: Connection, statement: Any, names: list[str]) -> pa.Table:
    rows = conn.execute(statement).fetchall()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({n: pa.array(c, type=pa.string()) for n, c in zip(names, columns, strict=True)})


def _load(conn: Connection) -> tuple[pa.Table, pa.Table]:
    a, p = Account, PartnerAccount
    ours = _fetch(
        conn,
        select(a.account_id, a.name, a.website, a.country),
        ["account_id", "name", "website", "country"],
    )
    shared = p.attributes["account_id"].as_string()
    theirs = _fetch(
        conn,
        select(
            p.partner_id, p.partner_account_id, p.name, p.website, p.country, p.relationship, shared
        ),
        [
            "partner_id",
            "partner_account_id",
            "name",
            "website",
            "country",
            "relationship",
            "shared_account_id",
        ],
    )
    return ours, theirs


_EXACT_TIERS = """
CREATE OR REPLACE TABLE exact AS
WITH shared_id AS (
    SELECT o.account_id, t.partner_id, t.partner_account_id, 'shared_id' AS method,
           ['account_id'] AS agreed
    FROM theirs t JOIN ours o ON o.account_id = t.shared_account_id
),
by_domain AS (
    SELECT o.account_id, t.partner_id, t.partner_account_id, 'domain' AS method,
           list_filter(['domain',
                        CASE WHEN o.name_key = t.name_key THEN 'name' END,
                        CASE WHEN o.country_code = t.country_code THEN 'country' END],
                       lambda x: x IS NOT NULL) AS agreed
    FROM theirs t JOIN ours o ON o.domain = t.domain
),
by_name AS (
    SELECT o.account_id, t.partner_id, t.partner_account_id, 'name_country' AS method,
           ['name', 'country'] AS agreed
    FROM theirs t JOIN ours o
      ON o.name_key = t.name_key AND o.country_code = t.country_code
    WHERE o.name_key <> ''
      -- two identifying websites that differ mean two companies that share a name
      AND (o.domain IS NULL OR t.domain IS NULL OR o.domain = t.domain)
),
found AS (
    SELECT *, 1 AS rank FROM shared_id
    UNION ALL SELECT *, 2 FROM by_domain
    UNION ALL SELECT *, 3 FROM by_name
)
SELECT account_id, partner_id, partner_account_id, method, agreed
FROM found
QUALIFY row_number() OVER (PARTITION BY account_id, partner_id, partner_account_id
                           ORDER BY rank) = 1
"""


_OUR_CLUSTERS = """
CREATE OR REPLACE TABLE clusters AS
WITH keyed AS (
    SELECT o.account_id, coalesce(r.core, o.name_key) AS core, r.core IS NOT NULL AS regional,
           o.domain, split_part(o.domain, '.', 1) AS label, o.country_code
    FROM ours o LEFT JOIN regional r ON r.name = o.name
    WHERE coalesce(r.core, o.name_key) <> ''
),
labels AS (SELECT DISTINCT core, label FROM keyed WHERE label IS NOT NULL),
only_label AS (SELECT core, any_value(label) AS label FROM labels GROUP BY core
               HAVING count(*) = 1),
assigned AS (
    SELECT account_id, core || chr(31) || label AS cluster FROM keyed WHERE label IS NOT NULL
    UNION ALL
    -- a record without a website joins its name's only website, when it is a regional
    -- record or shares a country with that website's records
    SELECT k.account_id, s.core || chr(31) || s.label
    FROM keyed k JOIN only_label s USING (core)
    WHERE k.label IS NULL
      AND (k.regional OR EXISTS (SELECT 1 FROM keyed m WHERE m.core = k.core
                                 AND m.label = s.label AND m.country_code = k.country_code))
),
kept AS (SELECT cluster FROM assigned GROUP BY cluster HAVING count(*) > 1)
SELECT a.account_id, a.cluster, k.domain, k.label, k.regional, k.country_code
FROM assigned a SEMI JOIN kept USING (cluster) JOIN keyed k USING (account_id)
"""


def _our_clusters(con: duckdb.DuckDBPyConnection) -> None:
    """Create table `clusters`: our accounts that are one company (regional duplicates)."""
    from doorstep.map.vocabulary import regional_core

    names = [r[0] for r in con.execute(
        r"SELECT DISTINCT name FROM ours WHERE regexp_matches(name, '\)\s*$|\s[-–—]\s')"
    ).fetchall()]
    cores = [regional_core(n) for n in names]
    con.register("regional_in", pa.table({
        "name": pa.array(names, pa.string()), "core": pa.array(cores, pa.string())}))
    con.execute("CREATE OR REPLACE TABLE regional AS "
                "SELECT * FROM regional_in WHERE core IS NOT NULL")
    con.unregister("regional_in")
    con.execute(_OUR_CLUSTERS)


@dataclass
class MatchRun:
    """How the probabilistic tier ran: a full fit, or an incremental re-map on the last one."""

    mode: str = "full"  # "full" | "incremental"
    reason: str = ""  # why a full fit, when it was one
    rescored: int = 0  # partner records scored this run
    gone: int = 0  # partner records no longer among the probabilistic tier's


def _fuzzy(con: duckdb.DuckDBPyConnection, threshold: float, workers: int | None,
           state_dir: Path | None, full: bool, refit_share: float) -> tuple[pa.Table, MatchRun]:
    """Probabilistic tier for partner accounts no exact tier matched.

    With `state_dir`, builds on the model the last full fit saved there: only partner records
    it has not scored are scored, with the same model, unless a full fit is asked for or due.
    """
    from doorstep.map.matcher import fit_names, match_names, relink_names, resolve_names
    from doorstep.map.params import DEFAULT_PARAMS

    # both sides in a fixed order: the model samples records by position
    left = con.sql("""
        SELECT o.account_id AS id, o.name, o.name_key, o.name_words, o.country_code,
               o.domain, o.hint, c.cluster
        FROM ours o LEFT JOIN clusters c USING (account_id)
        ORDER BY o.account_id
    """).to_arrow_table()
    right = con.sql("""
        SELECT partner_id || chr(31) || partner_account_id AS id, name, name_key, name_words,
               country_code, domain, hint, partner_id AS "group"
        FROM theirs t
        WHERE NOT EXISTS (SELECT 1 FROM exact e WHERE e.partner_id = t.partner_id
                          AND e.partner_account_id = t.partner_account_id)
        ORDER BY partner_id, partner_account_id
    """).to_arrow_table()
    if state_dir is None:
        return match_names(left, right, threshold=threshold, workers=workers), MatchRun()
    from doorstep.map.state import load_state, save_scored, save_state

    con.register("left_in", left)
    row = con.sql("""
        SELECT count(*), coalesce(bit_xor(hash(id, name, name_key, name_words, country_code,
                                                domain, hint, cluster)), 0)
        FROM left_in
    """).fetchall()
    con.unregister("left_in")
    count, digest = row[0]
    settings = hashlib.sha256(repr(DEFAULT_PARAMS).encode()).hexdigest()[:16]
    fingerprint = f"{count}:{digest}:{settings}"
    run = MatchRun()
    state = None
    if full:
        run.reason = "asked for (--full)"
    else:
        state, run.reason = load_state(state_dir, fingerprint)
        if state is not None:
            known = set(state.groups)
            groups = set(right.column("group").to_pylist())
            if groups - known:
                state, run.reason = None, f"new partner {sorted(groups - known)[0]}"
    if state is not None:
        from doorstep.map.records import record_keys

        keys = record_keys(right)
        fresh = pc.sum(pc.invert(pc.is_in(keys, value_set=state.right_keys))).as_py() or 0
        gone = pc.sum(pc.invert(pc.is_in(state.right_keys, value_set=keys))).as_py() or 0
        changed = state.changed_since_fit + fresh + gone
        fitted_on = state.fitted_records
        if changed > refit_share * max(fitted_on, 1):
            state, run.reason = None, (
                f"{changed:,} partner records added, changed or removed since the last fit, "
                f"more than {refit_share:.0%} of the {fitted_on:,} it was fitted on")
    if state is None:
        state = fit_names(left, right, workers=workers)
        run.rescored = right.num_rows
        if state is None:  # a side is empty: nothing to fit, nothing to keep
            shutil.rmtree(state_dir, ignore_errors=True)
            return match_names(left, right, threshold=threshold, workers=workers), run
        found = resolve_names(state, right, threshold=threshold)
        save_state(state, state_dir, fingerprint)
        return found, run
    state, relinked = relink_names(state, right, workers=workers, keys=keys)
    run.mode, run.rescored, run.gone = "incremental", relinked.new_records, \
        relinked.gone_records
    found = resolve_names(state, right, threshold=threshold, keys=keys)
    save_scored(state, state_dir)
    return found, run


def find_overlaps(
    ours: pa.Table,
    theirs: pa.Table,
    *,
    threshold: float,
    progress: MapProgress | None = None,
    workers: int | None = None,
    with_related: bool = False,
    state_dir: Path | None = None,
    full: bool = False,
) -> Any:
    """Every (account, partner account) pair that is the same company, with method and evidence.

    A pair in two countries whose identifying websites differ (maplewave.com in the US beside
    maplewave.nl in the Netherlands) is the same brand elsewhere, a *related account*, never an
    overlap, unless a shared id or the same domain links them. With `with_related`, returns
    (overlaps, related accounts). Pure in its inputs: `ours` has account_id, name, website,
    country; `theirs` has partner_id, partner_account_id, name, website, country, relationship
    and shared_account_id. `workers` caps the processes used (None: every core). With
    `state_dir`, the probabilistic tier builds on the model saved there (see `map_accounts`).
    """
    found = find_matches(ours, theirs, threshold=threshold, progress=progress,
                         workers=workers, state_dir=state_dir, full=full)
    return (found.overlaps, found.related) if with_related else found.overlaps


@dataclass
class Matches:
    """What mapping found: overlaps, related accounts, and how the probabilistic tier ran."""

    overlaps: pa.Table
    related: pa.Table
    run: MatchRun


def find_matches(
    ours: pa.Table,
    theirs: pa.Table,
    *,
    threshold: float,
    progress: MapProgress | None = None,
    workers: int | None = None,
    state_dir: Path | None = None,
    full: bool = False,
    refit_share: float = 0.2,
) -> Matches:
    """Overlaps and related accounts (as `find_overlaps`), and how the probabilistic tier ran.

    With `state_dir`, the tier builds on the model saved there unless `full` asks for a full
    fit, or one is due (more than `refit_share` of the partner records new or changed, ...).
    """
    con = duckdb.connect()
    if progress:
        progress("normalising websites, names and countries")
    cache = None if state_dir is None else state_dir.parent / "canonical"
    canonicalise(con, ours, "ours", workers, cache)
    canonicalise(con, theirs, "theirs", workers, cache)
    if progress:
        progress("exact tiers: shared id, domain, name + country")
    con.execute(_EXACT_TIERS)
    _our_clusters(con)
    if progress:
        progress("probabilistic tier on what is left")
    fuzzy, run = _fuzzy(con, threshold, workers, state_dir, full, refit_share)
    con.register("fuzzy_in", fuzzy)
    result = con.sql(f"""
        WITH pairs AS (
            SELECT account_id, partner_id, partner_account_id, method,
                   CASE method {
        " ".join(f"WHEN '{m}' THEN {p}" for m, p in TIER_PROBABILITY.items())
    } END AS probability,
                   to_json({{'agreed': agreed}})::VARCHAR AS evidence
            FROM exact
            UNION ALL
            SELECT left_id, split_part(right_id, chr(31), 1), split_part(right_id, chr(31), 2),
                   'probabilistic', probability, evidence
            FROM fuzzy_in
        ),
        -- what holds for one of our accounts holds for its duplicates
        via_duplicate AS (
            SELECT b.account_id, p.partner_id, p.partner_account_id,
                   '{DUPLICATE_METHOD}' AS method, p.probability,
                   to_json({{
                       'agreed': list_filter([
                           'name',
                           CASE WHEN a.domain = b.domain THEN 'domain'
                                WHEN a.label = b.label THEN 'domain_label' END,
                           CASE WHEN a.country_code = b.country_code THEN 'country' END,
                           CASE WHEN a.regional OR b.regional THEN 'regional_name' END],
                           lambda x: x IS NOT NULL),
                       'via_account': p.account_id,
                       'via_method': p.method}})::VARCHAR AS evidence
            FROM pairs p JOIN clusters a USING (account_id)
            JOIN clusters b ON b.cluster = a.cluster AND b.account_id <> a.account_id
            -- our records in two countries with two different websites are two companies,
            -- unless a regional name ("Acme (EMEA)") says one is the other's branch
            WHERE a.regional OR b.regional
               OR NOT (a.country_code IS NOT NULL AND b.country_code IS NOT NULL
                       AND a.country_code <> b.country_code
                       AND a.domain IS NOT NULL AND b.domain IS NOT NULL
                       AND a.domain <> b.domain)
        ),
        found AS (
            SELECT *, 0 AS rank FROM pairs
            UNION ALL SELECT *, 1 FROM via_duplicate
        )
        SELECT f.account_id, f.partner_id, f.partner_account_id, f.method, f.probability,
               f.evidence, t.relationship,
               -- the same brand abroad: two countries, two identifying websites that differ,
               -- and nothing else (a shared id, the same domain, our own record of the
               -- company there) that links them
               (f.method NOT IN ('shared_id', 'domain', '{DUPLICATE_METHOD}')
                AND o.country_code IS NOT NULL AND t.country_code IS NOT NULL
                AND o.country_code <> t.country_code
                AND o.domain IS NOT NULL AND t.domain IS NOT NULL
                AND o.domain <> t.domain) AS related
        FROM found f
        JOIN theirs t USING (partner_id, partner_account_id)
        JOIN ours o USING (account_id)
        QUALIFY row_number() OVER (PARTITION BY f.account_id, f.partner_id, f.partner_account_id
                                   ORDER BY f.rank, f.probability DESC, f.evidence) = 1
        ORDER BY partner_id, partner_account_id, account_id
    """).to_arrow_table()
    con.close()
    related = result.column("related").cast(pa.bool_())  # typed even when nothing matched
    overlaps = result.filter(pc.invert(related)).drop_columns(["related"])
    return Matches(overlaps, result.filter(related).drop_columns(["related"]), run)


def _usable(name: str | None, website: str | None) -> bool:
    """Return True when a record has something to match on: a name or a telling website."""
    return is_name_usable(name) or bool(
        identifying_domain(website) or website_hint(website)
    )


def _partners_without_keys(theirs: pa.Table, partners: list[str]) -> list[str]:
    """Warn about partners none of whose accounts has a usable name or website."""
    con = duckdb.connect()
    con.register("t", theirs)
    counts = dict(con.sql("SELECT partner_id, count(*) FROM t GROUP BY 1").fetchall())
    warnings = []
    for pid, n in sorted(counts.items()):
        # stops at the first usable record: at once for any real partner list
        rows = con.execute(
            "SELECT DISTINCT name, website FROM t WHERE partner_id = ?", [pid]
        ).fetchall()
        if not any(_usable(name, site) for name, site in rows):
            warnings.append(
                f"partner {pid}: none of its {n:,} accounts has a usable name or website "
                "(names are blank or only a legal form, websites missing or not a company's); "
                "nothing to match: check the partner's file"
            )
    con.close()
    warnings += [
        f"partner {pid} has no accounts in partner_accounts; nothing to match"
        for pid in partners
        if pid not in counts
    ]
    return warnings


def _write_related(conn: Connection, related: pa.Table, now: datetime) -> None:
    """Replace the related accounts with this map's (a small table: the same brand abroad)."""
    conn.execute(delete(RelatedAccount))
    rows = [
        {**{k: r[k] for k in ("account_id", "partner_id", "partner_account_id", "relationship",
                              "method")},
         "probability": round(float(r["probability"]), 6),
         "evidence": json.loads(r["evidence"]) if r["evidence"] else None, "mapped_at": now}
        for r in related.to_pylist()
    ]
    if rows:
        conn.execute(insert(RelatedAccount), rows)


def state_folder(workspace: Workspace) -> Path:
    """Where the map stage keeps its fitted model and scored pairs between runs."""
    return workspace.path / ".doorstep" / "map"


def map_accounts(workspace: Workspace, *, progress: MapProgress | None = None,
                 full: bool = False) -> MapReport:
    """Match every partner's accounts against ours and bring the stored overlaps up to date.

    Re-running with unchanged inputs changes nothing; a changed partner file changes only the
    overlaps it affects. The probabilistic tier is incremental: partner records already scored
    keep their scores, and only new or changed ones are scored, with the model the last full
    fit saved. A full fit runs when `full` asks for it, or when it is due: no saved model, our
    accounts changed, a new partner, or more than `[mapping] refit_share` of the partner
    records changed.
    """
    store = workspace.store
    with store.engine.connect() as conn:
        ours, theirs = _load(conn)
        partners = list(conn.execute(select(Partner.partner_id)).scalars())
    report = MapReport(warnings=_partners_without_keys(theirs, partners))
    settings = workspace.config.mapping
    # what it keeps holds partner records: readable by the workspace's owner only
    state_folder(workspace).parent.mkdir(mode=0o700, exist_ok=True)
    matched = find_matches(
        ours,
        theirs,
        threshold=settings.threshold,
        progress=progress,
        workers=settings.workers or None,
        state_dir=state_folder(workspace),
        full=full,
        refit_share=settings.refit_share,
    )
    found, related, run = matched.overlaps, matched.related, matched.run
    report.mode, report.mode_reason = run.mode, run.reason
    report.rescored, report.gone = run.rescored, run.gone
    now = datetime.now(UTC).replace(tzinfo=None)
    key = ("account_id", "partner_id", "partner_account_id")
    wanted = {tuple(r[k] for k in key): r for r in found.to_pylist()}
    with store.engine.begin() as conn:
        hold_stage_lock(conn)  # another map at once waits, then diffs against what it wrote
        existing = {
            (r.account_id, r.partner_id, r.partner_account_id): r
            for r in conn.execute(select(Overlap))
        }
        gone = [k for k in existing if k not in wanted]
        for start in range(0, len(gone), 500):
            conn.execute(
                delete(Overlap).where(
                    tuple_(Overlap.account_id, Overlap.partner_id, Overlap.partner_account_id).in_(
                        gone[start : start + 500]
                    )
                )
            )
        new_rows, changed = [], []
        for k, r in wanted.items():
            evidence = json.loads(r["evidence"]) if r["evidence"] else None
            values = {
                "relationship": r["relationship"],
                "method": r["method"],
                "probability": round(float(r["probability"]), 6),
                "evidence": evidence,
            }
            old = existing.get(k)
            if old is None:
                new_rows.append({**dict(zip(key, k, strict=True)), **values, "mapped_at": now})
            elif (old.relationship, old.method, round(old.probability, 6), old.evidence) != tuple(
                values.values()
            ):
                changed.append((k, values))
        if new_rows:
            conn.execute(insert(Overlap), new_rows)
        _write_related(conn, related, now)
        for k, values in changed:
            conn.execute(
                update(Overlap)
                .where(
                    Overlap.account_id == k[0],
                    Overlap.partner_id == k[1],
                    Overlap.partner_account_id == k[2],
                )
                .values(**values, mapped_at=now)
            )
    report.inserted, report.updated, report.removed = len(new_rows), len(changed), len(gone)
    report.unchanged = len(wanted) - len(new_rows) - len(changed)
    report.overlaps = len(wanted)
    report.related = related.num_rows
    for r in wanted.values():
        report.by_method[r["method"]] = report.by_method.get(r["method"], 0) + 1
        report.by_partner[r["partner_id"]] = report.by_partner.get(r["partner_id"], 0) + 1
    return report
