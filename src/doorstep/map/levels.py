"""Comparison levels: how two records can agree on each feature, as named types.

Each comparison of two names falls in one level per name feature, and each record pair in one
level of country, domain and website spelling; `NULL` (-1) is the null level (no information,
log ratio 0), e.g. a legal form missing on either side. Arrays of levels hold the enums' values.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

NULL = -1


class Words(IntEnum):
    """How the words neither name explains fall."""

    EXACT = 0  # every word explained
    STRUCTURAL = 1  # only structural words ("Group") left over
    ONE_EXTRA = 2  # one identifying word trailing on one side
    EXTRAS = 3  # several trailing on one side
    INNER = 4  # an unexplained word inside one name
    SWAPPED = 5  # "Acme Group" / "Acme Freight": a structural word against a real one
    CONFLICT = 6  # both names have words the other lacks


class First(IntEnum):
    """Do the first identifying words of the two names align with each other."""

    SAME = 0
    DIFFERS = 1


class Kind(IntEnum):
    """The least certain alignment used: same word, joined words, acronym, one typo."""

    WORD = 0
    JOINED = 1
    ACRONYM = 2
    TYPO = 3


class Legal(IntEnum):
    """Legal-form families, where both names have one."""

    SAME = 0
    DIFFERS = 1


class Numbers(IntEnum):
    """Numbers in the names, where either has one ("Fund 3" never meets "Fund 4")."""

    SAME = 0
    ONE_SIDE = 1


class Country(IntEnum):
    """Country codes, where both records have one."""

    SAME = 0
    DIFFERS = 1


class Domain(IntEnum):
    """Identifying registrable domains, where both records have one."""

    SAME = 0
    SAME_LABEL = 1  # the same label under another suffix: acme.com / acme.de
    DIFFERS = 2


class Website(IntEnum):
    """How what one record's website spells (its domain label, a social handle, a mailbox)
    meets the other record's name, where the two do not both have an identifying domain."""

    EQUAL = 0
    PREFIX = 1
    DIFFERS = 2


class NameLevels(NamedTuple):
    """The level of each name feature of one comparison (`NULL` where it says nothing)."""

    words: int
    first: int
    kind: int
    legal: int
    numbers: int


NAME_FEATURES: dict[str, type[IntEnum]] = {
    "words": Words, "first": First, "kind": Kind, "legal": Legal, "numbers": Numbers,
}
FEATURES = tuple(NAME_FEATURES)
assert FEATURES == NameLevels._fields

# The level names of each name feature, as the evidence spells them.
LEVELS: dict[str, tuple[str, ...]] = {
    f: tuple(level.name.lower() for level in enum) for f, enum in NAME_FEATURES.items()
}
WEBSITE_LEVELS = tuple(level.name.lower() for level in Website)

# m probabilities: how often a true pair falls in each level (the share of pairs of one
# company's names, e.g. a common name and a legal name, that differ this way). Set by judgement
# and used as they are unless `MatchParams.estimate_m` asks for EM, where they are the
# Dirichlet prior. EM is off by default: on lists full of look-alikes it learns that conflicts
# are common among matches and reinforces itself.
PRIOR_M: dict[str, tuple[float, ...]] = {
    "words": (0.80, 0.085, 0.075, 0.03, 0.002, 0.006, 0.002),
    "first": (0.97, 0.03),
    "kind": (0.95, 0.02, 0.015, 0.015),
    "legal": (0.90, 0.10),
    "numbers": (0.98, 0.02),
}

# Reference u probabilities: the share of candidate pairs of two different companies in each
# level, measured (no labels needed) on the SEC's list of US registrants. They are the prior
# of the u measured on the lists at hand, worth `MatchParams.u_prior_pairs` pairs, so that a
# small input still gets sensible values.
REFERENCE_U: dict[str, tuple[float, ...]] = {
    "words": (0.004, 0.006, 0.024, 0.009, 0.025, 0.029, 0.903),
    "first": (0.19, 0.81),
    "kind": (0.918, 0.003, 0.044, 0.035),
    "legal": (0.72, 0.28),
    "numbers": (0.18, 0.82),
}

# How the names of two different but related companies (a subsidiary abroad, a look-alike
# such as "Northwind Analytics" / "Northwind Freight") differ, per `Words` level. Such pairs
# bound what a name can prove: the name evidence is capped at
# log(records / name_twin_rate * m / namesake share) for its level.
NAMESAKE_WORDS = (0.15, 0.10, 0.15, 0.10, 0.05, 0.15, 0.30)

# `Website` levels: the same string ("knoxromerologistics.com" / "Knox & Romero Logistics"),
# one the start of the other, or different. m by judgement; u re-estimated on the candidate
# pairs, each weighted by how unlikely it is to be a match, starting from `WEBSITE_U`.
WEBSITE_M = (0.75, 0.10, 0.15)
WEBSITE_U = (0.01, 0.09, 0.90)
