"""Which opportunity belongs to which lead, and what became of every lead, in DuckDB.

The rules, in order:

1. An opportunity whose `lead_id` names a known lead belongs to that lead alone, whenever it
   was created: the CRM recorded where it came from.
2. Any other opportunity is attributed by account: to a lead on its account created at or
   before it and at most `window_days` before it. When several leads of one type qualify
   (two MQLs on one account), the opportunity goes to the most recent of them, the last touch
   before the opportunity (ties: the larger lead key); so each opportunity counts at most once
   per lead type, while an EQL and an MQL on the same account may both claim it.

Then each lead falls in exactly one state, checked in this order:

- `no_account`: no account to attribute by; left out of the rate (only a named opportunity
  could find it, so counting it would undercount its type).
- `open`: its window has not closed yet (created less than `window_days` before `now`). Left
  out of the rate even if it already has an opportunity: counting early converters while
  dropping young non-converters would inflate the rate. Kaplan–Meier uses these leads,
  censored at their age.
- `influenced`: its account was already in open pipeline when the lead was created; it is
  measured separately from the leads that could have sourced pipeline.
- `measured`: the rate's denominator; it converted when it has an attributed opportunity.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import duckdb
import pyarrow as pa

NO_ACCOUNT = "no_account"
OPEN = "open"
INFLUENCED = "influenced"
MEASURED = "measured"
STATES = (NO_ACCOUNT, OPEN, INFLUENCED, MEASURED)

NAMED = "named"
BY_ACCOUNT = "account"

# Columns attribution needs; `leads` may carry more (segments, partner, warmth) and they are kept.
LEAD_COLUMNS = ("lead_key", "lead_id", "lead_type", "account_id", "created_at")
OPPORTUNITY_COLUMNS = (
    "opportunity_id", "account_id", "created_at", "amount", "closed_at", "is_won", "lead_id",
)

_ATTRIBUTIONS_SQL = """
CREATE OR REPLACE TEMP TABLE lead_rows AS
SELECT row_number() OVER () AS row_id, * FROM leads;

CREATE OR REPLACE TEMP TABLE attributions AS
WITH marked AS (
    SELECT o.opportunity_id, o.account_id, o.created_at, o.lead_id,
           coalesce(o.lead_id IN (SELECT lead_id FROM lead_rows), false) AS named
    FROM opportunities o
),
named AS (
    SELECT o.opportunity_id, l.row_id, l.lead_key, l.lead_type, 'named' AS how
    FROM marked o JOIN lead_rows l ON o.lead_id = l.lead_id
    WHERE o.named
),
by_account AS (
    SELECT o.opportunity_id, l.row_id, l.lead_key, l.lead_type, 'account' AS how
    FROM marked o JOIN lead_rows l ON o.account_id = l.account_id
    WHERE NOT o.named
      AND o.created_at >= l.created_at
      AND o.created_at <= l.created_at + INTERVAL ({window}) DAY
    QUALIFY row_number() OVER (
        PARTITION BY o.opportunity_id, l.lead_type
        ORDER BY l.created_at DESC, l.lead_key DESC
    ) = 1
)
SELECT * FROM named
UNION ALL
SELECT * FROM by_account
"""

_OUTCOMES_SQL = """
CREATE OR REPLACE TEMP TABLE lead_outcomes AS
WITH found AS (
    SELECT a.row_id,
           count(*) AS opportunities,
           min(o.created_at) AS first_opportunity_at,
           sum(coalesce(o.amount, 0)) AS pipeline,
           coalesce(bool_or(o.is_won), false) AS won,
           bool_or(o.is_won IS NOT NULL) AS decided
    FROM attributions a JOIN opportunities o USING (opportunity_id)
    GROUP BY a.row_id
),
in_pipeline AS (
    SELECT DISTINCT l.row_id
    FROM lead_rows l JOIN opportunities o ON o.account_id = l.account_id
    WHERE o.created_at < l.created_at
      AND coalesce(o.closed_at > l.created_at, o.is_won IS NULL)
      AND o.lead_id IS DISTINCT FROM l.lead_id
)
SELECT l.*,
       CASE
           WHEN l.account_id IS NULL THEN 'no_account'
           WHEN l.created_at + INTERVAL ({window}) DAY > $now THEN 'open'
           WHEN p.row_id IS NOT NULL THEN 'influenced'
           ELSE 'measured'
       END AS state,
       coalesce(f.opportunities, 0) AS opportunities,
       coalesce(f.opportunities, 0) > 0 AS converted,
       f.first_opportunity_at,
       CASE WHEN f.first_opportunity_at IS NOT NULL
            THEN greatest(date_diff('second', l.created_at, f.first_opportunity_at), 0) / 86400.0
       END AS days_to_opportunity,
       coalesce(f.pipeline, 0) AS pipeline,
       coalesce(f.won, false) AS won,
       coalesce(f.decided, false) AS decided,
       greatest(date_diff('second', l.created_at, $now), 0) / 86400.0 AS age_days
FROM lead_rows l
LEFT JOIN found f USING (row_id)
LEFT JOIN in_pipeline p USING (row_id)
"""


def attribute_opportunities(
    con: duckdb.DuckDBPyConnection, *, window_days: int, now: datetime
) -> None:
    """Create `attributions` and `lead_outcomes` in `con` from its `leads` and `opportunities`.

    `leads` has one row per lead and type (a lead may be counted under two types, e.g.
    `candidate` and `candidate:fit`) with at least LEAD_COLUMNS; `opportunities` has
    OPPORTUNITY_COLUMNS with timestamps as TIMESTAMP and is_won as BOOLEAN.
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days}")
    window = int(window_days)
    con.execute(_ATTRIBUTIONS_SQL.format(window=window))
    con.execute(_OUTCOMES_SQL.format(window=window), {"now": now})


def lead_outcomes(
    leads: pa.Table, opportunities: pa.Table, *, window_days: int, now: datetime
) -> tuple[pa.Table, pa.Table]:
    """Attribute opportunities to leads given as Arrow tables; returns (outcomes, attributions).

    A convenience over `attribute_opportunities` for callers and tests holding Arrow tables.
    """
    con = duckdb.connect()
    try:
        con.register("leads_input", leads)
        con.register("opportunities_input", opportunities)
        con.execute("CREATE TEMP TABLE leads AS SELECT * FROM leads_input")
        con.execute("CREATE TEMP TABLE opportunities AS SELECT * FROM opportunities_input")
        attribute_opportunities(con, window_days=window_days, now=now)
        outcomes = con.sql(
            "SELECT * EXCLUDE (row_id) FROM lead_outcomes ORDER BY lead_key, lead_type"
        ).to_arrow_table()
        attributions = con.sql(
            "SELECT * EXCLUDE (row_id) FROM attributions "
            "ORDER BY opportunity_id, lead_type, lead_key"
        ).to_arrow_table()
    finally:
        con.close()
    return outcomes, attributions


_HOLDOUT_SALT = b"doorstep-holdout:"


def is_holdout(lead_id: str, share: float) -> bool:
    """Whether a lead belongs to the holdout that gets no motion: a stable pseudo-random draw
    from a hash of its id, true for about `share` of all leads."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    digest = hashlib.sha256(_HOLDOUT_SALT + lead_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64
