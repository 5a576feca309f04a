"""The mapping stage: match our accounts against every partner's accounts, store the overlaps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Connection, delete, insert, select, tuple_, update

from doorstep.map.canonical import canonicalise
from doorstep.store.models import Account, Opportunity, Overlap, Partner, PartnerAccount
from doorstep.workspace import Workspace

MapProgress = Callable[[str], None]

# Match probability recorded for each exact tier: an exact shared id is certain; a shared
# registrable domain (social, builder and free-mail sites excluded) almost so; the same
# normalised name in the same country with no conflicting domain is strong but not certain.
TIER_PROBABILITY = {"shared_id": 1.0, "domain": 0.99, "name_country": 0.97}


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
    warnings: list[str] = field(default_factory=list)


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


def _fuzzy(con: duckdb.DuckDBPyConnection, threshold: float) -> pa.Table:
    """Probabilistic tier for partner accounts no exact tier matched."""
    from doorstep.map.names import match_names

    left = con.sql("SELECT account_id AS id, name, country_code, domain FROM ours").to_arrow_table()
    right = con.sql("""
        SELECT partner_id || chr(31) || partner_account_id AS id, name, country_code, domain,
               partner_id AS "group"
        FROM theirs t
        WHERE NOT EXISTS (SELECT 1 FROM exact e WHERE e.partner_id = t.partner_id
                          AND e.partner_account_id = t.partner_account_id)
    """).to_arrow_table()
    return match_names(left, right, threshold=threshold)


def find_overlaps(
    ours: pa.Table, theirs: pa.Table, *, threshold: float, progress: MapProgress | None = None
) -> pa.Table:
    """Every (account, partner account) pair that is the same company, with method and evidence.

    Pure in its inputs: `ours` has account_id, name, website, country; `theirs` has partner_id,
    partner_account_id, name, website, country, relationship and shared_account_id.
    """
    con = duckdb.connect()
    if progress:
        progress("normalising websites, names and countries")
    canonicalise(con, ours, "ours")
    canonicalise(con, theirs, "theirs")
    if progress:
        progress("exact tiers: shared id, domain, name + country")
    con.execute(_EXACT_TIERS)
    if progress:
        progress("probabilistic tier on what is left")
    fuzzy = _fuzzy(con, threshold)
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
        )
        SELECT p.*, t.relationship FROM pairs p
        JOIN theirs t USING (partner_id, partner_account_id)
        ORDER BY partner_id, partner_account_id, account_id
    """).to_arrow_table()
    con.close()
    return result


def _partners_without_keys(theirs: pa.Table, partners: list[str]) -> list[str]:
    con = duckdb.connect()
    con.register("t", theirs)
    rows = con.sql("""
        SELECT partner_id, count(*) FROM t
        GROUP BY partner_id
        HAVING count(*) FILTER (WHERE coalesce(trim(name), '') <> ''
                                OR coalesce(trim(website), '') <> '') = 0
    """).fetchall()
    counts = dict(con.sql("SELECT partner_id, count(*) FROM t GROUP BY 1").fetchall())
    con.close()
    warnings = [
        f"partner {pid}: none of its {n:,} accounts has a usable name or website; "
        "nothing to match (check the partner's file)"
        for pid, n in rows
    ]
    warnings += [
        f"partner {pid} has no accounts in partner_accounts; nothing to match"
        for pid in partners
        if pid not in counts
    ]
    return warnings


def map_accounts(workspace: Workspace, *, progress: MapProgress | None = None) -> MapReport:
    """Match every partner's accounts against ours and bring the stored overlaps up to date.

    Re-running with unchanged inputs changes nothing; a changed partner file changes only the
    overlaps it affects.
    """
    store = workspace.store
    with store.engine.connect() as conn:
        ours, theirs = _load(conn)
        partners = list(conn.execute(select(Partner.partner_id)).scalars())
    report = MapReport(warnings=_partners_without_keys(theirs, partners))
    found = find_overlaps(
        ours, theirs, threshold=workspace.config.mapping.threshold, progress=progress
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    key = ("account_id", "partner_id", "partner_account_id")
    wanted = {tuple(r[k] for k in key): r for r in found.to_pylist()}
    with store.engine.begin() as conn:
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
    for r in wanted.values():
        report.by_method[r["method"]] = report.by_method.get(r["method"], 0) + 1
        report.by_partner[r["partner_id"]] = report.by_partner.get(r["partner_id"], 0) + 1
    return report


POPULATIONS = ("customers", "open opportunities", "prospects")


def overlap_matrix(workspace: Workspace) -> dict[str, dict[tuple[str, str], int]]:
    """Per partner: counts of overlapping accounts by our population × partner relationship.

    Our population: a customer (is_customer), else an account with an open opportunity,
    else a prospect.
    """
    with workspace.store.engine.connect() as conn:
        open_accounts = set(
            conn.execute(
                select(Opportunity.account_id).where(Opportunity.closed_at.is_(None))
            ).scalars()
        )
        customers = set(
            conn.execute(select(Account.account_id).where(Account.is_customer.is_(True))).scalars()
        )
        rows = conn.execute(
            select(Overlap.partner_id, Overlap.account_id, Overlap.relationship).distinct()
        ).all()
    matrix: dict[str, dict[tuple[str, str], int]] = {}
    for partner_id, account_id, relationship in rows:
        population = (
            "customers"
            if account_id in customers
            else "open opportunities"
            if account_id in open_accounts
            else "prospects"
        )
        cell = matrix.setdefault(partner_id, {})
        cell[(population, relationship)] = cell.get((population, relationship), 0) + 1
    return matrix
