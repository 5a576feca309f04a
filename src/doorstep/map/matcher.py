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

`match_names` returns (left_id, right_id, probability, evidence) rows at or above a threshold.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from doorstep.map.blocking import candidates, keys_table
from doorstep.map.comparison import compare
from doorstep.map.explain import evidence as explain_pair
from doorstep.map.fit import NameModel, fit, within_list_u
from doorstep.map.levels import FEATURES
from doorstep.map.parallel import map_ranges
from doorstep.map.params import DEFAULT_PARAMS, MatchParams
from doorstep.map.profiles import NameProfile, TokenStats
from doorstep.map.records import Side, field_log_ratios, side_of
from doorstep.map.resolution import Floats, Ints

log = logging.getLogger(__name__)


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
    clock = _Clock()
    lside, rside = side_of(left), side_of(right)
    if not len(lside.name_pid) or not len(rside.name_pid):
        empty = pa.table({"left_id": pa.array([], pa.string()),
                          "right_id": pa.array([], pa.string()),
                          "probability": pa.array([], pa.float64()),
                          "evidence": pa.array([], pa.string())})
        return (empty, NameModel({}, {})) if return_model else empty
    stats = TokenStats([*lside.profiles, *rside.profiles], params.unseen_token_count)
    clock.lap(f"profiles: {len(lside.profiles):,} and {len(rside.profiles):,} names")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        lkeys, rkeys = keys_table(lside.profiles, stats), keys_table(rside.profiles, stats)
        clock.lap(f"blocking keys: {lkeys.num_rows + rkeys.num_rows:,}")
        names = candidates(con, lkeys, rkeys, stats.n, params)
        clock.lap(f"candidates: {len(names):,} name pairs")
        u = within_list_u([(lside.profiles, lkeys), (rside.profiles, rkeys)], stats, params, con)
        clock.lap("u from within-list pairs")
        name_tf, name_levels = _compare_pairs(lside.profiles, rside.profiles, names.lp.tolist(),
                                              names.rp.tolist(), stats, workers)
        clock.lap("compared")
        keep = np.isfinite(name_tf)
        names = names[keep].reset_index(drop=True)
        name_tf, name_levels = name_tf[keep], name_levels[keep]
        names["cmp"] = np.arange(len(names))
        pairs = _record_pairs(con, names, lside, rside)
    finally:
        con.close()
    lrec = pairs["lrec"].to_numpy(np.int64)
    rrec = pairs["rrec"].to_numpy(np.int64)
    cmp_idx = pairs["cmp"].to_numpy(np.int64)
    tf = name_tf[cmp_idx]
    levels = name_levels[cmp_idx]
    c_lr, d_lr, c_lvl, d_lvl, x_lvl = field_log_ratios(lside, rside, lrec, rrec, params,
                                                        workers)
    # a right group is a list of its own: its records compete only with each other
    group_names, rec_group = np.unique(np.array([str(g) for g in rside.group]),
                                       return_inverse=True)
    n_right = np.bincount(rec_group, minlength=len(group_names))
    group = rec_group[rrec]
    lkey = lrec * len(group_names) + group
    clock.lap(f"record pairs: {len(lrec):,}")
    clusters = _cluster_index(lside)
    fitted = fit(levels, tf, c_lr + d_lr, x_lvl, lkey, rrec,
               None if clusters is None else clusters[lrec], group, len(lside.name_pid), n_right,
               u, params)
    model, prob = fitted.model, fitted.probability
    clock.lap("fitted")
    chosen = np.flatnonzero(prob >= threshold)
    ratios = model.log_ratios()
    rows_l: list[str] = []
    rows_r: list[str] = []
    probs: list[float] = []
    evidence: list[str] = []
    lmembers = _members(lside)
    rmembers = _members(rside)
    rivals = np.bincount(lkey, minlength=1)[lkey] + np.bincount(rrec, minlength=1)[rrec] - 2
    for k in chosen.tolist():
        i, j = int(lrec[k]), int(rrec[k])
        lp, rp = lside.profiles[lside.name_pid[i]], rside.profiles[rside.name_pid[j]]
        cmp = compare(lp, rp, stats, explain=True)
        ev = explain_pair(cmp, ratios, (float(c_lr[k]), float(d_lr[k]), float(fitted.website[k])),
                           (int(c_lvl[k]), int(d_lvl[k]), int(x_lvl[k])), float(fitted.log_bf[k]),
                           float(fitted.prior[k]), int(rivals[k]))
        ev["probability"] = {"against_rivals": round(float(fitted.against_rivals[k]), 4),
                             "alone": round(float(fitted.alone[k]), 4)}
        text = json.dumps(ev, sort_keys=True)
        for a in lmembers[i]:
            for b in rmembers[j]:
                rows_l.append(a)
                rows_r.append(b)
                probs.append(float(prob[k]))
                evidence.append(text)
    clock.lap(f"explained {len(chosen):,} matches")
    out = pa.table({
        "left_id": pa.array(rows_l, pa.string()),
        "right_id": pa.array(rows_r, pa.string()),
        "probability": pa.array(probs, pa.float64()),
        "evidence": pa.array(evidence, pa.string()),
    })
    return (out, model) if return_model else out


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


