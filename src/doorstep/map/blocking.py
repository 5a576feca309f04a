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

from doorstep.map.normalize import MIN_HINT_LENGTH
from doorstep.map.parallel import map_ranges
from doorstep.map.params import MatchParams
from doorstep.map.profiles import NameProfile, TokenStats, deletions
from doorstep.map.records import Side, label
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
    initials = ""
    for t in content[:6]:
        initials += t[0]
        if len(initials) >= 2:
            keys.add("t:" + initials)
    if len(content) > 1:
        ranked = sorted(content, key=lambda t: (stats.df.get(t, 0), t))
        keys.add("p:" + " ".join(sorted(ranked[:2])))
    rare = [t for t in content if len(t) >= 5 and not t.isdigit()]
    if rare:
        keys.update("d:" + d for d in deletions(min(rare, key=lambda t: (stats.df[t], t))))
    return keys


def keys_table(profiles: Sequence[NameProfile], stats: TokenStats,
               chunk: int = 50_000, workers: int | None = None) -> pa.Table:
    """Return (pid, key) rows for every blocking key of every profile.

    Built `chunk` profiles at a time, so that the keys are held as Python strings only a chunk
    at a time (tens of millions of them would take gigabytes); the chunks are spread over
    `workers` processes (None: every core).
    """

    def task(start: int, stop: int) -> pa.Table:
        parts = []
        for begin in range(start, stop, chunk):
            pid: list[int] = []
            key: list[str] = []
            for i in range(begin, min(begin + chunk, stop)):
                ks = blocking_keys(profiles[i], stats)
                pid.extend([i] * len(ks))
                key.extend(ks)
            parts.append(pa.table({"pid": pa.array(pid, pa.int32()),
                                   "key": pa.array(key, pa.string())}))
        if not parts:
            return pa.table({"pid": pa.array([], pa.int32()), "key": pa.array([], pa.string())})
        return pa.concat_tables(parts)

    return pa.concat_tables(map_ranges(task, len(profiles), workers=workers)).combine_chunks()


# Prefixes of the keys that pair what one side's websites spell with the other side's names:
# our websites' spellings ("w:") meet their names, their websites' spellings ("n:") ours.
_SPELLING_KEYS = {True: ("w:", "n:"), False: ("n:", "w:")}


def spelling_keys(side: Side, *, ours: bool) -> pa.Table:
    """Return (pid, key) rows that pair a website spelling a name with that name elsewhere.

    A partner record "Eriksson Corp." whose LinkedIn handle is `eriksson-enterprises` shares
    no rare word with our "Eriksson Enterprises" beyond a common surname, but its handle spells
    our name: such a pair must be compared. Keys hold, per name, the strings it is spelled as
    (`NameProfile.labels`), and per record, what its website spells beyond its own name (domain
    label, handle); our website keys meet their name keys and the other way round.
    """
    web, name = _SPELLING_KEYS[ours]
    rows: set[tuple[int, str]] = set()
    for pid, p in enumerate(side.profiles):
        rows.update((pid, name + x) for x in p.labels)
    for rec, pid in enumerate(side.name_pid.tolist()):
        labels = side.profiles[pid].labels
        for x in (label(side.domain[rec]), side.hint[rec]):
            if x and len(x) >= MIN_HINT_LENGTH and x not in labels:
                rows.add((pid, web + x))
    ordered = sorted(rows)
    return pa.table({"pid": pa.array([r[0] for r in ordered], pa.int32()),
                     "key": pa.array([r[1] for r in ordered], pa.string())})


def key_counts(con: duckdb.DuckDBPyConnection, lk: pa.Table, rk: pa.Table) -> pa.Table:
    """Return (key, nl, nr): how many left and right names hold each key the left side has."""
    con.register("lk_", lk)
    con.register("rk_", rk)
    try:
        return con.sql("""
            WITH kl AS (SELECT key, count(*) AS nl FROM lk_ GROUP BY key),
            kr AS (SELECT key, count(*) AS nr FROM rk_ GROUP BY key)
            SELECT key, nl, coalesce(nr, 0) AS nr FROM kl LEFT JOIN kr USING (key)
            ORDER BY key
        """).to_arrow_table()
    finally:
        con.unregister("lk_")
        con.unregister("rk_")


def candidates(con: duckdb.DuckDBPyConnection, lk: pa.Table | str, rk: pa.Table, n: int,
               params: MatchParams, anchors: pa.Table | None = None,
               counts: pa.Table | str | None = None) -> pd.DataFrame:
    """Join two key tables into candidate (lp, rp) pairs: each right name keeps its best left
    names by summed key weight. With `anchors`, only those left pids pair, never with
    themselves, and each keeps its best right names.

    `counts` (from `key_counts`, or a relation's name) fixes how common each key is, as a
    fitted model does, so that a name scored later meets the candidates it would have met in
    the full run; by default they are counted on `lk` and `rk`. `lk` may be a relation's name.
    """
    registered = []

    def register(name: str, table: pa.Table) -> str:
        con.register(name, table)
        registered.append(name)
        return name

    left = lk if isinstance(lk, str) else register("lk", lk)
    register("rk", rk)
    if counts is None:
        lk_table = lk if not isinstance(lk, str) else con.table(lk).to_arrow_table()
        counts_rel = register("counts", key_counts(con, lk_table, rk))
    elif isinstance(counts, str):
        counts_rel = counts
    else:
        counts_rel = register("counts", counts)
    k = params.candidates_per_profile
    left_rows = left
    not_self = ""
    best_of = "rp"
    if anchors is not None:
        register("anchors", anchors)
        left_rows = f"(SELECT * FROM {left} SEMI JOIN anchors USING (pid))"
        not_self = "WHERE l.pid <> r.pid"
        best_of = "lp"
    other = "lp" if best_of == "rp" else "rp"
    # a key no right name held when the counts were made counts once: the name's own
    out = con.execute(f"""
        WITH good AS (
            -- only the keys the right side holds: the counts may be a model's, of every key
            SELECT key, ln({n} / (nl + greatest(nr, 1))) AS w
            FROM {counts_rel} SEMI JOIN (SELECT DISTINCT key FROM rk) USING (key)
            WHERE nl * greatest(nr, 1) <= {params.max_key_pairs} OR key LIKE 'f:%'
        ),
        right_keys AS (SELECT r.pid, r.key, g.w FROM rk r JOIN good g USING (key)),
        pairs AS (
            -- rounded, so that the order in which threads add up does not break ties
            SELECT l.pid AS lp, r.pid AS rp, round(sum(r.w), 9) AS s
            FROM right_keys r JOIN {left_rows} l USING (key)
            {not_self}
            GROUP BY ALL
        )
        SELECT lp, rp FROM pairs
        QUALIFY row_number() OVER (PARTITION BY {best_of} ORDER BY s DESC, {other}) <= {k}
        ORDER BY lp, rp
    """).df()
    for name in registered:
        con.unregister(name)
    return out
