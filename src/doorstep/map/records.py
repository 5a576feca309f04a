"""Records: each side's rows reduced to distinct record profiles, and the record-level evidence
of a pair beyond its names: country, registrable domain and what a website spells."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from doorstep.map.levels import NULL, Country, Domain, Website
from doorstep.map.normalize import (
    MIN_HINT_LENGTH,
    identifying_domain,
    normalise_country,
    website_hint,
)
from doorstep.map.parallel import map_items, map_ranges
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
    profiles: Sequence[NameProfile]
    group: list[str | None]
    # what a non-identifying website still spells (a social handle, a mailbox), per record
    hint: list[str | None]
    # records known to be one company (our own duplicate accounts), per record; None: alone
    cluster: list[str | None]
    # the name of each record, as written
    text: list[str]

    def key(self, rec: int) -> str:
        """Return what identifies a record from one run to the next (with `by_text`)."""
        return record_key(self.group[rec], self.text[rec], self.country[rec], self.domain[rec],
                          self.hint[rec], self.cluster[rec])


def record_key(group: Any, name: Any, country: Any, domain: Any, hint: Any, cluster: Any) -> str:
    """Return the identity of a record of `side_of(..., by_text=True)` from a row's values."""
    dm = domain.lower() if isinstance(domain, str) and domain else None
    return "\x1f".join(x or "" for x in (
        None if group is None else str(group), name if isinstance(name, str) else "",
        _text(country), dm, _text(hint), _text(cluster)))


def _column(table: pa.Table, *names: str) -> list[Any] | None:
    """Return the first present column of `names` as a Python list, or None."""
    for n in names:
        if n in table.column_names:
            values: list[Any] = table.column(n).to_pylist()
            return values
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class _Columns:
    """A side's rows as lists: names (and their canonical forms when given) and the fields."""

    names: list[Any]
    keys: list[Any] | None
    every: list[Any] | None
    codes: list[Any]
    domains: list[Any]
    hints: list[Any]
    groups: list[Any]
    clusters: list[Any]


def _columns(table: pa.Table) -> _Columns:
    """Read a side's columns, deriving country codes, domains and hints where absent."""
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
    return _Columns(names, keys, every, codes, domains, hints, groups, clusters)


def record_keys(table: pa.Table | pd.DataFrame) -> pa.Array:
    """Return each row's record identity, as `side_of(..., by_text=True)` keys its records."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    present = set(table.column_names)
    if not {"country", "website"} & present or {"country_code", "domain", "hint"} <= present:
        n = table.num_rows

        def column(*names: str, lower: bool = False) -> pa.ChunkedArray | pa.Array:
            name = next((x for x in names if x in present), None)
            if name is None:
                return pa.array([""] * n, pa.string())
            values = pc.cast(table.column(name), pa.string())
            return pc.fill_null(pc.utf8_lower(values) if lower else values, "")

        joined = pc.binary_join_element_wise(
            column("group"), column("name", "name_key"), column("country_code"),
            column("domain", lower=True), column("hint"), column("cluster"), "\x1f")
        return pa.chunked_array([joined]).combine_chunks() if isinstance(
            joined, pa.Array) else joined.combine_chunks()
    c = _columns(table)
    return pa.array([record_key(*row) for row in zip(c.groups, c.names, c.codes, c.domains,
                                                     c.hints, c.clusters, strict=True)],
                    pa.string())


def side_of(table: pa.Table | pd.DataFrame, *, by_text: bool = False,
            workers: int | None = None) -> Side:
    """Reduce an input table to record profiles.

    Rows whose names have one profile and whose other fields agree are one record; with
    `by_text`, only rows whose names are spelled alike, so that a record keeps its identity
    (`Side.key`) from one run to the next without profiling every name again. Names are
    profiled over `workers` processes (None: every core).
    """
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    ids = table.column("id").cast(pa.string()).combine_chunks()
    c = _columns(table)
    names, keys, every, codes, domains, hints, groups, clusters = (
        c.names, c.keys, c.every, c.codes, c.domains, c.hints, c.groups, c.clusters)
    n = len(names)
    texts = [nm if isinstance(nm, str) else "" for nm in names]
    name_index: dict[str, int] = {}
    # one profile per distinct name, and names with the same profile share it
    profile_index: dict[NameProfile, int] = {}
    first: list[int] = []  # the first row of each distinct name
    for k, text in enumerate(texts):
        if text not in name_index:
            name_index[text] = len(first)
            first.append(k)

    def made(k: int) -> NameProfile:
        return profile(texts[k], keys[k] if keys else None, every[k] if every else None)

    text_pid = [profile_index.setdefault(p, len(profile_index))
                for p in map_items(made, first, workers=workers)]
    profiles = list(profile_index)
    rec_index: dict[tuple[Any, ...], int] = {}
    record = np.empty(n, np.int64)
    name_pid: list[int] = []
    country: list[str | None] = []
    domain: list[str | None] = []
    group: list[str | None] = []
    hint: list[str | None] = []
    cluster: list[str | None] = []
    rec_text: list[str] = []
    for row, (text, cc, dm, gr, ht, cl) in enumerate(
            zip(texts, codes, domains, groups, hints, clusters, strict=True)):
        pid = text_pid[name_index[text]]
        dm = dm.lower() if isinstance(dm, str) and dm else None
        cc, ht, cl = _text(cc), _text(ht), _text(cl)
        gr = None if gr is None else str(gr)
        key = (text if by_text else pid, cc, dm, gr, ht, cl)
        rid = rec_index.get(key)
        if rid is None:
            rid = rec_index[key] = len(name_pid)
            name_pid.append(pid)
            country.append(cc)
            domain.append(dm)
            group.append(gr)
            hint.append(ht)
            cluster.append(cl)
            rec_text.append(text)
        record[row] = rid
    return Side(ids, record, np.array(name_pid, np.int64), country, domain, profiles, group,
                 hint, cluster, rec_text)


def label(domain: str | None) -> str | None:
    """Return the first label of a registrable domain ("acme" of "acme.co.uk")."""
    return domain.split(".", 1)[0] if domain else None


Spelling = tuple[frozenset[str], frozenset[str], frozenset[str]]


def _spellings(side: Side, records: Ints) -> dict[int, Spelling]:
    """Return, for each of `records`, its name's spellings, how its website spells a name
    (domain label, handle), and those website spellings that say more than its own name
    ("knoxromerologistics" for "Knox & Romero Inc"). Only the latter are evidence: the others
    agree with the other record's name exactly when the names agree.
    """
    out = {}
    for rec in records.tolist():
        labels = side.profiles[int(side.name_pid[rec])].labels
        found = frozenset(x for x in (label(side.domain[rec]), side.hint[rec])
                          if x and len(x) >= MIN_HINT_LENGTH)
        out[rec] = (labels, found, found - labels)
    return out


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


@dataclass(frozen=True)
class FieldStats:
    """What agreeing on a country, a domain or a domain label proves: the rarer, the more.

    Measured on both sides' records when the model is fitted and kept with it, so that records
    scored later are weighed as in the full run.
    """

    country_same: dict[str, float]  # log(P(same | match) / share of records in that country)
    country_differs: float  # log(P(differ | match) / P(two records differ))
    domain_same: dict[str, float]
    label_same: dict[str, float]
    domain_differs: float

    @classmethod
    def measure(cls, left: Side, right: Side, params: MatchParams) -> FieldStats:
        """Count countries, domains and labels over both sides' records."""
        lc = Counter(c for c in left.country if c)
        rc = Counter(c for c in right.country if c)
        countries = lc + rc
        total = sum(countries.values()) or 1
        ln, rn = sum(lc.values()) or 1, sum(rc.values()) or 1
        agree = sum(lc[c] / ln * rc[c] / rn for c in lc)
        domains = Counter(d for d in [*left.domain, *right.domain] if d)
        labels = Counter(x for d in [*left.domain, *right.domain] if (x := label(d)))
        dtotal = sum(domains.values()) or 1
        return cls(
            {c: math.log(params.country_m / (k / total)) for c, k in countries.items()},
            math.log((1 - params.country_m) / max(1 - agree, 1e-6)),
            {d: math.log(params.domain_m * dtotal / k) for d, k in domains.items()},
            {x: math.log(params.domain_label_m * dtotal / k) for x, k in labels.items()},
            math.log(1 - params.domain_m - params.domain_label_m),
        )

    def to_tables(self) -> tuple[pa.Table, dict[str, float]]:
        """Return the per-value log ratios as one table, and the constants."""
        kinds, values, ratios = [], [], []
        for kind, table in (("country", self.country_same), ("domain", self.domain_same),
                            ("label", self.label_same)):
            kinds += [kind] * len(table)
            values += list(table)
            ratios += list(table.values())
        return (pa.table({"kind": kinds, "value": pa.array(values, pa.string()),
                          "log_ratio": pa.array(ratios, pa.float64())}),
                {"country_differs": self.country_differs, "domain_differs": self.domain_differs})

    @classmethod
    def from_tables(cls, table: pa.Table, constants: dict[str, float]) -> FieldStats:
        """Rebuild the statistics `to_tables` wrote."""
        found: dict[str, dict[str, float]] = {}
        for kind in ("country", "domain", "label"):
            rows = table.filter(pc.equal(table["kind"], kind))
            found[kind] = dict(zip(rows["value"].to_pylist(), rows["log_ratio"].to_pylist(),
                                   strict=True))
        return cls(found["country"], constants["country_differs"], found["domain"],
                   found["label"], constants["domain_differs"])


def _pick(values: Sequence[str | None], rows: Ints) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=object)[rows] if len(values) else [],
                     dtype=object)


def field_log_ratios(left: Side, right: Side, lr: Ints, rr: Ints, stats: FieldStats,
                     workers: int | None = None) -> tuple[Floats, Floats, Ints, Ints, Ints]:
    """Return country and domain log ratios and levels, and website levels, of record pairs.

    The website level compares what one record's website spells (its domain label, or the handle
    of a social profile or mailbox) with the other record's name, where the two records do not
    both have an identifying domain (then the domain itself is compared).
    """
    n = len(lr)
    # countries: term-frequency adjusted agreement, disagreement against the chance of agreeing
    a, b = _pick(left.country, lr), _pick(right.country, rr)
    both = (a.notna() & b.notna()).to_numpy(bool)
    same = both & (a == b).to_numpy(bool)
    c_lr = np.where(same, a.map(stats.country_same).fillna(0.0).to_numpy(np.float64),
                    np.where(both, stats.country_differs, 0.0))
    c_lvl = np.where(same, Country.SAME, np.where(both, Country.DIFFERS, NULL)).astype(np.int64)
    # domains: the same registrable domain, the same label under another suffix, or neither
    da, db = _pick(left.domain, lr), _pick(right.domain, rr)
    dboth = (da.notna() & db.notna()).to_numpy(bool)
    dsame = dboth & (da == db).to_numpy(bool)
    la = _pick([label(d) for d in left.domain], lr)
    lsame = dboth & ~dsame & (la == _pick([label(d) for d in right.domain], rr)).to_numpy(bool)
    d_lr = np.where(dsame, da.map(stats.domain_same).fillna(0.0).to_numpy(np.float64),
                    np.where(lsame, la.map(stats.label_same).fillna(0.0).to_numpy(np.float64),
                             np.where(dboth, stats.domain_differs, 0.0)))
    d_lvl = np.where(dsame, Domain.SAME,
                     np.where(lsame, Domain.SAME_LABEL,
                              np.where(dboth, Domain.DIFFERS, NULL))).astype(np.int64)
    # website spellings: only records whose website says more than their name take part
    x_lvl = np.full(n, NULL, np.int64)
    # a record without a website, or whose website spells only its name, says nothing more
    lweb = (_pick(left.hint, lr).notna() | da.notna()).to_numpy(bool)
    rweb = (_pick(right.hint, rr).notna() | db.notna()).to_numpy(bool)
    maybe = np.flatnonzero(~dboth & (lweb | rweb)) if n else np.zeros(0, np.int64)
    lspell = _spellings(left, np.unique(lr[maybe]))
    rspell = _spellings(right, np.unique(rr[maybe]))
    todo = maybe[np.array([bool(lspell[i][2]) or bool(rspell[j][2])
                           for i, j in zip(lr[maybe].tolist(), rr[maybe].tolist(), strict=True)],
                          bool).reshape(-1)]
    lrl, rrl = lr[todo].tolist(), rr[todo].tolist()

    def task(start: int, stop: int) -> Ints:
        return np.array([_cross_level(lspell[i], rspell[j])
                         for i, j in zip(lrl[start:stop], rrl[start:stop], strict=True)],
                        np.int64)

    if len(todo):
        x_lvl[todo] = np.concatenate(map_ranges(task, len(todo), workers=workers))
    return c_lr.astype(np.float64), d_lr.astype(np.float64), c_lvl, d_lvl, x_lvl


