"""The probabilistic name matcher's driver: profiles, blocking, comparison, fit, resolution and
explanation, in that order, each step in its own module.

The engine links two account tables (left: ours, right: a partner's) on company names, using
country and registrable domain as further evidence when present. It is a Fellegi-Sunter model,
as in Splink, with comparison levels designed for company names (`levels`):

1. **Profiles** (`profiles`): each distinct name once, its words in matching form.
2. **Blocking** (`blocking`): DuckDB joins the two sides on name keys.
3. **Comparison** (`comparison`, `records`): the words of each candidate pair are aligned and
   the pair placed in a level of each feature; country, domain and website spelling are
   compared per record pair.
4. **Fit** (`fit`): u from pairs within one list, the number of matches by EM, without labels.
   A name's evidence is capped by how often a different, similarly named company exists (a
   subsidiary abroad, a look-alike), so that a different country, domain or legal form can
   still veto.
5. **Resolution** (`resolution`): each pair's posterior against the other candidates of both
   records.
6. **Explanation** (`explain`): which fields agreed and every term of the log Bayes factor.

`fit_names` runs every step and returns, beside the matches, a `MatchState`: the fitted model
and every scored pair. `relink_names` takes that state and a changed right side, scores only
the right records it has not seen with the same model, and resolves again: the matches are
exactly those a full run with that model would give. `match_names` is the one-shot form.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from doorstep.map.blocking import candidates, key_counts, keys_table, spelling_keys
from doorstep.map.comparison import compare
from doorstep.map.explain import evidence as explain_pair
from doorstep.map.fit import Fitted, NameModel, fit, pair_terms, within_list_u
from doorstep.map.levels import FEATURES
from doorstep.map.parallel import MIN_PARALLEL_ITEMS, map_ranges
from doorstep.map.params import DEFAULT_PARAMS, MatchParams
from doorstep.map.profiles import NameProfile, TokenStats, profile
from doorstep.map.records import FieldStats, Side, field_log_ratios, record_keys, side_of
from doorstep.map.resolution import Floats, Ints, posterior, rival_groups

log = logging.getLogger(__name__)

# Per scored record pair: what resolution and explanation need, keyed by the right record's
# identity (`records.record_key`) and our record's position.
PAIR_SCHEMA = pa.schema([
    ("rkey", pa.string()), ("group", pa.string()), ("lrec", pa.int64()),
    ("log_bf", pa.float64()), ("capped", pa.float64()), ("c_lr", pa.float64()),
    ("d_lr", pa.float64()), ("web", pa.float64()), ("c_lvl", pa.int64()),
    ("d_lvl", pa.int64()), ("x_lvl", pa.int64()),
])

EXPLAINED_SCHEMA = pa.schema([("rkey", pa.string()), ("lrec", pa.int64()),
                              ("signature", pa.string()), ("evidence", pa.string())])

_EMPTY = pa.table({"left_id": pa.array([], pa.string()), "right_id": pa.array([], pa.string()),
                   "probability": pa.array([], pa.float64()),
                   "evidence": pa.array([], pa.string())})


@dataclass
class MatchState:
    """What a full fit learned, kept so that a later run scores new records the same way.

    Everything that couples records is here, fixed until the next full fit: word and key
    frequencies, m and u, each group's prior and cap, country and domain frequencies, and every
    scored pair (a pair's probability depends on its rivals').
    """

    params: MatchParams
    stats: TokenStats
    fitted: Fitted
    groups: list[str]  # right groups (partners), in the order of `fitted`'s arrays
    fields: FieldStats
    # key, nl, nr; and pid, key: tables, or (read back from a saved state) relations DuckDB
    # scans where they lie
    counts: pa.Table | str
    left: Side
    left_keys: pa.Table | str
    pairs: pa.Table  # PAIR_SCHEMA
    right_keys: pa.Array  # every right record scored, with or without a candidate
    members: Sequence[list[str]] = field(default_factory=list)  # left ids per left record
    # the evidence of each pair last chosen (rkey, lrec, signature, evidence), reused while
    # its rivals and probabilities stay as they were
    explained: pa.Table = field(default_factory=lambda: EXPLAINED_SCHEMA.empty_table())
    # right records the model was fitted on, and those added or dropped by re-links since
    fitted_records: int = 0
    changed_since_fit: int = 0


@dataclass
class Relinked:
    """What a re-link scored: right records new since the state, and those gone."""

    new_records: int = 0
    gone_records: int = 0


def _compare_pairs(left: Sequence[NameProfile], right: Sequence[NameProfile], lp: list[int],
                   rp: list[int], stats: TokenStats, workers: int | None) -> tuple[Floats, Ints]:
    """Return the term-frequency score and comparison levels of each (lp, rp) name pair."""

    def task(start: int, stop: int) -> tuple[Floats, Ints]:
        tf: list[float] = []
        levels: list[tuple[int, ...]] = []
        for a, b in zip(lp[start:stop], rp[start:stop], strict=True):
            c = compare(left[a], right[b], stats)
            tf.append(c.tf)
            levels.append(c.levels)
        return (np.array(tf, np.float64),
                np.array(levels, np.int64).reshape(-1, len(FEATURES)))

    if len(lp) >= MIN_PARALLEL_ITEMS:
        stats.prepare()  # built once here, not once per worker
    parts = map_ranges(task, len(lp), workers=workers)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cluster_index(side: Side) -> Ints | None:
    """Return a cluster number per record (records without a cluster alone), or None."""
    if not any(side.cluster):
        return None
    codes: dict[Any, int] = {}
    return np.array([codes.setdefault(c if c else ("", i), len(codes))
                     for i, c in enumerate(side.cluster)], np.int64)


@dataclass
class _Features:
    """The comparison of every candidate record pair, before any model."""

    lrec: Ints
    rrec: Ints
    tf: Floats
    levels: Ints
    c_lr: Floats
    d_lr: Floats
    c_lvl: Ints
    d_lvl: Ints
    x_lvl: Ints


def _all_keys(side: Side, stats: TokenStats, *, ours: bool, workers: int | None) -> pa.Table:
    """Return a side's blocking keys: its names' and its websites' spellings'."""
    return pa.concat_tables([keys_table(side.profiles, stats, workers=workers),
                             spelling_keys(side, ours=ours)])


def _features(con: duckdb.DuckDBPyConnection, lside: Side, rside: Side, lkeys: pa.Table | str,
              stats: TokenStats, counts: pa.Table | str, fields: FieldStats,
              params: MatchParams, workers: int | None, clock: _Clock,
              rkeys: pa.Table | None = None) -> _Features:
    """Block, compare names and compare records: every candidate pair's evidence."""
    if rkeys is None:
        rkeys = _all_keys(rside, stats, ours=False, workers=workers)
    names = candidates(con, lkeys, rkeys, stats.n, params, counts=counts)
    clock.lap(f"candidates: {len(names):,} name pairs")
    tf, levels = _compare_pairs(lside.profiles, rside.profiles, names.lp.tolist(),
                                names.rp.tolist(), stats, workers)
    clock.lap("compared")
    keep = np.isfinite(tf)
    names = names[keep].reset_index(drop=True)
    tf, levels = tf[keep], levels[keep]
    names["cmp"] = np.arange(len(names))
    pairs = _record_pairs(con, names, lside, rside)
    lrec = pairs["lrec"].to_numpy(np.int64)
    rrec = pairs["rrec"].to_numpy(np.int64)
    cmp_idx = pairs["cmp"].to_numpy(np.int64)
    c_lr, d_lr, c_lvl, d_lvl, x_lvl = field_log_ratios(lside, rside, lrec, rrec, fields, workers)
    clock.lap(f"record pairs: {len(lrec):,}")
    return _Features(lrec, rrec, tf[cmp_idx], levels[cmp_idx], c_lr, d_lr, c_lvl, d_lvl, x_lvl)


def _pair_table(f: _Features, rside: Side, fitted: Fitted, groups: list[str]) -> pa.Table:
    """Score feature rows with a fitted model: the rows `MatchState.pairs` keeps."""
    code = {g: k for k, g in enumerate(groups)}
    rgroup = [str(g) for g in rside.group]
    gcode = np.array([code[g] for g in rgroup], np.int64)[f.rrec] if len(f.rrec) else \
        np.zeros(0, np.int64)
    log_bf, capped, web = pair_terms(fitted.model, fitted.web_log_ratios, f.levels, f.tf,
                                     f.c_lr + f.d_lr, f.x_lvl, fitted.group_cap[gcode])
    rows = pa.array(f.rrec, pa.int64())
    return pa.table({
        "rkey": pa.array([rside.key(r) for r in range(len(rside.name_pid))],
                         pa.string()).take(rows),
        "group": pa.array(rgroup, pa.string()).take(rows),
        "lrec": pa.array(f.lrec, pa.int64()), "log_bf": pa.array(log_bf, pa.float64()),
        "capped": pa.array(capped, pa.float64()), "c_lr": pa.array(f.c_lr, pa.float64()),
        "d_lr": pa.array(f.d_lr, pa.float64()), "web": pa.array(web, pa.float64()),
        "c_lvl": pa.array(f.c_lvl, pa.int64()), "d_lvl": pa.array(f.d_lvl, pa.int64()),
        "x_lvl": pa.array(f.x_lvl, pa.int64()),
    }, schema=PAIR_SCHEMA)


def fit_names(left: pa.Table | pd.DataFrame, right: pa.Table | pd.DataFrame, *,
              params: MatchParams = DEFAULT_PARAMS, workers: int | None = None,
              ) -> MatchState | None:
    """Fit the model on both sides and score every candidate pair (None: a side is empty)."""
    clock = _Clock()
    lside = side_of(left, workers=workers)
    rside = side_of(right, by_text=True, workers=workers)
    if not len(lside.name_pid) or not len(rside.name_pid):
        return None
    stats = TokenStats([*lside.profiles, *rside.profiles], params.unseen_token_count)
    clock.lap(f"profiles: {len(lside.profiles):,} and {len(rside.profiles):,} names")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        lnames = keys_table(lside.profiles, stats, workers=workers)
        rnames = keys_table(rside.profiles, stats, workers=workers)
        # within one list, only names are blocked on: u is about names
        u = within_list_u([(lside.profiles, lnames), (rside.profiles, rnames)], stats, params,
                          con)
        clock.lap("u from within-list pairs")
        lkeys = pa.concat_tables([lnames, spelling_keys(lside, ours=True)])
        rkeys = pa.concat_tables([rnames, spelling_keys(rside, ours=False)])
        del lnames, rnames
        counts = key_counts(con, lkeys, rkeys)
        clock.lap(f"blocking keys: {lkeys.num_rows + rkeys.num_rows:,}")
        fields = FieldStats.measure(lside, rside, params)
        f = _features(con, lside, rside, lkeys, stats, counts, fields, params, workers, clock,
                      rkeys)
    finally:
        con.close()
    # a right group is a list of its own: its records compete only with each other
    group_names, rec_group = np.unique(np.array([str(g) for g in rside.group]),
                                       return_inverse=True)
    n_right = np.bincount(rec_group, minlength=len(group_names))
    group = rec_group[f.rrec]
    lkey = f.lrec * len(group_names) + group
    clusters = _cluster_index(lside)
    fitted = fit(f.levels, f.tf, f.c_lr + f.d_lr, f.x_lvl, lkey, f.rrec,
                 None if clusters is None else clusters[f.lrec], group, len(lside.name_pid),
                 n_right, u, params)
    groups = [str(g) for g in group_names]
    pairs = _pair_table(f, rside, fitted, groups)
    clock.lap("fitted")
    all_keys = pa.array(sorted({rside.key(r) for r in range(len(rside.name_pid))}), pa.string())
    return MatchState(params, stats, fitted, groups, fields, counts, lside, lkeys, pairs,
                      all_keys, _members(lside), fitted_records=len(all_keys))


def relink_names(state: MatchState, right: pa.Table, *, workers: int | None = None,
                 keys: pa.Array | None = None,
                 ) -> tuple[MatchState, Relinked]:
    """Score the right records `state` has not seen with its model, drop those gone.

    `right` is the whole right side as it is now, with the columns `fit_names` took. Returns
    the new state (same model, pairs brought up to date).
    """
    clock = _Clock()
    keys = record_keys(right) if keys is None else keys
    seen = pc.is_in(keys, value_set=state.right_keys)
    fresh = right.filter(pc.invert(seen))
    now_keys = pa.array(sorted(set(keys.to_pylist())), pa.string())
    gone = pc.invert(pc.is_in(state.right_keys, value_set=now_keys))
    report = Relinked(gone_records=int(pc.sum(gone).as_py() or 0))
    pairs = state.pairs.filter(pc.is_in(state.pairs["rkey"], value_set=now_keys))
    unknown = set(fresh.column("group").to_pylist()) - set(state.groups) \
        if fresh.num_rows else set()
    if unknown:
        raise ValueError(f"groups {sorted(unknown)} were not in the fit; a full fit is needed")
    if fresh.num_rows:
        rside = side_of(fresh, by_text=True, workers=workers)
        report.new_records = len(rside.name_pid)
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        try:
            f = _features(con, state.left, rside, state.left_keys, state.stats, state.counts,
                          state.fields, state.params, workers, clock)
        finally:
            con.close()
        new = _pair_table(f, rside, state.fitted, state.groups)
        pairs = pa.concat_tables([pairs, new])
    relinked = MatchState(state.params, state.stats, state.fitted, state.groups, state.fields,
                          state.counts, state.left, state.left_keys, pairs, now_keys,
                          state.members, state.explained, state.fitted_records,
                          state.changed_since_fit + report.new_records + report.gone_records)
    return relinked, report


def resolve_names(state: MatchState, right: pa.Table, *, threshold: float,
                  keys: pa.Array | None = None) -> pa.Table:
    """Resolve every scored pair against its rivals; return (left_id, right_id, probability,
    evidence) rows at or above `threshold`, for the right rows of `right` (ids in `id`).

    Keeps the chosen pairs' evidence in `state.explained`, and explains again only pairs
    whose rivals or probabilities moved since.
    """
    clock = _Clock()
    con = duckdb.connect()
    try:
        con.register("pairs_in", state.pairs)
        # one fixed order, whichever run scored which pair: sums are then added alike
        pairs = con.sql("SELECT * FROM pairs_in ORDER BY rkey, lrec").to_arrow_table()
    finally:
        con.close()
    if not pairs.num_rows:
        return _EMPTY
    group = pc.index_in(pairs["group"], value_set=pa.array(state.groups, pa.string()))
    group = group.to_numpy().astype(np.int64)
    lrec = pairs["lrec"].to_numpy()
    # sorted by rkey: equal keys are adjacent, and each run is one right record
    rkeys = pairs["rkey"].combine_chunks()
    starts = pc.not_equal(rkeys.slice(1), rkeys.slice(0, len(rkeys) - 1)).to_numpy(
        zero_copy_only=False) if len(rkeys) > 1 else np.zeros(0, bool)
    rrec = np.concatenate([[0], np.cumsum(starts)]).astype(np.int64)
    lkey = lrec * len(state.groups) + group
    clusters = _cluster_index(state.left)
    groups = rival_groups(rrec, None if clusters is None else clusters[lrec])
    prior = state.fitted.group_prior[group]
    log_bf = pairs["log_bf"].to_numpy()
    rivals_p, alone = posterior(log_bf + prior, pairs["capped"].to_numpy() + prior, lkey, rrec,
                                groups)
    prob = np.minimum(rivals_p, alone)
    chosen = np.flatnonzero(prob >= threshold)
    rivals = np.bincount(lkey)[lkey] + np.bincount(rrec)[rrec] - 2
    ratios = state.fitted.model.log_ratios()
    keys = record_keys(right) if keys is None else keys
    matched = pc.is_in(keys, value_set=pairs["rkey"].take(pa.array(chosen, pa.int64())))
    rmembers: dict[str, list[str]] = {}
    for k, i in zip(keys.filter(matched).to_pylist(),
                    right.column("id").filter(matched).to_pylist(), strict=True):
        rmembers.setdefault(k, []).append(str(i))
    rows_l: list[str] = []
    rows_r: list[str] = []
    probs: list[float] = []
    evidence: list[str] = []
    picked = pa.array(chosen, pa.int64())
    rkey = dict(zip(chosen.tolist(), pairs["rkey"].take(picked).to_pylist(), strict=True))
    numbers = {c: pairs[c].to_numpy() for c in ("c_lr", "d_lr", "web", "c_lvl", "d_lvl",
                                                "x_lvl")}
    left = state.left
    before = {(r, i): (sig, ev) for r, i, sig, ev in zip(
        *(state.explained[c].to_pylist() for c in EXPLAINED_SCHEMA.names), strict=True)}
    explained: dict[str, list[Any]] = {c: [] for c in EXPLAINED_SCHEMA.names}
    for k in chosen.tolist():
        i = int(lrec[k])
        against, own = round(float(rivals_p[k]), 4), round(float(alone[k]), 4)
        signature = f"{int(rivals[k])}|{against}|{own}"
        sig, text = before.get((rkey[k], i), ("", ""))
        if sig != signature:
            lp = left.profiles[int(left.name_pid[i])]
            # the right record's name is the second part of its key (`records.record_key`)
            cmp = compare(lp, profile(rkey[k].split("\x1f")[1]), state.stats,
                          explain=True)
            ev = explain_pair(cmp, ratios, (float(numbers["c_lr"][k]),
                                            float(numbers["d_lr"][k]), float(numbers["web"][k])),
                              (int(numbers["c_lvl"][k]), int(numbers["d_lvl"][k]),
                               int(numbers["x_lvl"][k])), float(log_bf[k]), float(prior[k]),
                              int(rivals[k]))
            ev["probability"] = {"against_rivals": against, "alone": own}
            text = json.dumps(ev, sort_keys=True)
        for column, value in zip(EXPLAINED_SCHEMA.names, (rkey[k], i, signature, text),
                                 strict=True):
            explained[column].append(value)
        for a in state.members[i]:
            for b in rmembers.get(rkey[k], ()):
                rows_l.append(a)
                rows_r.append(b)
                probs.append(float(prob[k]))
                evidence.append(text)
    state.explained = pa.table(explained, schema=EXPLAINED_SCHEMA)
    clock.lap(f"explained {len(chosen):,} matches")
    return pa.table({
        "left_id": pa.array(rows_l, pa.string()),
        "right_id": pa.array(rows_r, pa.string()),
        "probability": pa.array(probs, pa.float64()),
        "evidence": pa.array(evidence, pa.string()),
    })


def match_names(left: pa.Table | pd.DataFrame, right: pa.Table | pd.DataFrame, *,
                threshold: float = 0.9, params: MatchParams = DEFAULT_PARAMS,
                return_model: bool = False, workers: int | None = None) -> Any:
    """Match two account tables on names (and country and domain when present).

    Each side has `id` and `name` (or an already normalised `name_key`), and optionally
    `country` (any spelling) or `country_code` (ISO alpha-2), and `domain` (an identifying
    registrable domain) or `website` (any form; social and free-mail sites are ignored).
    A right-side `group` column (e.g. partner id) makes each group a separate list: its
    records compete only with each other. Returns a pyarrow table of (left_id, right_id,
    probability, evidence) with probability >= threshold, evidence a JSON string; with
    `return_model`, also the fitted `NameModel`.

    Both sides may also carry `hint` (what a non-identifying website spells, see
    `normalize.website_hint`; computed from `website` when absent) and the left side `cluster`:
    records known to be one company, which then compete for a right record as one. `workers`
    caps the processes used (None: every core).
    """
    left, right = _arrow(left), _arrow(right)
    state = fit_names(left, right, params=params, workers=workers)
    if state is None:
        return (_EMPTY, NameModel({}, {})) if return_model else _EMPTY
    out = resolve_names(state, right, threshold=threshold)
    return (out, state.fitted.model) if return_model else out


def _arrow(table: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(table, pd.DataFrame):
        return pa.Table.from_pandas(table, preserve_index=False)
    return table


class _Clock:
    """Logs how long each step of a match took."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self, what: str) -> None:
        """Log one step's duration."""
        now = time.perf_counter()
        log.info("%s (%.1fs, %.1fs in all)", what, now - self.last, now - self.start)
        self.last = now


def _members(side: Side) -> list[list[str]]:
    """Return the input ids of each record profile."""
    out: list[list[str]] = [[] for _ in side.name_pid]
    for rid, i in zip(side.record.tolist(), side.ids.to_pylist(), strict=True):
        out[rid].append(i)
    return out


def _record_pairs(con: duckdb.DuckDBPyConnection, names: pd.DataFrame, left: Side,
                  right: Side) -> pd.DataFrame:
    """Expand name-profile pairs to record-profile pairs."""
    con.register("np_", names[["lp", "rp", "cmp"]])
    con.register("lrec_", pa.table({"lrec": np.arange(len(left.name_pid)), "lp": left.name_pid}))
    con.register("rrec_", pa.table({"rrec": np.arange(len(right.name_pid)),
                                    "rp": right.name_pid}))
    out = con.execute("""
        SELECT l.lrec, r.rrec, n.cmp FROM np_ n
        JOIN lrec_ l USING (lp) JOIN rrec_ r USING (rp)
        ORDER BY l.lrec, r.rrec
    """).df()
    for view in ("np_", "lrec_", "rrec_"):
        con.unregister(view)
    return out
