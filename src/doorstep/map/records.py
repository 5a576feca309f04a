"""Records: each side's rows reduced to distinct record profiles, and the record-level evidence
of a pair beyond its names: country, registrable domain and what a website spells."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from doorstep.map.levels import NULL, Country, Domain, Website
from doorstep.map.normalize import (
    MIN_HINT_LENGTH,
    identifying_domain,
    normalise_country,
    website_hint,
)
from doorstep.map.parallel import map_ranges
from doorstep.map.params import MatchParams
from doorstep.map.profiles import NameProfile, profile
from doorstep.map.resolution import Floats, Ints


@dataclass
class Side:
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


def side_of(table: pa.Table | pd.DataFrame) -> Side:
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
    return Side(ids, record, np.array(name_pid, np.int64), country, domain, profiles, group,
                 hint, cluster)


def label(domain: str | None) -> str | None:
    """Return the first label of a registrable domain ("acme" of "acme.co.uk")."""
    return domain.split(".", 1)[0] if domain else None


def _hints(side: Side) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """Return, per record, how its website spells a name (domain label, handle): all of them,
    and those that say more than the record's own name ("knoxromerologistics" for "Knox &
    Romero Inc"). Only the latter are evidence: the others agree with the other record's name
    exactly when the names agree.
    """
    spelled, extra = [], []
    for dm, ht, pid in zip(side.domain, side.hint, side.name_pid.tolist(), strict=True):
        found = frozenset(x for x in (label(dm), ht) if x and len(x) >= MIN_HINT_LENGTH)
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
        return NULL
    if xl & (nr | hr) or xr & (nl | hl):
        return Website.EQUAL
    if _spells_prefix(xl, nr) or _spells_prefix(xr, nl):
        return Website.PREFIX
    return Website.DIFFERS


def _joint_codes(left: Sequence[str | None], right: Sequence[str | None],
                 ) -> tuple[Ints, Ints, Floats]:
    """Return integer codes (-1: missing) of two lists' values, and each code's count."""
    codes, _ = pd.factorize(pd.Series([*left, *right], dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=int(codes.max()) + 1 if len(codes) else 0)
    return codes[:len(left)], codes[len(left):], counts.astype(np.float64)


def field_log_ratios(left: Side, right: Side, lr: Ints, rr: Ints, params: MatchParams,
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
    c_lvl = np.where(same, Country.SAME, np.where(both, Country.DIFFERS, NULL)).astype(np.int64)
    # domains: the same registrable domain, the same label under another suffix, or neither
    ldc, rdc, dcount = _joint_codes(left.domain, right.domain)
    llc, rlc, lcount = _joint_codes([label(d) for d in left.domain],
                                    [label(d) for d in right.domain])
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
    d_lvl = np.where(dsame, Domain.SAME,
                     np.where(lsame, Domain.SAME_LABEL,
                              np.where(dboth, Domain.DIFFERS, NULL))).astype(np.int64)
    # website spellings: only records whose website says more than their name take part
    lspell = [(left.profiles[p].labels, *h) for p, *h in
              zip(left.name_pid.tolist(), *_hints(left), strict=True)]
    rspell = [(right.profiles[p].labels, *h) for p, *h in
              zip(right.name_pid.tolist(), *_hints(right), strict=True)]
    lx = np.array([bool(x[2]) for x in lspell], bool)
    rx = np.array([bool(x[2]) for x in rspell], bool)
    x_lvl = np.full(n, NULL, np.int64)
    todo = np.flatnonzero(~dboth & (lx[lr] | rx[rr])) if n else np.zeros(0, np.int64)
    lrl, rrl = lr[todo].tolist(), rr[todo].tolist()

    def task(start: int, stop: int) -> Ints:
        return np.array([_cross_level(lspell[i], rspell[j])
                         for i, j in zip(lrl[start:stop], rrl[start:stop], strict=True)],
                        np.int64)

    if len(todo):
        x_lvl[todo] = np.concatenate(map_ranges(task, len(todo), workers=workers))
    return c_lr.astype(np.float64), d_lr.astype(np.float64), c_lvl, d_lvl, x_lvl


