"""Blocking: which pairs of names are compared at all.

Each name gets keys (its words, adjacent words joined, acronyms, the whole name, its rarest
word's one-deletion variants for typos); DuckDB joins the two sides' keys, drops keys that would
pair too many names, and keeps each name's best candidates by summed inverse key frequency.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from doorstep.map.params import DEFAULT_PARAMS, MatchParams
from doorstep.map.profiles import NameProfile, TokenStats, deletions
from doorstep.map.vocabulary import content as content_words


def blocking_keys(p: NameProfile, stats: TokenStats) -> set[str]:
    """Return a name's blocking keys: whole name, words, joined words, acronyms, typo variants."""
    content = content_words(p.tokens)
    if not content:
        return set()
    keys = {"f:" + " ".join(sorted(p.tokens))}
    keys.update("t:" + t for t in content)
    for size in (2, 3):
        for i in range(len(p.tokens) - size + 1):
            keys.add("t:" + "".join(p.tokens[i:i + size]))
    for size in range(2, min(len(content), 6) + 1):
        keys.add("t:" + "".join(t[0] for t in content[:size]))
    if len(content) > 1:
        ranked = sorted(content, key=lambda t: (stats.df.get(t, 0), t))
        keys.add("p:" + " ".join(sorted(ranked[:2])))
    rare = [t for t in content if len(t) >= 5 and not t.isdigit()]
    if rare:
        keys.update("d:" + d for d in deletions(min(rare, key=lambda t: (stats.df[t], t))))
    return keys


def keys_table(profiles: Sequence[NameProfile], stats: TokenStats) -> pa.Table:
    """Return (pid, key) rows for every blocking key of every profile."""
    pid: list[int] = []
    key: list[str] = []
    for i, p in enumerate(profiles):
        ks = blocking_keys(p, stats)
        pid.extend([i] * len(ks))
        key.extend(ks)
    return pa.table({"pid": pa.array(pid, pa.int32()), "key": pa.array(key, pa.string())})


def candidate_pairs(left: Sequence[NameProfile], right: Sequence[NameProfile],
                    stats: TokenStats, params: MatchParams = DEFAULT_PARAMS) -> pd.DataFrame:
    """Return candidate (lp, rp) pairs of indices into `left` and `right`."""
    con = duckdb.connect()
    try:
        return candidates(con, keys_table(left, stats), keys_table(right, stats), stats.n,
                           params)
    finally:
        con.close()


def candidates(con: duckdb.DuckDBPyConnection, lk: pa.Table, rk: pa.Table, n: int,
                params: MatchParams, anchors: pa.Table | None = None) -> pd.DataFrame:
    """Join two key tables into candidate pairs; with anchors, only those left pids, not self."""
    con.register("lk", lk)
    con.register("rk", rk)
    k = params.candidates_per_profile
    left_rows = "lk"
    not_self = ""
    if anchors is not None:
        con.register("anchors", anchors)
        left_rows = "(SELECT * FROM lk SEMI JOIN anchors USING (pid))"
        not_self = "WHERE l.pid <> r.pid"
    out = con.execute(f"""
        WITH kl AS (SELECT key, count(*) AS nl FROM lk GROUP BY key),
        kr AS (SELECT key, count(*) AS nr FROM rk GROUP BY key),
        good AS (
            SELECT key, ln({n} / (nl + nr)) AS w FROM kl JOIN kr USING (key)
            WHERE nl * nr <= {params.max_key_pairs} OR key LIKE 'f:%'
        ),
        pairs AS (
            -- rounded, so that the order in which threads add up does not break ties
            SELECT l.pid AS lp, r.pid AS rp, round(sum(g.w), 9) AS s
            FROM {left_rows} l JOIN good g USING (key) JOIN rk r USING (key)
            {not_self}
            GROUP BY ALL
        )
        SELECT lp, rp FROM pairs
        QUALIFY row_number() OVER (PARTITION BY lp ORDER BY s DESC, rp) <= {k}
             OR row_number() OVER (PARTITION BY rp ORDER BY s DESC, lp) <= {k}
        ORDER BY lp, rp
    """).df()
    for view in ("lk", "rk", "anchors"):
        if anchors is not None or view != "anchors":
            con.unregister(view)
    return out


