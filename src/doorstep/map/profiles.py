"""Name profiles and word statistics: each distinct name in matching form, once.

A profile holds a name's words in matching form (common business abbreviations expanded,
plurals folded, roman numerals made digits), its numbers and its legal-form families; the word
statistics hold how many names of both sides carry each word, from which a shared word's weight
comes (-log of the share of other names holding it, as Splink's term-frequency adjustments).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import OSA

from doorstep.map.normalize import MIN_HINT_LENGTH, name_forms
from doorstep.map.vocabulary import (
    ABBREVIATIONS,
    DIGIT,
    LEGAL_FAMILIES,
    LEGAL_NOISE,
    ORDINAL,
    RAW_WORD,
    ROMAN,
    STOPWORDS,
    is_region,
)


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
def matching_form(token: str) -> str:
    """Return a word's comparison form: abbreviation expanded, numbers canonical, singular."""
    token = ABBREVIATIONS.get(token, token)
    token = ROMAN.get(token, token)
    m = ORDINAL.match(token)
    if m:
        token = m.group(1)
    if token.isdigit():
        return token.lstrip("0") or "0"
    return _stem(token)


def legal_families(name: str) -> frozenset[str]:
    """Return the legal-form families at the end of a raw name ("Eaton Corp plc": corp, ltd)."""
    merged: list[str] = []
    run = ""
    for w in [*RAW_WORD.findall(name.lower()), ""]:
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
        if merged[-1] in LEGAL_NOISE:
            merged.pop()
            continue
        for size in (3, 2, 1):
            family = LEGAL_FAMILIES.get(tuple(merged[-size:])) if len(merged) > size else None
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
    tokens = tuple(matching_form(t) for t in words)
    numbers = frozenset(t for t in tokens if not t.isalpha() and DIGIT.search(t))
    labels = {"".join(words), "".join(w for w in words if w not in STOPWORDS)}
    for cut in (1, 2):  # "acme emea" is spelled "acme" too
        if len(words) > cut and is_region(tuple(words[-cut:])):
            labels.add("".join(words[:-cut]))
    raw = every.split()
    if words and raw[:len(words)] == list(words):  # and "acmecompany" for "Acme Company"
        labels.update("".join(raw[:k]) for k in range(len(words) + 1, len(raw) + 1))
    return NameProfile(tokens, legal_families(name), numbers,
                       frozenset(x for x in labels if len(x) >= MIN_HINT_LENGTH))






class TokenStats:
    """Document frequencies of matching-form words over both sides' distinct names."""

    def __init__(self, profiles: Iterable[NameProfile], unseen: float = 0.25) -> None:
        df: Counter[str] = Counter()
        n = 0
        for p in profiles:
            df.update(set(p.tokens))
            n += 1
        self._set(df, n, unseen)

    @classmethod
    def from_counts(cls, df: Counter[str], n: int, unseen: float = 0.25) -> TokenStats:
        """Return the statistics of `n` names whose words were counted in `df`."""
        stats = cls.__new__(cls)
        stats._set(df, n, unseen)
        return stats

    def _set(self, df: Counter[str], n: int, unseen: float) -> None:
        self.df = df
        self.n = max(n, 1)
        self.log_n = math.log(self.n)
        self.unseen = unseen
        # weights of a word shared by a pair (both names hold it) and held by one of them
        self.shared = {t: self.weight(t, 2) for t in self.df}
        self.single = {t: self.weight(t, 1) for t in self.df}

        # words by (first letter + one deletion), built a first letter at a time
        self._deletes: dict[str, list[str]] | None = None
        self._indexed: set[str] = set()
        self._near: dict[str, int] = {}

    def weight(self, token: str, own: int) -> float:
        """Return -log(share of names holding a word), not counting the pair's own `own` names."""
        seen = max(self.df.get(token, 0) - own, 0)
        return self.log_n - math.log(seen + self.unseen)

    def prepare(self, first: str | None = None) -> None:
        """Build the one-deletion index of the words, which typo weights need: of every word,
        or of those starting with `first` (a typo never falls on the first letter)."""
        if self._deletes is None:
            self._deletes = {}
        letters = {first} if first is not None else {t[0] for t in self.df if t}
        todo = letters - self._indexed
        if not todo:
            return
        for t in self.df:
            if t and t[0] in todo and len(t) >= 5 and not t.isdigit():
                for d in deletions(t):
                    self._deletes.setdefault(t[0] + d, []).append(t)
        self._indexed |= todo

    def near_count(self, token: str) -> int:
        """Return how many names hold a word one typo from `token` (itself included)."""
        count = self._near.get(token)
        if count is not None:
            return count
        self.prepare(token[0])
        assert self._deletes is not None
        near = {v for d in deletions(token) for v in self._deletes.get(token[0] + d, ())}
        count = sum(self.df[v] for v in near if OSA.distance(token, v, score_cutoff=1) <= 1)
        self._near[token] = count
        return count

    def typo_weight(self, t: str, u: str) -> float:
        """Return -log(share of other names holding a word one typo from t or u)."""
        seen = max(max(self.near_count(t), self.near_count(u)) - 2, 0)
        return self.log_n - math.log(seen + self.unseen)


def deletions(token: str) -> set[str]:
    """Return a word and every string one deletion away from it."""
    return {token, *(token[:i] + token[i + 1:] for i in range(len(token)))}

