"""Comparing two names: align their words and place the pair in each name feature's level.

Words align as the same word, joined words ("super micro" / "supermicro"), an acronym
("bank of new york" / "bny") or one typo in a longer word; each agreeing word adds its weight
from the word statistics, and the words neither name explains set the `Words` level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import OSA

from doorstep.map.levels import NULL, First, Kind, Legal, NameLevels, Numbers, Words
from doorstep.map.profiles import NameProfile, TokenStats
from doorstep.map.vocabulary import STOPWORDS, STRUCTURAL, first_identifying, is_region


@dataclass
class Comparison:
    """The evidence two names give: term-frequency score, comparison levels and explanation."""

    tf: float
    levels: NameLevels
    matched: list[str] = field(default_factory=list)
    left_only: list[str] = field(default_factory=list)
    right_only: list[str] = field(default_factory=list)

    @property
    def possible(self) -> bool:
        """Return False when the names cannot be one company (different numbers, nothing shared)."""
        return math.isfinite(self.tf)


_IMPOSSIBLE = Comparison(-math.inf, NameLevels(NULL, NULL, NULL, NULL, NULL))
_LOG26 = math.log(26.0)
_LOG4 = math.log(4.0)


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
    legal: int = NULL
    if left.legal and right.legal:
        legal = Legal.SAME if left.legal & right.legal else Legal.DIFFERS
    numbers: int = NULL
    if left.numbers or right.numbers:
        numbers = Numbers.SAME if left.numbers == right.numbers else Numbers.ONE_SIDE
    shared = stats.shared
    if a == b:  # the common case: one name, spelled two ways
        tf = sum(shared.get(t, 0.0) for t in a if t not in STOPWORDS)
        matched = [t for t in a if t not in STOPWORDS] if explain else []
        return Comparison(tf, NameLevels(Words.EXACT, First.SAME, Kind.WORD, legal, numbers),
                          matched)
    au, bu = [False] * len(a), [False] * len(b)
    tf = 0.0
    hits = 0
    kind = Kind.WORD
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
                kind = max(kind, Kind(how))
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
                    kind = Kind.TYPO
                    if explain:
                        matched.append(f"{t} ~ {u}")
                    break
    if not hits:
        return _IMPOSSIBLE
    lx, lwords = _extras(a, au, explain)
    rx, rwords = _extras(b, bu, explain)
    first = (First.SAME if (first_identifying(a), first_identifying(b)) in links
             else First.DIFFERS)
    return Comparison(tf, NameLevels(words_level(lx, rx), first, kind, legal, numbers), matched,
                      lwords, rwords)


def _extras(tokens: Sequence[str], used: Sequence[bool], explain: bool = False,
            ) -> tuple[tuple[int, int, int], list[str]]:
    """Count a side's unexplained words: (structural, identifying trailing, identifying inner)."""
    last = len(used) - 1
    while last >= 0 and not used[last]:
        last -= 1
    structural = trailing = inner = 0
    words: list[str] = []
    regional = last + 1 < len(tokens) and is_region(tokens[last + 1:])
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


def words_level(lx: tuple[int, int, int], rx: tuple[int, int, int]) -> int:
    """Return the "words" level of two sides' unexplained-word counts."""
    lid, rid = lx[1] + lx[2], rx[1] + rx[2]
    if lid and rid:
        return Words.CONFLICT
    if lid or rid:
        side, other = (lx, rx) if lid else (rx, lx)
        if other[0]:
            # "Acme Group" / "Acme Freight": a structural word against a real one
            return Words.SWAPPED
        if side[2]:
            return Words.INNER
        return Words.ONE_EXTRA if side[1] == 1 else Words.EXTRAS
    return Words.STRUCTURAL if lx[0] or rx[0] else Words.EXACT

