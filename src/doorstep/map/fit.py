"""Fitting the model without labels: u from pairs within one list, the number of matches by EM.

The u probabilities of the name levels are measured on candidate pairs of two names of one
list, which name different companies; the m probabilities are set by judgement (`PRIOR_M`), or
estimated by EM on request. The prior odds that two records match come from the expected number
of matches, re-estimated from the posteriors a few times, per right-side group (a partner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from doorstep.map.blocking import candidates
from doorstep.map.comparison import compare
from doorstep.map.levels import (
    FEATURES,
    LEVELS,
    NAMESAKE_WORDS,
    PRIOR_M,
    REFERENCE_U,
    WEBSITE_LEVELS,
    WEBSITE_M,
    WEBSITE_U,
)
from doorstep.map.params import MatchParams
from doorstep.map.profiles import NameProfile, TokenStats
from doorstep.map.resolution import Floats, Ints, posterior, rival_groups


@dataclass
class NameModel:
    """m and u probabilities of every comparison level, and how they were obtained."""

    m: dict[str, Floats]
    u: dict[str, Floats]
    matches: float = 0.0

    def log_ratios(self) -> dict[str, Floats]:
        """Return log(m/u) per feature, with a trailing 0 for the null level (index -1)."""
        return {f: np.append(np.log(self.m[f] / self.u[f]), 0.0) for f in FEATURES}


def _level_counts(levels: Ints, weights: Floats | None = None) -> dict[str, Floats]:
    """Return the (weighted) count of pairs in each level of each feature."""
    out = {}
    for k, f in enumerate(FEATURES):
        col = levels[:, k]
        ok = col >= 0
        w = None if weights is None else weights[ok]
        out[f] = np.bincount(col[ok], weights=w, minlength=len(LEVELS[f])).astype(np.float64)
    return out


def _estimate_u(levels: Ints, prior_pairs: float) -> dict[str, Floats]:
    """Return u probabilities from within-list pairs, shrunk towards `REFERENCE_U`."""
    counts = _level_counts(levels)
    out = {}
    for f, c in counts.items():
        prior = np.array(REFERENCE_U[f]) * prior_pairs
        out[f] = (c + prior) / (c.sum() + prior.sum())
    return out



@dataclass
class Fitted:
    """The fitted model: m and u of every level, and per right group (a partner) the prior log
    odds that two of its records match and the cap on what a name alone can prove."""

    model: NameModel
    web_log_ratios: Floats  # log(m/u) of each `Website` level
    group_prior: Floats
    group_cap: Floats


def pair_terms(model: NameModel, web_log_ratios: Floats, levels: Ints, tf: Floats,
               fields: Floats, website: Ints, cap: Floats) -> tuple[Floats, Floats, Floats]:
    """Return each pair's log Bayes factor, the same with its name part capped, and its
    website term.

    `fields` is the country and domain evidence, `cap` the group's cap on the name evidence
    (`Fitted.group_cap`), before the namesake share of the pair's `Words` level.
    """
    ratios = model.log_ratios()
    legal_k = FEATURES.index("legal")
    # legal forms, like countries, tell a company from its namesake abroad: not capped
    legal = ratios["legal"][levels[:, legal_k]]
    name = tf + sum(ratios[f][levels[:, k]] for k, f in enumerate(FEATURES)) - legal
    web = np.append(web_log_ratios, 0.0)[website]
    log_bf = name + legal + fields + web
    words = levels[:, FEATURES.index("words")]
    cap = cap + np.log(model.m["words"] / np.array(NAMESAKE_WORDS))[words]
    capped = -np.logaddexp(-name, -cap) + legal + fields + web
    return log_bf, capped, web


def fit(levels: Ints, tf: Floats, fields: Floats, website: Ints, lkey: Ints, rkey: Ints,
        lclus: Ints | None, group: Ints, n_left: int, n_right: Ints, u: dict[str, Floats],
        params: MatchParams) -> Fitted:
    """Fit the number of matches per group (and m, if asked) by EM.

    `website` holds each pair's website level (-1: not compared); the u of its levels is
    re-estimated each round from the pairs, weighted by how unlikely each is to match.
    """
    m = {f: np.array(PRIOR_M[f], np.float64) for f in FEATURES}
    small = np.minimum(n_left, n_right).astype(np.float64)
    large = np.maximum(n_left, n_right).astype(np.float64)
    matches: Floats = params.initial_overlap * small
    model = NameModel(m, u, float(matches.sum()))
    web_m, web_u = np.array(WEBSITE_M), np.array(WEBSITE_U)
    web_seen = website >= 0
    groups = rival_groups(rkey, lclus)
    group_cap = np.log(large / params.name_twin_rate)
    fitted = Fitted(model, np.log(web_m / web_u), np.zeros(len(small)), group_cap)
    for _ in range(max(params.iterations, 1)):
        web_lr = np.log(web_m / web_u)
        log_bf, capped, _web = pair_terms(model, web_lr, levels, tf, fields, website,
                                          group_cap[group])
        # each right group is a list of its own, with its own share of matches
        rho = np.clip(matches / small, 1.0 / small, params.max_overlap)
        group_prior = np.log(rho / (1 - rho) / large)
        prior = group_prior[group]
        rivals, alone = posterior(log_bf + prior, capped + prior, lkey, rkey, groups)
        p = np.minimum(rivals, alone)
        # the model these probabilities came from
        fitted = Fitted(NameModel(dict(model.m), u, float(p.sum())), web_lr, group_prior,
                        group_cap)
        matches = np.bincount(group, weights=p, minlength=len(small)).astype(np.float64)
        web_counts = np.bincount(website[web_seen], weights=1.0 - p[web_seen],
                                 minlength=len(WEBSITE_LEVELS))
        web_prior = np.array(WEBSITE_U) * params.u_prior_pairs
        web_u = (web_counts + web_prior) / (web_counts.sum() + web_prior.sum())
        new_m = model.m
        if params.estimate_m:
            counts = _level_counts(levels, p)
            new_m = {}
            for f in FEATURES:
                prior_m = np.array(PRIOR_M[f]) * params.prior_strength
                new_m[f] = (counts[f] + prior_m) / (counts[f].sum() + prior_m.sum())
        model = NameModel(new_m, u, float(matches.sum()))
    fitted.model.m["website"] = web_m
    fitted.model.u["website"] = web_m / np.exp(fitted.web_log_ratios)
    return fitted


def within_list_u(sides: Sequence[tuple[Sequence[NameProfile], pa.Table]], stats: TokenStats,
                   params: MatchParams, con: duckdb.DuckDBPyConnection) -> dict[str, Floats]:
    """Estimate u from candidate pairs of two different names of one list (other companies).

    A sample of each list's names is blocked against the whole list, as in matching, so that
    the pairs are as alike as the candidates of a real match; then a sample of pairs is scored.
    """
    rng = np.random.default_rng(params.seed)
    chunks: list[tuple[int, ...]] = []
    for profiles, keys in sides:
        n = len(profiles)
        anchors = np.arange(n) if n <= params.u_sample else rng.choice(n, params.u_sample, False)
        pairs = candidates(con, keys, keys, stats.n, params,
                            pa.table({"pid": pa.array(anchors, pa.int32())}))
        if len(pairs) > params.u_pairs:
            pairs = pairs.sample(params.u_pairs, random_state=params.seed)
        for a, b in zip(pairs.lp.tolist(), pairs.rp.tolist(), strict=True):
            c = compare(profiles[a], profiles[b], stats)
            if c.possible:
                chunks.append(c.levels)
    levels = np.array(chunks, np.int64).reshape(-1, len(FEATURES))
    return _estimate_u(levels, params.u_prior_pairs)


