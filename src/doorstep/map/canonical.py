"""Canonical matching keys for accounts: normalise each distinct value once, in bulk."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import duckdb
import pyarrow as pa

from doorstep.map.normalize import (
    is_non_identifying,
    normalise_country,
    normalise_name,
    registrable_domain,
    website_host,
)


def _distinct_table(
    values: Iterable[str | None], columns: dict[str, Callable[[str], Any]], source: str
) -> pa.Table:
    distinct = sorted({v for v in values if v})
    data: dict[str, list[Any]] = {source: distinct}
    for name, fn in columns.items():
        data[name] = [fn(v) for v in distinct]
    return pa.table(data)


def website_keys(websites: Iterable[str | None]) -> pa.Table:
    """For each distinct website: its host, registrable domain and why it cannot identify."""
    return _distinct_table(
        websites,
        {
            "host": website_host,
            "domain": registrable_domain,
            "non_identifying": is_non_identifying,
        },
        "website",
    )


def name_keys(names: Iterable[str | None]) -> pa.Table:
    """For each distinct company name: its normalised form."""
    return _distinct_table(names, {"name_key": normalise_name}, "name")


def country_keys(countries: Iterable[str | None]) -> pa.Table:
    """For each distinct country as written: its ISO 3166 alpha-2 code, or null."""
    return _distinct_table(countries, {"country_code": normalise_country}, "country")


def canonicalise(con: duckdb.DuckDBPyConnection, records: pa.Table, into: str) -> None:
    """Create table `into`: `records` (with name, website, country) plus their canonical keys."""
    websites = website_keys(records.column("website").to_pylist())
    names = name_keys(records.column("name").to_pylist())
    countries = country_keys(records.column("country").to_pylist())
    con.register("records_in", records)
    con.register("websites_in", websites)
    con.register("names_in", names)
    con.register("countries_in", countries)
    con.execute(f"""
        CREATE OR REPLACE TABLE {into} AS
        SELECT r.*, n.name_key, c.country_code,
               w.host, w.non_identifying,
               CASE WHEN w.non_identifying IS NULL THEN w.domain END AS domain
        FROM records_in r
        LEFT JOIN names_in n ON r.name = n.name
        LEFT JOIN websites_in w ON r.website = w.website
        LEFT JOIN countries_in c ON r.country = c.country
    """)
    for view in ("records_in", "websites_in", "names_in", "countries_in"):
        con.unregister(view)
