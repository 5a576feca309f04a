"""Explaining a match: which fields agreed, the words aligned and every term of its log Bayes
factor, as the JSON evidence each overlap carries."""

from __future__ import annotations

from typing import Any

from doorstep.map.comparison import Comparison
from doorstep.map.levels import (
    FEATURES,
    LEVELS,
    WEBSITE_LEVELS,
    Country,
    Domain,
    Website,
    Words,
)
from doorstep.map.resolution import Floats


def evidence(cmp: Comparison, ratios: dict[str, Floats], field_lr: tuple[float, float, float],
             field_lvl: tuple[int, int, int], log_bf: float, prior: float, rivals: int,
             ) -> dict[str, Any]:
    """Return the explanation of one pair: fields agreed, words and every log-ratio term.

    `field_lr` and `field_lvl` are the country, domain and website terms and levels.
    """
    c_lr, d_lr, x_lr = field_lr
    c_lvl, d_lvl, x_lvl = field_lvl
    exact = cmp.levels.words in (Words.EXACT, Words.STRUCTURAL)
    agreed = ["name" if exact else "name_partial"]
    disagreed = []
    if c_lvl == Country.SAME:
        agreed.append("country")
    elif c_lvl == Country.DIFFERS:
        disagreed.append("country")
    if d_lvl == Domain.SAME:
        agreed.append("domain")
    elif d_lvl == Domain.SAME_LABEL:
        agreed.append("domain_label")
    elif d_lvl == Domain.DIFFERS:
        disagreed.append("domain")
    if x_lvl == Website.EQUAL:
        agreed.append("name_in_website")
    elif x_lvl == Website.DIFFERS:
        disagreed.append("name_in_website")
    terms: dict[str, float] = {"prior": round(prior, 3), "name_words_tf": round(cmp.tf, 3)}
    levels: dict[str, str] = {}
    for k, f in enumerate(FEATURES):
        lvl = cmp.levels[k]
        if lvl >= 0:
            levels[f] = LEVELS[f][lvl]
            terms[f] = round(float(ratios[f][lvl]), 3)
    if c_lvl >= 0:
        terms["country"] = round(c_lr, 3)
    if d_lvl >= 0:
        terms["domain"] = round(d_lr, 3)
    if x_lvl >= 0:
        terms["website"] = round(x_lr, 3)
        levels["website"] = WEBSITE_LEVELS[x_lvl]
    ev: dict[str, Any] = {
        "agreed": agreed,
        "name": {"matched": cmp.matched, "left_only": cmp.left_only,
                 "right_only": cmp.right_only, **levels},
        "log_bf": round(log_bf, 3),
        "terms": terms,
        "rivals": rivals,
    }
    if disagreed:
        ev["disagreed"] = disagreed
    return ev
