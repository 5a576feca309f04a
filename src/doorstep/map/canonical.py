"""Canonical matching keys for accounts: normalise each distinct value once, in bulk."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from doorstep.map.normalize import (
    is_non_identifying,
    name_forms,
    normalise_country,
    registrable_domain,
    website_hint,
    website_host,
)
from doorstep.map.parallel import map_items


def _distinct_table(
    values: Iterable[str | None],
    source: str,
    columns: Sequence[str],
    fn: Callable[[str], tuple[Any, ...]],
    workers: int | None,
) -> pa.Table:
    """Apply `fn` (one tuple of `columns` per value) once per distinct non-blank value."""
    distinct = sorted({v for v in values if v})
    rows = map_items(fn, distinct, workers=workers)
    data: dict[str, list[Any]] = {source: distinct}
    for k, name in enumerate(columns):
        data[name] = [r[k] for r in rows]
    return pa.table(data)


def _website_row(website: str) -> tuple[str | None, str | None, str | None, str | None]:
    return (
        website_host(website),
        registrable_domain(website),
        is_non_identifying(website),
        website_hint(website),
    )


def website_keys(websites: Iterable[str | None], workers: int | None = None) -> pa.Table:
    """For each distinct website: host, registrable domain, why it cannot identify, and hint."""
    return _distinct_table(
        websites, "website", ("host", "domain", "non_identifying", "hint"), _website_row, workers
    )


def name_keys(names: Iterable[str | None], workers: int | None = None) -> pa.Table:
    """For each distinct company name: its normalised form, and all its words (legal form too)."""
    return _distinct_table(names, "name", ("name_key", "name_words"), name_forms, workers)


def _country_row(country: str) -> tuple[str | None]:
    return (normalise_country(country),)


def country_keys(countries: Iterable[str | None], workers: int | None = None) -> pa.Table:
    """For each distinct country as written: its ISO 3166 alpha-2 code, or null."""
    return _distinct_table(countries, "country", ("country_code",), _country_row, workers)


def canonicalise(
    con: duckdb.DuckDBPyConnection, records: pa.Table, into: str, workers: int | None = None
) -> None:
    """Create table `into`: `records` (with name, website, country) plus their canonical keys.

    `workers` caps the processes used to normalise (None: every core).
    """
    websites = website_keys(records.column("website").to_pylist(), workers)
    names = name_keys(records.column("name").to_pylist(), workers)
    countries = country_keys(records.column("country").to_pylist(), workers)
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
