"""Probabilistic company-name matching: blocking, explainable evidence and match probabilities.

The engine links two account tables (left: ours, right: a partner's) on company names, using
country and registrable domain as further evidence when present. It is a Fellegi-Sunter model,
as in Splink, with comparison levels designed for company names:

1. **Profiles.** Each distinct name is normalised once (`normalize.name_tokens`: folded, legal
   form stripped, initials merged) and its words put in matching form: common business
   abbreviations expanded ("tech" -> "technology"), plurals folded, roman numerals made digits.
   The legal form of the raw name ("Inc", "plc", "GmbH") is kept as separate evidence.
2. **Candidates.** DuckDB joins the two sides on blocking keys: words, adjacent words joined
   ("super micro" -> "supermicro"), acronyms ("bank of new york" -> "bny"), the rarest word's
   one-deletion variants (typos) and the whole name. Keys that would pair too many records are
   dropped; each name keeps its best candidates by summed inverse key frequency.
3. **Evidence.** The words of each candidate pair are aligned (same word, joined words,
   acronym, one typo) and the pair gets a log Bayes factor: a term-frequency part, where each
   agreeing word adds -log(share of other names holding it), in the spirit of Splink's
   term-frequency adjustments, plus log(m/u) of each comparison level: how the words neither
   name explains fall ("words": exact, only structural words such as "Group", one extra
   trailing word, ..., "swapped" as in "Acme Group"/"Acme Freight", a conflict where both
   names have words the other lacks), whether the first words agree, how words were aligned,
   legal forms, numbers ("Fund 3" never meets "Fund 4"), country (term-frequency adjusted) and
   domain. The u probabilities of the name levels are measured on candidate pairs of two names
   of one list, which name different companies; the m probabilities are set by judgement
   (`PRIOR_M`), or estimated by EM on request. A name's evidence is capped by how often a
   different, similarly named company exists (a subsidiary abroad, a look-alike), so that a
   different country, domain or legal form can still veto.
4. **Resolution.** The prior odds that two records match come from the expected number of
   matches, re-estimated from the posteriors a few times (per right-side group, e.g. partner),
   and each pair's posterior is normalised against the other candidates of both records, so
   that "Hilton" facing "Hilton Worldwide Holdings" and "Hilton Grand Vacations" is a
   confident match to neither.

`match_names` returns (left_id, right_id, probability, evidence) rows at or above a threshold;
`evidence` is JSON saying which fields agreed and every term of the log Bayes factor.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from rapidfuzz.distance import OSA

from doorstep.map.normalize import (
    MIN_HINT_LENGTH,
    identifying_domain,
    name_forms,
    name_tokens,
    normalise_country,
    website_hint,
)
from doorstep.map.parallel import map_ranges

__all__ = [
    "LEVELS",
    "PRIOR_M",
    "Comparison",
    "MatchParams",
    "NameModel",
    "NameProfile",
    "TokenStats",
    "blocking_keys",
    "candidate_pairs",
    "compare",
    "match_names",
    "profile",
    "regional_core",
]

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# --------------------------------------------------------------------------- vocabulary

# Common business abbreviations, expanded before comparison: general, never per company.
ABBREVIATIONS: dict[str, str] = {
    "tech": "technology", "techs": "technologies", "svc": "service", "svcs": "services",
    "srvcs": "services", "mgmt": "management", "mgt": "management", "assoc": "associates",
    "assocs": "associates", "assn": "association", "labs": "laboratories", "lab": "laboratory",
    "hldg": "holding", "hldgs": "holdings", "grp": "group", "finl": "financial",
    "fncl": "financial", "sys": "systems", "comms": "communications", "pharma":
    "pharmaceuticals", "pharm": "pharmaceutical", "bk": "bank", "ctr": "center", "centre":
    "center", "univ": "university", "dev": "development", "devel": "development", "engr":
    "engineering", "eng": "engineering", "inds": "industries", "amer": "american",
    "ins": "insurance", "prods": "products", "chem": "chemical", "mtg": "mortgage",
    "utd": "united", "hlth": "health", "resh": "research", "rlty": "realty",
    "ppty": "property", "pptys": "properties", "tr": "trust", "sci": "sciences", "solns":
    "solutions", "equip": "equipment", "distr": "distribution", "invt": "investment", "invts":
    "investments", "intl": "international", "natl": "national", "mfg": "manufacturing",
    "corp": "corporation", "bros": "brothers", "co": "company", "cos": "companies",
}

# Words with no identifying content of their own.
STOPWORDS = frozenset({"and", "of", "the", "de", "du", "des", "la", "le", "et", "y", "for"})

# Words saying how a company is organised rather than which company it is. Industry words
# ("systems", "brands", "technologies") are deliberately absent: "Northwind Systems" and
# "Northwind Brands" are two companies.
STRUCTURAL = frozenset({
    "group", "holding", "holdings", "company", "companies", "corporation", "incorporated",
    "enterprise", "enterprises", "international", "global", "worldwide", "limited",
})

# Regional qualifiers a CRM appends to a company's name for a regional record ("Acme (EMEA)",
# "Acme - Germany"): words and phrases, and country names. Only when they trail the name,
# since at the front they are the name ("Pacific Gas", "America Movil").
REGIONS = frozenset({
    "emea", "apac", "latam", "americas", "europe", "asia", "nordics", "benelux", "dach", "uk",
    "usa", "eu", "north america", "south america", "latin america", "central america",
    "southern europe", "northern europe", "western europe", "eastern europe", "central europe",
    "middle east", "asia pacific", "africa", "division", "branch", "subsidiary", "office", "hq",
    "headquarters", "region",
})

_ROMAN = {
    "ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "xi": "11",
    "xii": "12", "xiii": "13", "xiv": "14", "xv": "15", "xx": "20",
}
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_DIGIT = re.compile(r"\d")

# Legal forms, by family: forms of one family are interchangeable spellings ("Inc"/"Corp" in
# the US, "Ltd"/"Limited"); a name can carry several ("GmbH & Co. KG", "Corp plc").
_LEGAL_FAMILIES: dict[tuple[str, ...], str] = {
    ("inc",): "corp", ("incorporated",): "corp", ("corp",): "corp", ("corporation",): "corp",
    ("co",): "corp", ("company",): "corp",
    ("ltd",): "ltd", ("limited",): "ltd", ("pty", "ltd"): "ltd", ("pte", "ltd"): "ltd",
    ("pvt", "ltd"): "ltd", ("private", "limited"): "ltd", ("plc",): "plc",
    ("public", "limited", "company"): "plc", ("llc",): "llc", ("lp",): "lp", ("llp",): "llp",
    ("limited", "partnership"): "lp", ("gmbh",): "gmbh", ("ag",): "ag", ("kg",): "kg",
    ("co", "kg"): "kg",
    ("se",): "se", ("sa",): "sa", ("sas",): "sas", ("sarl",): "sarl", ("sl",): "sl",
    ("spa",): "spa", ("srl",): "srl", ("ltda",): "ltda", ("lda",): "lda",
    ("sa", "de", "cv"): "sadecv", ("nv",): "nv", ("bv",): "bv", ("ab",): "ab", ("as",): "as",
    ("asa",): "asa", ("oy",): "oy", ("oyj",): "oy", ("kk",): "kk", ("bhd",): "bhd",
    ("tbk",): "tbk",
}
_LEGAL_NOISE = frozenset({"the", "new", "de", "del", "class", "a", "b", "c", "adr", "cl"})
_RAW_WORD = re.compile(r"[a-z0-9]+")

# --------------------------------------------------------------------------- comparison levels

# Each comparison of two names falls in one level per feature; -1 is the null level (no
# information, log ratio 0), e.g. a legal form missing on either side.
LEVELS: dict[str, tuple[str, ...]] = {
    # how the words neither name explains fall
    "words": ("exact", "structural", "one_extra", "extras", "inner", "swapped", "conflict"),
    # do the first words of the two names align with each other
    "first": ("same", "differs"),
    # the least certain alignment used: same word, joined words, acronym, one typo
    "kind": ("word", "joined", "acronym", "typo"),
    "legal": ("same", "differs"),
    "numbers": ("same", "one_side"),
}
FEATURES = tuple(LEVELS)

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
# such as "Northwind Analytics" / "Northwind Freight") differ, per "words" level. Such pairs
# bound what a name can prove: the name evidence is capped at
# log(records / name_twin_rate * m / namesake share) for its level.
NAMESAKE_WORDS = (0.15, 0.10, 0.15, 0.10, 0.05, 0.15, 0.30)

# How what one record's website spells (its domain label, a social handle, a mailbox) meets the
# other record's name, where the two do not both have an identifying domain: the same string
# ("knoxromerologistics.com" / "Knox & Romero Logistics"), one the start of the other, or
# different. m by judgement; u re-estimated on the candidate pairs, each weighted by how unlikely
# it is to be a match, starting from `WEBSITE_U`.
WEBSITE_LEVELS = ("equal", "prefix", "differs")
WEBSITE_M = (0.75, 0.10, 0.15)
WEBSITE_U = (0.01, 0.09, 0.90)


@dataclass(frozen=True)
class MatchParams:
    """Settings of the matcher; log ratios are natural logs."""

    # A word seen in no other name counts this many times in its frequency estimate.
    unseen_token_count: float = 0.25
    # Share of companies with a different, similarly named company in the other list (a
    # subsidiary abroad, a look-alike): caps what a name can prove, so a country or domain
    # can veto.
    name_twin_rate: float = 0.02
    # country: P(same country | match); domain: P(same domain), P(same label, other suffix)
    country_m: float = 0.98
    domain_m: float = 0.85
    domain_label_m: float = 0.12
    # expected share of the smaller list that has a match, before the data says more
    initial_overlap: float = 0.5
    max_overlap: float = 0.95
    iterations: int = 5
    estimate_m: bool = False
    prior_strength: float = 200.0
    candidates_per_profile: int = 6
    max_key_pairs: int = 20_000
    u_sample: int = 20_000
    u_pairs: int = 25_000
    u_prior_pairs: float = 500.0
    seed: int = 7


DEFAULT_PARAMS = MatchParams()


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class NameProfile:
    """A name in matching form: its words, numbers and legal-form families."""

    tokens: tuple[str, ...]
    legal: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    # the name as a website would spell it: "acmefreight", "bankofamerica" and "bankamerica";
    # not part of the profile's identity (names that differ only in it are one name)
    labels: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def key(self) -> str:
        """Return the words joined by spaces."""
        return " ".join(self.tokens)


def _stem(token: str) -> str:
    """Fold an English plural to its singular so "technologies" meets "technology"."""
    if len(token) > 4 and not token[-1].isdigit():
        if token.endswith("ies"):
            return token[:-3] + "y"
        if token.endswith("s") and not token.endswith(("ss", "us", "is")):
            return token[:-1]
    return token


@lru_cache(maxsize=1 << 18)
def _matching_form(token: str) -> str:
    """Return a word's comparison form: abbreviation expanded, numbers canonical, singular."""
    token = ABBREVIATIONS.get(token, token)
    token = _ROMAN.get(token, token)
    m = _ORDINAL.match(token)
    if m:
        token = m.group(1)
    if token.isdigit():
        return token.lstrip("0") or "0"
    return _stem(token)


def _legal_families(name: str) -> frozenset[str]:
    """Return the legal-form families at the end of a raw name ("Eaton Corp plc": corp, ltd)."""
    merged: list[str] = []
    run = ""
    for w in [*_RAW_WORD.findall(name.lower()), ""]:
        if len(w) == 1 and w.isalpha():
            run += w
            continue
        if run:
            merged.append(run)
            run = ""
        if w:
            merged.append(w)
    families: set[str] = set()
    while merged:
        if merged[-1] in _LEGAL_NOISE:
            merged.pop()
            continue
        for size in (3, 2, 1):
            family = _LEGAL_FAMILIES.get(tuple(merged[-size:])) if len(merged) > size else None
            if family:
                families.add(family)
                del merged[-size:]
                break
        else:
            break
    return frozenset(families)


def profile(name: str, key: str | None = None, every: str | None = None) -> NameProfile:
    """Return the matching profile of one raw (or already normalised) company name.

    `key` and `every` are the name's `normalize.name_forms`, when the caller has them.
    """
    if key is None or every is None:
        key, every = name_forms(name)
    words = key.split()
    tokens = tuple(_matching_form(t) for t in words)
    numbers = frozenset(t for t in tokens if not t.isalpha() and _DIGIT.search(t))
    labels = {"".join(words), "".join(w for w in words if w not in STOPWORDS)}
    for cut in (1, 2):  # "acme emea" is spelled "acme" too
        if len(words) > cut and _is_region(tuple(words[-cut:])):
            labels.add("".join(words[:-cut]))
    raw = every.split()
    if words and raw[:len(words)] == list(words):  # and "acmecompany" for "Acme Company"
        labels.update("".join(raw[:k]) for k in range(len(words) + 1, len(raw) + 1))
    return NameProfile(tokens, _legal_families(name), numbers,
                       frozenset(x for x in labels if len(x) >= MIN_HINT_LENGTH))


def _content(tokens: Sequence[str]) -> list[str]:
    """Return the words that carry identity (not stopwords)."""
    return [t for t in tokens if t not in STOPWORDS]


# --------------------------------------------------------------------------- word statistics


class TokenStats:
    """Document frequencies of matching-form words over both sides' distinct names."""

    def __init__(self, profiles: Iterable[NameProfile], unseen: float = 0.25) -> None:
        self.df: Counter[str] = Counter()
        n = 0
        for p in profiles:
            self.df.update(set(p.tokens))
            n += 1
        self.n = max(n, 1)
        self.log_n = math.log(self.n)
        self.unseen = unseen
        # weights of a word shared by a pair (both names hold it) and held by one of them
        self.shared = {t: self.weight(t, 2) for t in self.df}
        self.single = {t: self.weight(t, 1) for t in self.df}

        self._deletes: dict[str, list[str]] | None = None
        self._near: dict[str, int] = {}

    def weight(self, token: str, own: int) -> float:
        """Return -log(share of names holding a word), not counting the pair's own `own` names."""
        seen = max(self.df.get(token, 0) - own, 0)
        return self.log_n - math.log(seen + self.unseen)

    def prepare(self) -> None:
        """Build the one-deletion index of the words, which typo weights need."""
        if self._deletes is None:
            self._deletes = {}
            for t in self.df:
                if len(t) >= 5 and not t.isdigit():
                    for d in _deletions(t):
                        self._deletes.setdefault(d, []).append(t)

    def near_count(self, token: str) -> int:
        """Return how many names hold a word one typo from `token` (itself included)."""
        count = self._near.get(token)
        if count is not None:
            return count
        self.prepare()
        assert self._deletes is not None
        near = {v for d in _deletions(token) for v in self._deletes.get(d, ())}
        count = sum(self.df[v] for v in near
                    if v[0] == token[0] and OSA.distance(token, v, score_cutoff=1) <= 1)
        self._near[token] = count
        return count

    def typo_weight(self, t: str, u: str) -> float:
        """Return -log(share of other names holding a word one typo from t or u)."""
        seen = max(max(self.near_count(t), self.near_count(u)) - 2, 0)
        return self.log_n - math.log(seen + self.unseen)


# --------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """The evidence two names give: term-frequency score, comparison levels and explanation."""

    tf: float
    levels: tuple[int, ...]
    matched: list[str] = field(default_factory=list)
    left_only: list[str] = field(default_factory=list)
    right_only: list[str] = field(default_factory=list)

    @property
    def possible(self) -> bool:
        """Return False when the names cannot be one company (different numbers, nothing shared)."""
        return math.isfinite(self.tf)


_IMPOSSIBLE = Comparison(-math.inf, (-1,) * len(FEATURES))
_LOG26 = math.log(26.0)
_LOG4 = math.log(4.0)
_KIND = {k: i for i, k in enumerate(LEVELS["kind"])}


@lru_cache(maxsize=1 << 18)
def _spans(tokens: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """Return the strings runs of words spell: joined ("supermicro") or as initials ("bny").

    Each maps to (start, end, how), how 1 for joined words and 2 for an acronym.
    """
    out: dict[str, tuple[int, int, int]] = {}
    n = len(tokens)
    for s in range(n):
        for e in range(s + 2, min(n, s + 4) + 1):
            out.setdefault("".join(tokens[s:e]), (s, e, 1))
    for s in range(n):
        if tokens[s] in STOPWORDS:
            continue
        letters = ""
        for e in range(s, n):
            if tokens[e] in STOPWORDS:
                continue
            letters += tokens[e][0]
            if len(letters) > 5:
                break
            if len(letters) >= 2:
                out.setdefault(letters, (s, e + 1, 2))
    return out


def compare(left: NameProfile, right: NameProfile, stats: TokenStats, explain: bool = False,
            ) -> Comparison:
    """Align two names' words and return the evidence that they are one company."""
    if left.numbers and right.numbers and left.numbers != right.numbers:
        return _IMPOSSIBLE
    a, b = left.tokens, right.tokens
    legal = -1
    if left.legal and right.legal:
        legal = 0 if left.legal & right.legal else 1
    numbers = -1
    if left.numbers or right.numbers:
        numbers = 0 if left.numbers == right.numbers else 1
    shared = stats.shared
    if a == b:  # the common case: one name, spelled two ways
        tf = sum(shared.get(t, 0.0) for t in a if t not in STOPWORDS)
        matched = [t for t in a if t not in STOPWORDS] if explain else []
        return Comparison(tf, (0, 0, 0, legal, numbers), matched)
    au, bu = [False] * len(a), [False] * len(b)
    tf = 0.0
    hits = 0
    kind = 0
    matched = []
    links: set[tuple[int, int]] = set()
    slots: dict[str, list[int]] = {}
    for j, t in enumerate(b):
        slots.setdefault(t, []).append(j)
    for i, t in enumerate(a):
        js = slots.get(t)
        if js:
            j = js.pop(0)
            au[i] = bu[j] = True
            links.add((i, j))
            if t not in STOPWORDS:
                tf += shared.get(t, 0.0)
                hits += 1
                if explain:
                    matched.append(t)
    if not all(au) and not all(bu):
        single = stats.single
        # joined words and acronyms, both ways round
        for x, y, xu, yu, flip in ((a, b, au, bu, False), (b, a, bu, au, True)):
            spans = None
            for i, t in enumerate(x):
                if xu[i] or t in STOPWORDS or len(t) < 2:
                    continue
                if spans is None:
                    spans = _spans(y)
                run = spans.get(t)
                if run is None:
                    continue
                s, e, how = run
                if any(yu[s:e]) or (how == 1 and len(t) < 4) or (how == 2 and len(t) > 5):
                    continue
                xu[i] = True
                for k in range(s, e):
                    yu[k] = True
                links.add((s, i) if flip else (i, s))
                w = single.get(t, 0.0)
                if how == 2:  # an acronym is at most as rare as its letters
                    w = min(w, len(t) * _LOG26 - _LOG4)
                tf += w
                hits += 1
                kind = max(kind, how)
                if explain:
                    parts = " ".join(y[s:e])
                    matched.append(f"{parts} = {t}" if flip else f"{t} = {parts}")
        # one typo in a longer word, past its first letter (where typos rarely fall) or the
        # first two letters swapped ("odlphin")
        for i, t in enumerate(a):
            if au[i] or len(t) < 5 or t.isdigit():
                continue
            for j, u in enumerate(b):
                if bu[j] or len(u) < 5 or abs(len(t) - len(u)) > 1:
                    continue
                if u[0] != t[0] and (u[0] != t[1] or u[1] != t[0]):
                    continue
                if OSA.distance(t, u, score_cutoff=1) <= 1:
                    au[i] = bu[j] = True
                    links.add((i, j))
                    tf += stats.typo_weight(t, u)
                    hits += 1
                    kind = 3
                    if explain:
                        matched.append(f"{t} ~ {u}")
                    break
    if not hits:
        return _IMPOSSIBLE
    lx, lwords = _extras(a, au, explain)
    rx, rwords = _extras(b, bu, explain)
    first = 0 if (_first(a), _first(b)) in links else 1
    return Comparison(tf, (_words_level(lx, rx), first, kind, legal, numbers), matched, lwords,
                      rwords)


def _first(tokens: Sequence[str]) -> int:
    """Return the position of the first identifying word."""
    for i, t in enumerate(tokens):
        if t not in STOPWORDS:
            return i
    return -1


def _extras(tokens: Sequence[str], used: Sequence[bool], explain: bool = False,
            ) -> tuple[tuple[int, int, int], list[str]]:
    """Count a side's unexplained words: (structural, identifying trailing, identifying inner)."""
    last = len(used) - 1
    while last >= 0 and not used[last]:
        last -= 1
    structural = trailing = inner = 0
    words: list[str] = []
    regional = last + 1 < len(tokens) and _is_region(tokens[last + 1:])
    for i, t in enumerate(tokens):
        if used[i] or t in STOPWORDS:
            continue
        if explain:
            words.append(t)
        if t in STRUCTURAL or t.isdigit() or (regional and i > last):
            structural += 1
        elif i > last:
            trailing += 1
        else:
            inner += 1
    return (structural, trailing, inner), words


@lru_cache(maxsize=1 << 14)
def _is_region(tail: tuple[str, ...]) -> bool:
    """Return True when trailing words name a region or a country ("north america", "germany")."""
    words = [t for t in tail if t not in STRUCTURAL]
    phrase = " ".join(words)
    if not phrase or phrase in REGIONS or all(t in REGIONS for t in words):
        return bool(phrase)
    return len(phrase) >= 4 and normalise_country(phrase) is not None


_REGIONAL_TAIL = re.compile(
    r"^(?P<head>.*\S)\s*(?:\((?P<paren>[^()]+)\)|\s[-\u2013\u2014]\s*(?P<dash>[^-\u2013\u2014()]+))\s*$"
)


def regional_core(name: str | None) -> str | None:
    """Return the normalised name of a regional record ("Acme (EMEA)", "Acme - Germany"), or None.

    A CRM often holds a company once per region, its name carrying the region in parentheses
    or after a dash; the name without it is the company's.
    """
    if not isinstance(name, str):
        return None
    m = _REGIONAL_TAIL.match(name.strip())
    if m is None:
        return None
    tail = tuple(name_tokens(m.group("paren") or m.group("dash") or ""))
    if not tail or not _is_region(tail):
        return None
    core = " ".join(name_tokens(m.group("head")))
    return core or None


def _words_level(lx: tuple[int, int, int], rx: tuple[int, int, int]) -> int:
    """Return the "words" level of two sides' unexplained-word counts."""
    lid, rid = lx[1] + lx[2], rx[1] + rx[2]
    if lid and rid:
        return 6
    if lid or rid:
        side, other = (lx, rx) if lid else (rx, lx)
        if other[0]:
            return 5  # "Acme Group" / "Acme Freight": a structural word against a real one
        if side[2]:
            return 4
        return 2 if side[1] == 1 else 3
    return 1 if lx[0] or rx[0] else 0


# --------------------------------------------------------------------------- blocking


def _deletions(token: str) -> set[str]:
    """Return a word and every string one deletion away from it."""
    return {token, *(token[:i] + token[i + 1:] for i in range(len(token)))}


def blocking_keys(p: NameProfile, stats: TokenStats) -> set[str]:
    """Return a name's blocking keys: whole name, words, joined words, acronyms, typo variants."""
    content = _content(p.tokens)
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
        keys.update("d:" + d for d in _deletions(min(rare, key=lambda t: (stats.df[t], t))))
    return keys


def _keys_table(profiles: Sequence[NameProfile], stats: TokenStats) -> pa.Table:
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
        return _candidates(con, _keys_table(left, stats), _keys_table(right, stats), stats.n,
                           params)
    finally:
        con.close()


def _candidates(con: duckdb.DuckDBPyConnection, lk: pa.Table, rk: pa.Table, n: int,
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


# --------------------------------------------------------------------------- the model


@dataclass
class NameModel:
    """m and u probabilities of every comparison level, and how they were obtained."""

    m: dict[str, Floats]
    u: dict[str, Floats]
    matches: float = 0.0

    def log_ratios(self) -> dict[str, Floats]:
        """Return log(m/u) per feature, with a trailing 0 for the null level (index -1)."""
        return {f: np.append(np.log(self.m[f] / self.u[f]), 0.0) for f in FEATURES}

    def to_dict(self) -> dict[str, Any]:
        """Return the model as plain data, for reports."""
        levels = {**LEVELS, "website": WEBSITE_LEVELS}
        return {
            f: {lvl: {"m": round(float(self.m[f][i]), 4), "u": round(float(self.u[f][i]), 4)}
                for i, lvl in enumerate(levels[f])}
            for f in levels if f in self.m and f in self.u
        }


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


# --------------------------------------------------------------------------- records


@dataclass
class _Side:
    """One side's records reduced to distinct (name, country, domain, ...) record profiles."""

    ids: pa.Array
    record: Ints  # record profile of each input row
    name_pid: Ints  # name profile of each record profile
    country: list[str | None]
    domain: list[str | None]
    profiles: list[NameProfile]
    group: list[str | None]
    # what a non-identifying website still spells (a social handle, a mailbox), per record
    hint: list[str | None]
    # records known to be one company (our own duplicate accounts), per record; None: alone
    cluster: list[str | None]


def _column(table: pa.Table, *names: str) -> list[Any] | None:
    """Return the first present column of `names` as a Python list, or None."""
    for n in names:
        if n in table.column_names:
            values: list[Any] = table.column(n).to_pylist()
            return values
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _side(table: pa.Table | pd.DataFrame) -> _Side:
    """Reduce an input table to record profiles."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    ids = table.column("id").cast(pa.string()).combine_chunks()
    names = _column(table, "name", "name_key")
    if names is None:
        raise ValueError("a side needs a `name` (or `name_key`) column")
    n = len(names)
    keys = _column(table, "name_key") if "name" in table.column_names else None
    every = _column(table, "name_words") if keys is not None else None
    codes = _column(table, "country_code")
    if codes is None:
        raw = _column(table, "country")
        codes = [normalise_country(c) for c in raw] if raw is not None else [None] * n
    domains = _column(table, "domain")
    sites = _column(table, "website")
    if domains is None:
        domains = [identifying_domain(w) for w in sites] if sites else [None] * n
    hints = _column(table, "hint")
    if hints is None:
        hints = [website_hint(w) for w in sites] if sites else [None] * n
    groups = _column(table, "group") or [None] * n
    clusters = _column(table, "cluster") or [None] * n
    texts = [nm if isinstance(nm, str) else "" for nm in names]
    name_index: dict[str, int] = {}
    # one profile per distinct name, and names with the same profile share it
    profile_index: dict[NameProfile, int] = {}
    text_pid: list[int] = []
    for k, text in enumerate(texts):
        if text not in name_index:
            name_index[text] = len(text_pid)
            made = profile(text, keys[k] if keys else None, every[k] if every else None)
            text_pid.append(profile_index.setdefault(made, len(profile_index)))
    profiles = list(profile_index)
    rec_index: dict[tuple[Any, ...], int] = {}
    record = np.empty(n, np.int64)
    name_pid: list[int] = []
    country: list[str | None] = []
    domain: list[str | None] = []
    group: list[str | None] = []
    hint: list[str | None] = []
    cluster: list[str | None] = []
    for row, (text, cc, dm, gr, ht, cl) in enumerate(
            zip(texts, codes, domains, groups, hints, clusters, strict=True)):
        pid = text_pid[name_index[text]]
        dm = dm.lower() if isinstance(dm, str) and dm else None
        cc, ht, cl = _text(cc), _text(ht), _text(cl)
        gr = None if gr is None else str(gr)
        key = (pid, cc, dm, gr, ht, cl)
        rid = rec_index.get(key)
        if rid is None:
            rid = rec_index[key] = len(name_pid)
            name_pid.append(pid)
            country.append(cc)
            domain.append(dm)
            group.append(gr)
            hint.append(ht)
            cluster.append(cl)
        record[row] = rid
    return _Side(ids, record, np.array(name_pid, np.int64), country, domain, profiles, group,
                 hint, cluster)


def _label(domain: str | None) -> str | None:
    """Return the first label of a registrable domain ("acme" of "acme.co.uk")."""
    return domain.split(".", 1)[0] if domain else None


def _hints(side: _Side) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """Return, per record, how its website spells a name (domain label, handle): all of them,
    and those that say more than the record's own name ("knoxromerologistics" for "Knox &
    Romero Inc"). Only the latter are evidence: the others agree with the other record's name
    exactly when the names agree.
    """
    spelled, extra = [], []
    for dm, ht, pid in zip(side.domain, side.hint, side.name_pid.tolist(), strict=True):
        found = frozenset(x for x in (_label(dm), ht) if x and len(x) >= MIN_HINT_LENGTH)
        spelled.append(found)
        extra.append(found - side.profiles[pid].labels)
    return spelled, extra


def _spells_prefix(hints: frozenset[str], labels: frozenset[str]) -> bool:
    """Return True when a website spelling and a name spelling start one another."""
    return any(h.startswith(x) or x.startswith(h) for h in hints for x in labels)


def _cross_level(left: tuple[frozenset[str], frozenset[str], frozenset[str]],
                 right: tuple[frozenset[str], frozenset[str], frozenset[str]]) -> int:
    """Return how one record's website spelling meets the other's name ("website" level).

    Each side is (name labels, all website spellings, spellings that say more than the name).
    """
    nl, hl, xl = left
    nr, hr, xr = right
    if not ((xl and nr) or (xr and nl)):
        return -1
    if xl & (nr | hr) or xr & (nl | hl):
        return 0
    if _spells_prefix(xl, nr) or _spells_prefix(xr, nl):
        return 1
    return 2


def _joint_codes(left: Sequence[str | None], right: Sequence[str | None],
                 ) -> tuple[Ints, Ints, Floats]:
    """Return integer codes (-1: missing) of two lists' values, and each code's count."""
    codes, _ = pd.factorize(pd.Series([*left, *right], dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=int(codes.max()) + 1 if len(codes) else 0)
    return codes[:len(left)], codes[len(left):], counts.astype(np.float64)


def _field_log_ratios(left: _Side, right: _Side, lr: Ints, rr: Ints, params: MatchParams,
                      workers: int | None = None) -> tuple[Floats, Floats, Ints, Ints, Ints]:
    """Return country and domain log ratios and levels, and website levels, of record pairs.

    The website level compares what one record's website spells (its domain label, or the handle
    of a social profile or mailbox) with the other record's name, where the two records do not
    both have an identifying domain (then the domain itself is compared).
    """
    n = len(lr)
    # countries: term-frequency adjusted agreement, disagreement against the chance of agreeing
    lcc, rcc, ccount = _joint_codes(left.country, right.country)
    total = ccount.sum() or 1.0
    lshare = np.bincount(lcc[lcc >= 0], minlength=len(ccount)) / max((lcc >= 0).sum(), 1)
    rshare = np.bincount(rcc[rcc >= 0], minlength=len(ccount)) / max((rcc >= 0).sum(), 1)
    agree = float((lshare * rshare).sum())
    differs = math.log((1 - params.country_m) / max(1 - agree, 1e-6))
    a, b = lcc[lr], rcc[rr]
    both = (a >= 0) & (b >= 0)
    same = both & (a == b)
    with np.errstate(divide="ignore"):
        same_lr = np.log(params.country_m / (ccount / total))
    c_lr = np.where(same, same_lr[np.where(same, a, 0)] if len(ccount) else 0.0,
                    np.where(both, differs, 0.0))
    c_lvl = np.where(same, 0, np.where(both, 1, -1)).astype(np.int64)
    # domains: the same registrable domain, the same label under another suffix, or neither
    ldc, rdc, dcount = _joint_codes(left.domain, right.domain)
    llc, rlc, lcount = _joint_codes([_label(d) for d in left.domain],
                                    [_label(d) for d in right.domain])
    dtotal = dcount.sum() or 1.0
    da, db = ldc[lr], rdc[rr]
    dboth = (da >= 0) & (db >= 0)
    dsame = dboth & (da == db)
    lsame = dboth & ~dsame & (llc[lr] == rlc[rr])
    with np.errstate(divide="ignore"):
        same_domain = np.log(params.domain_m * dtotal / dcount) if len(dcount) else np.zeros(0)
        same_label = (np.log(params.domain_label_m * dtotal / lcount) if len(lcount)
                      else np.zeros(0))
    d_lr = np.where(dsame, same_domain[np.where(dsame, da, 0)] if len(dcount) else 0.0,
                    np.where(lsame, same_label[np.where(lsame, llc[lr], 0)] if len(lcount)
                             else 0.0,
                             np.where(dboth, math.log(1 - params.domain_m
                                                      - params.domain_label_m), 0.0)))
    d_lvl = np.where(dsame, 0, np.where(lsame, 1, np.where(dboth, 2, -1))).astype(np.int64)
    # website spellings: only records whose website says more than their name take part
    lspell = [(left.profiles[p].labels, *h) for p, *h in
              zip(left.name_pid.tolist(), *_hints(left), strict=True)]
    rspell = [(right.profiles[p].labels, *h) for p, *h in
              zip(right.name_pid.tolist(), *_hints(right), strict=True)]
    lx = np.array([bool(x[2]) for x in lspell], bool)
    rx = np.array([bool(x[2]) for x in rspell], bool)
    x_lvl = np.full(n, -1, np.int64)
    todo = np.flatnonzero(~dboth & (lx[lr] | rx[rr])) if n else np.zeros(0, np.int64)
    lrl, rrl = lr[todo].tolist(), rr[todo].tolist()

    def task(start: int, stop: int) -> Ints:
        return np.array([_cross_level(lspell[i], rspell[j])
                         for i, j in zip(lrl[start:stop], rrl[start:stop], strict=True)],
                        np.int64)

    if len(todo):
        x_lvl[todo] = np.concatenate(map_ranges(task, len(todo), workers=workers))
    return c_lr.astype(np.float64), d_lr.astype(np.float64), c_lvl, d_lvl, x_lvl


@dataclass(frozen=True)
class _RivalGroups:
    """Pairs grouped by (right record, left cluster): each group is one rival for the right
    record. Depends only on which pairs there are, so it is built once per fit."""

    order: Ints  # pairs sorted by group
    starts: Ints  # where each group begins in `order`
    member: Ints  # each pair's group
    rkey: Ints  # each group's right record


def _rival_groups(rkey: Ints, lclus: Ints | None) -> _RivalGroups | None:
    """Group the pairs of left records of one cluster per right record, or None (no clusters)."""
    if lclus is None or not len(rkey):
        return None
    joint = rkey * (int(lclus.max()) + 1) + lclus
    order = np.argsort(joint, kind="stable")
    sorted_joint = joint[order]
    starts = np.flatnonzero(np.r_[True, sorted_joint[1:] != sorted_joint[:-1]])
    member = np.empty(len(rkey), np.int64)
    member[order] = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rkey)]))
    return _RivalGroups(order, starts, member, rkey[order][starts])


def _posterior(lo: Floats, capped: Floats, lkey: Ints, rkey: Ints,
               groups: _RivalGroups | None = None) -> tuple[Floats, Floats]:
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


@dataclass
class _Fitted:
    """The fitted model and, per record pair, its log Bayes factor, prior and probabilities."""

    model: NameModel
    log_bf: Floats
    prior: Floats
    against_rivals: Floats
    alone: Floats
    website: Floats  # the website term of each pair's log Bayes factor

    @property
    def probability(self) -> Floats:
        """Return the match probability: the smaller of the two."""
        return np.minimum(self.against_rivals, self.alone)


def _fit(levels: Ints, tf: Floats, fields: Floats, website: Ints, lkey: Ints, rkey: Ints,
         lclus: Ints | None, group: Ints, n_left: int, n_right: Ints, u: dict[str, Floats],
         params: MatchParams) -> _Fitted:
    """Fit the number of matches (and m, if asked) by EM; return model, log BF, p, prior.

    `website` holds each pair's website level (-1: not compared); the u of its levels is
    re-estimated each round from the pairs, weighted by how unlikely each is to match.
    """
    m = {f: np.array(PRIOR_M[f], np.float64) for f in FEATURES}
    small = np.minimum(n_left, n_right).astype(np.float64)
    large = np.maximum(n_left, n_right).astype(np.float64)
    matches: Floats = params.initial_overlap * small
    model = NameModel(m, u, float(matches.sum()))
    words = levels[:, FEATURES.index("words")]
    legal_k = FEATURES.index("legal")
    zeros = np.zeros(len(tf))
    fit = _Fitted(model, tf + fields, zeros, zeros, zeros, zeros)
    web_m, web_u = np.array(WEBSITE_M), np.array(WEBSITE_U)
    web_seen = website >= 0
    groups = _rival_groups(rkey, lclus)
    for _ in range(max(params.iterations, 1)):
        ratios = model.log_ratios()
        # legal forms, like countries, tell a company from its namesake abroad: not capped
        legal = ratios["legal"][levels[:, legal_k]]
        name = tf + sum(ratios[f][levels[:, k]] for k, f in enumerate(FEATURES)) - legal
        web = np.append(np.log(web_m / web_u), 0.0)[website]
        used_web_u = web_u
        log_bf = name + legal + fields + web
        # each right group is a list of its own, with its own share of matches
        rho = np.clip(matches / small, 1.0 / small, params.max_overlap)
        group_prior = np.log(rho / (1 - rho) / large)
        prior = group_prior[group]
        cap = (np.log(large / params.name_twin_rate)[group]
               + np.log(model.m["words"] / np.array(NAMESAKE_WORDS))[words])
        capped = -np.logaddexp(-name, -cap) + legal + fields + web
        rivals, alone = _posterior(log_bf + prior, capped + prior, lkey, rkey, groups)
        p = np.minimum(rivals, alone)
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
        # the model these probabilities came from, with the number of matches they imply
        fit = _Fitted(NameModel(model.m, u, float(matches.sum())), log_bf, prior, rivals, alone,
                      web)
        model = NameModel(new_m, u, float(matches.sum()))
    fit.model.m["website"], fit.model.u["website"] = web_m, used_web_u
    return fit


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


def _cluster_index(side: _Side) -> Ints | None:
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
    lside, rside = _side(left), _side(right)
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
        lkeys, rkeys = _keys_table(lside.profiles, stats), _keys_table(rside.profiles, stats)
        clock.lap(f"blocking keys: {lkeys.num_rows + rkeys.num_rows:,}")
        names = _candidates(con, lkeys, rkeys, stats.n, params)
        clock.lap(f"candidates: {len(names):,} name pairs")
        u = _within_list_u([(lside.profiles, lkeys), (rside.profiles, rkeys)], stats, params, con)
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
    c_lr, d_lr, c_lvl, d_lvl, x_lvl = _field_log_ratios(lside, rside, lrec, rrec, params,
                                                        workers)
    # a right group is a list of its own: its records compete only with each other
    group_names, rec_group = np.unique(np.array([str(g) for g in rside.group]),
                                       return_inverse=True)
    n_right = np.bincount(rec_group, minlength=len(group_names))
    group = rec_group[rrec]
    lkey = lrec * len(group_names) + group
    clock.lap(f"record pairs: {len(lrec):,}")
    clusters = _cluster_index(lside)
    fit = _fit(levels, tf, c_lr + d_lr, x_lvl, lkey, rrec,
               None if clusters is None else clusters[lrec], group, len(lside.name_pid), n_right,
               u, params)
    model, prob = fit.model, fit.probability
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
        ev = _evidence(cmp, ratios, (float(c_lr[k]), float(d_lr[k]), float(fit.website[k])),
                       (int(c_lvl[k]), int(d_lvl[k]), int(x_lvl[k])), float(fit.log_bf[k]),
                       float(fit.prior[k]), int(rivals[k]))
        ev["probability"] = {"against_rivals": round(float(fit.against_rivals[k]), 4),
                             "alone": round(float(fit.alone[k]), 4)}
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


def _members(side: _Side) -> list[list[str]]:
    """Return the input ids of each record profile."""
    out: list[list[str]] = [[] for _ in side.name_pid]
    for rid, i in zip(side.record.tolist(), side.ids.to_pylist(), strict=True):
        out[rid].append(i)
    return out


def _within_list_u(sides: Sequence[tuple[Sequence[NameProfile], pa.Table]], stats: TokenStats,
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
        pairs = _candidates(con, keys, keys, stats.n, params,
                            pa.table({"pid": pa.array(anchors, pa.int32())}))
        if len(pairs) > params.u_pairs:
            pairs = pairs.sample(params.u_pairs, random_state=params.seed)
        for a, b in zip(pairs.lp.tolist(), pairs.rp.tolist(), strict=True):
            c = compare(profiles[a], profiles[b], stats)
            if c.possible:
                chunks.append(c.levels)
    levels = np.array(chunks, np.int64).reshape(-1, len(FEATURES))
    return _estimate_u(levels, params.u_prior_pairs)


def _record_pairs(con: duckdb.DuckDBPyConnection, names: pd.DataFrame, left: _Side,
                  right: _Side) -> pd.DataFrame:
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


def _evidence(cmp: Comparison, ratios: dict[str, Floats], field_lr: tuple[float, float, float],
              field_lvl: tuple[int, int, int], log_bf: float, prior: float, rivals: int,
              ) -> dict[str, Any]:
    """Return the explanation of one pair: fields agreed, words and every log-ratio term.

    `field_lr` and `field_lvl` are the country, domain and website terms and levels.
    """
    c_lr, d_lr, x_lr = field_lr
    c_lvl, d_lvl, x_lvl = field_lvl
    words = LEVELS["words"][cmp.levels[0]]
    agreed = ["name" if words in ("exact", "structural") else "name_partial"]
    disagreed = []
    if c_lvl == 0:
        agreed.append("country")
    elif c_lvl == 1:
        disagreed.append("country")
    if d_lvl == 0:
        agreed.append("domain")
    elif d_lvl == 1:
        agreed.append("domain_label")
    elif d_lvl == 2:
        disagreed.append("domain")
    if x_lvl == 0:
        agreed.append("name_in_website")
    elif x_lvl == 2:
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
