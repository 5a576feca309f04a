"""Resolution between rivals: a pair's probability against the other candidates of both records.

Each pair's posterior is normalised against the other candidates of its two records, so that
"Hilton" facing "Hilton Worldwide Holdings" and "Hilton Grand Vacations" is a confident match to
neither; our own records known to be one company count as one rival.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RivalGroups:
    """Pairs grouped by (right record, left cluster): each group is one rival for the right
    record. Depends only on which pairs there are, so it is built once per fit."""

    order: Ints  # pairs sorted by group
    starts: Ints  # where each group begins in `order`
    member: Ints  # each pair's group
    rkey: Ints  # each group's right record


def rival_groups(rkey: Ints, lclus: Ints | None) -> RivalGroups | None:
    """Group the pairs of left records of one cluster per right record, or None (no clusters)."""
    if lclus is None or not len(rkey):
        return None
    joint = rkey * (int(lclus.max()) + 1) + lclus
    order = np.argsort(joint, kind="stable")
    sorted_joint = joint[order]
    starts = np.flatnonzero(np.r_[True, sorted_joint[1:] != sorted_joint[:-1]])
    member = np.empty(len(rkey), np.int64)
    member[order] = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rkey)]))
    return RivalGroups(order, starts, member, rkey[order][starts])


def posterior(lo: Floats, capped: Floats, lkey: Ints, rkey: Ints,
               groups: RivalGroups | None = None) -> tuple[Floats, Floats]:
    """Return each pair's match probability against its rivals, and on its own.

    Against rivals: e / (1 + sum over the left record's candidates + sum over the right
    record's candidates - e), with e the prior odds times the Bayes factor. Left records known
    to be one company (`groups`, e.g. our regional duplicates) are one rival, not several: they
    count once, with their best e. On its own: the logistic of the prior plus the evidence with
    the name's part capped (a similarly named other company exists now and then). A pair's
    probability is the smaller of the two.
    """
    e = np.exp(np.minimum(lo, 60.0))
    row = np.bincount(lkey, weights=e)[lkey]
    if groups is None:
        col = np.bincount(rkey, weights=e)[rkey]
        own = e
    else:
        best = np.maximum.reduceat(e[groups.order], groups.starts)
        own = best[groups.member]
        col = np.bincount(groups.rkey, weights=best, minlength=int(rkey.max()) + 1)[rkey]
    rivals = np.asarray(e / (1.0 + row + col - own), np.float64)
    alone = np.asarray(1.0 / (1.0 + np.exp(-np.clip(capped, -60.0, 60.0))), np.float64)
    return rivals, alone


