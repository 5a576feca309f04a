"""Export layouts doorstep knows (HubSpot, Salesforce, Crossbeam, Reveal), declared in small
files under `profiles/`, and turning such a file into a contract table.

A layout names, for each contract column, the headers that may hold it (matched after folding
case, spaces and punctuation, as contract headers are), and how a value becomes the contract's:

- a list of headers: the first present and non-empty one, row by row;
- `map` (with `contains`, `other`): a value replaced by the first key it equals (or contains);
- `rep`: an owner's id, email or name resolved to a rep's `rep_id` (else left empty; the
  original column stays on the row as an attribute);
- `slug`: a name made an id ("Acme Cloud" → "acme-cloud");
- `first`: the first of several ids ("123;456" → "123");
- `when`: the value only where another column says so (a close date only for closed deals);
- `or_hash`: an id made from other columns when the file has none.

A file is recognised by its headers: a layout fits when every column the contract requires has
one of its headers. Columns a layout does not use are kept as attributes.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from doorstep.ingest.contract import TABLE_BY_NAME, Table
from doorstep.ingest.read import (
    FORMATS,
    ROW,
    ImportFailure,
    TableFile,
    delimiter_of,
    encoding_of,
    fold_header,
)

PROFILE_NAMES = ("hubspot", "salesforce", "crossbeam", "reveal")


@dataclass(frozen=True)
class Spec:
    """How one contract column is read from a layout's headers."""

    headers: tuple[str, ...]  # folded
    shown: tuple[str, ...]  # as the layout file spells them
    mapping: tuple[tuple[str, str], ...] = ()
    contains: bool = False
    other: str | None = None
    rep: bool = False
    slug: bool = False
    first: bool = False
    or_hash: tuple[str, ...] = ()
    when_headers: tuple[str, ...] = ()
    when_in: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Layout:
    """One export layout: which contract table it fills and from which headers."""

    profile: str
    title: str
    name: str
    table: Table
    sample: str
    columns: dict[str, Spec] = field(hash=False)
    adds_partners: bool = False

    @property
    def label(self) -> str:
        return f"{self.title} {self.name}"

    def required(self) -> list[tuple[str, Spec]]:
        """The contract's required columns of the table, each with its spec, that a file must
        have a header for (an id made by `or_hash` needs none)."""
        return [(c, self.columns[c]) for c in self.table.required
                if c in self.columns and not self.columns[c].or_hash]

    def missing(self, folded: set[str]) -> list[str]:
        """The first spelling of each required header the file lacks."""
        return [spec.shown[0] for _, spec in self.required()
                if not any(h in folded for h in spec.headers)]

    def score(self, folded: set[str]) -> int:
        return sum(1 for s in self.columns.values() if any(h in folded for h in s.headers))


def _spec(value: Any) -> Spec:
    if isinstance(value, str):
        value = {"from": [value]}
    elif isinstance(value, list):
        value = {"from": value}
    headers = [str(h) for h in value["from"]]
    when = value.get("when") or {}
    when_cols = when.get("column", [])
    when_cols = [when_cols] if isinstance(when_cols, str) else when_cols
    return Spec(
        headers=tuple(fold_header(h) for h in headers),
        shown=tuple(headers),
        mapping=tuple((str(k).lower(), str(v)) for k, v in (value.get("map") or {}).items()),
        contains=bool(value.get("contains", False)),
        other=value.get("other"),
        rep=bool(value.get("rep", False)),
        slug=bool(value.get("slug", False)),
        first=bool(value.get("first", False)),
        or_hash=tuple(value.get("or_hash", ())),
        when_headers=tuple(fold_header(h) for h in when_cols),
        when_in=frozenset(str(v).lower() for v in when.get("in", ())),
    )


def _parse_layouts(text: str, profile: str) -> tuple[Layout, ...]:
    """The layouts a profile file declares; ValueError naming what is wrong."""
    raw = tomllib.loads(text)
    out = []
    for item in raw.get("layouts") or []:
        table = TABLE_BY_NAME.get(str(item.get("table")))
        if table is None:
            raise ValueError(f"layout {item.get('name')!r}: table must be one of "
                             f"{', '.join(TABLE_BY_NAME)}")
        columns = item.get("columns") or {}
        helpers = {"partner_name"}
        unknown = sorted(set(columns) - set(table.column_names) - helpers)
        if unknown:
            raise ValueError(f"layout {item.get('name')!r}: {table.name} has no column "
                             f"{unknown[0]!r}")
        out.append(Layout(profile, str(raw.get("title", profile)), str(item.get("name", "")),
                          table, str(item.get("sample", "")),
                          {k: _spec(v) for k, v in columns.items()},
                          bool(item.get("adds_partners", False))))
    if not out:
        raise ValueError("it declares no [[layouts]]")
    return tuple(out)


@cache
def profile_layouts(profile: str) -> tuple[Layout, ...]:
    """The layouts of one of doorstep's profiles, from its file."""
    text = resources.files("doorstep.ingest").joinpath(f"profiles/{profile}.toml").read_text(
        encoding="utf-8")
    return _parse_layouts(text, profile)


WORKSPACE_PROFILES = "profiles"


def workspace_layouts(workspace: Path) -> list[Layout]:
    """Layouts a workspace declares in its own profiles/*.toml, in the same form as doorstep's
    (for an export whose columns were renamed, or a tool doorstep does not know)."""
    out: list[Layout] = []
    for path in sorted((workspace / WORKSPACE_PROFILES).glob("*.toml")):
        try:
            out.extend(_parse_layouts(path.read_text(encoding="utf-8"), path.stem))
        except (tomllib.TOMLDecodeError, ValueError, KeyError, TypeError) as exc:
            raise ImportFailure(f"{path}: {exc}; fix the layout (docs/imports.md shows the "
                                "form) and retry.") from exc
    return out


def layouts(profile: str | None = None, extra: Sequence[Layout] = ()) -> list[Layout]:
    """The layouts of `profile`, or of every profile and the workspace's own (`extra`)."""
    if profile:
        return list(profile_layouts(profile))
    return [*extra, *(lay for p in PROFILE_NAMES for lay in profile_layouts(p))]


def read_header(path: Path, encoding: str) -> list[str]:
    """A file's column names, without reading its rows."""
    if path.suffix == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except (OSError, pa.ArrowInvalid) as exc:
            raise ImportFailure(f"{path} is not a readable Parquet file ({exc}); re-export it.") \
                from exc
    enc = encoding_of(path, encoding)
    try:
        with path.open(encoding=enc, newline="") as f:
            return next(csv.reader(f, delimiter=delimiter_of(path, enc)), [])
    except (UnicodeDecodeError, UnicodeError, csv.Error):
        return []


def recognise(path: Path, header: list[str], profile: str | None,
              table: Table | None = None, extra: Sequence[Layout] = ()) -> Layout | None:
    """The layout whose required headers the file has (the one using most of its headers), or
    None."""
    folded = {fold_header(h) for h in header}
    fits = [lay for lay in layouts(profile, extra) if (table is None or lay.table == table)
            and not lay.missing(folded)]
    return max(fits, key=lambda lay: lay.score(folded)) if fits else None


def not_recognised(path: Path, header: list[str], profile: str | None,
                   extra: Sequence[Layout] = ()) -> ImportFailure:
    """One sentence: the closest layout, the headers it lacks and the file's closest header."""
    folded = {fold_header(h) for h in header}
    closest = max(layouts(profile, extra),
                  key=lambda lay: (lay.score(folded), -len(lay.missing(folded))))
    missing = closest.missing(folded)
    known = {h for spec in closest.columns.values() for h in spec.headers}
    unused = [h.strip() for h in header if fold_header(h) not in known]  # not read as another
    near = difflib.get_close_matches(missing[0], unused, n=1, cutoff=0.4)
    hint = f" (the closest header is '{near[0]}')" if near else ""
    which = f"the {closest.title} profile's" if profile else "any known"
    named = ", ".join(f"'{m}'" for m in missing)
    tables = ", ".join(t for t in TABLE_BY_NAME)
    return ImportFailure(
        f"{path} matches no layout of {which} exports: the nearest, the {closest.label}, needs "
        f"{named}{hint}; rename that column, or name the file after its table ({tables}) with "
        "the contract's columns, and retry."
    )


# --- turning a file of a layout into its contract table -----------------------------------


def _blank(values: pa.ChunkedArray | pa.Array) -> Any:
    return pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_trim_whitespace(values), ""))


def _coalesced(data: pa.Table, names: list[str]) -> pa.ChunkedArray:
    out = data.column(names[0])
    for name in names[1:]:
        out = pc.if_else(_blank(out), data.column(name), out)
    return pc.fill_null(out, "")


def _per_value(values: pa.ChunkedArray, fn: Any) -> pa.ChunkedArray:
    """Apply a Python function once per distinct value."""
    unique = pc.unique(values)
    mapped = pa.array([fn(v) for v in unique.to_pylist()], pa.string())
    return pc.take(mapped, pc.index_in(values, unique))


def _mapped(spec: Spec, value: str) -> str:
    if not value.strip():
        return ""
    folded = value.strip().lower()
    for key, to in spec.mapping:
        if (key in folded) if spec.contains else (key == folded):
            return to
    return spec.other if spec.other is not None else value


def slug(value: str) -> str:
    """An id from a name: lower case, words joined by "-"."""
    return re.sub(r"[^0-9a-z]+", "-", value.strip().lower()).strip("-")


def _rep_ids(reps: TableFile | None) -> dict[str, str]:
    """Each rep's id, email and name (lower case) → rep_id."""
    if reps is None or not reps.data.num_rows:
        return {}
    out: dict[str, str] = {}
    rows = reps.data.select([c for c in ("rep_id", "email", "name")
                             if c in reps.data.column_names]).to_pylist()
    for kind in ("name", "email", "rep_id"):  # ids win over emails over names
        for row in rows:
            rep_id = (row.get("rep_id") or "").strip()
            key = (row.get(kind) or "").strip().lower()
            if rep_id and key:
                out[key] = rep_id
    return out


@dataclass
class Adapted:
    """A file of a layout as its contract table, and the partners it names."""

    table_file: TableFile
    partners: list[tuple[str, str, int]] = field(default_factory=list)  # id, name, row


def adapt(raw: TableFile, layout: Layout, reps: TableFile | None) -> Adapted:
    """Turn a file read as it is (`raw`, its own headers) into `layout`'s contract table."""
    data = raw.data
    by_fold: dict[str, str] = {}
    for name in data.column_names:
        if name != ROW:
            by_fold.setdefault(fold_header(name), name)
    used: set[str] = set()
    kept_too: set[str] = set()  # used, and kept as an attribute as well
    out: dict[str, pa.ChunkedArray] = {}
    rep_ids = _rep_ids(reps)
    hashed: list[tuple[str, Spec]] = []
    for column, spec in layout.columns.items():
        present = [by_fold[h] for h in spec.headers if h in by_fold]
        used.update(present)
        if not present:
            if spec.or_hash:
                hashed.append((column, spec))
            continue
        values = _coalesced(data, present)
        if spec.first:
            values = pc.replace_substring_regex(values, r"^\s*([^;,]*?)\s*[;,].*$", r"\1")
        if spec.mapping or spec.other is not None:
            values = _per_value(values, lambda v, s=spec: _mapped(s, v or ""))
        if spec.slug:
            values = _per_value(values, lambda v: slug(v or ""))
        if spec.rep:
            kept_too.update(present)
            values = _per_value(values, lambda v: rep_ids.get((v or "").strip().lower(), ""))
        if spec.when_headers:
            gate = [by_fold[h] for h in spec.when_headers if h in by_fold]
            used.update(gate)
            if gate:
                said = pc.utf8_lower(pc.utf8_trim_whitespace(_coalesced(data, gate)))
                values = pc.if_else(pc.is_in(said, pa.array(sorted(spec.when_in))), values, "")
            else:
                values = pc.if_else(_blank(values), values, "")
        if spec.or_hash:
            hashed.append((column, spec))
        out[column] = values
    for column, spec in hashed:
        parts = [out[c] if c in out else None for c in spec.or_hash]
        rows = [pc.fill_null(p, "").to_pylist() if p is not None else None for p in parts]
        made = ["h-" + hashlib.sha1("\x1f".join(r[i] if r else "" for r in rows).encode(),
                                    usedforsecurity=False).hexdigest()[:16]
                for i in range(data.num_rows)]
        made_arr = pa.chunked_array([pa.array(made, pa.string())])
        out[column] = pc.if_else(_blank(out[column]), made_arr, out[column]) \
            if column in out else made_arr

    partners: list[tuple[str, str, int]] = []
    if layout.adds_partners and "partner_id" in out:
        names = out.get("partner_name", out["partner_id"])
        seen: set[str] = set()
        for pid, name, row in zip(out["partner_id"].to_pylist(), names.to_pylist(),
                                  data.column(ROW).to_pylist(), strict=True):
            if pid and pid not in seen:
                seen.add(pid)
                partners.append((pid, (name or pid).strip(), row))

    contract = set(layout.table.column_names)
    columns = {c: v for c, v in out.items() if c in contract}
    extras = [n for n in data.column_names
              if n != ROW and (n not in used or n in kept_too) and n not in contract]
    table = pa.table({**columns, **{n: data.column(n) for n in extras}, ROW: data.column(ROW)})
    return Adapted(TableFile(layout.table, raw.path, table, extras, raw.rejected), partners)


def with_partners(partners: TableFile, named: Iterable[tuple[str, str, int]]) -> TableFile:
    """`partners` with a row for each partner an export names that it does not list."""
    listed = {(v or "").strip() for v in partners.data.column("partner_id").to_pylist()}
    new = [(pid, name, row) for pid, name, row in named if pid not in listed]
    if not new:
        return partners
    rows: dict[str, list[Any]] = {n: [None] * len(new) for n in partners.data.column_names}
    rows["partner_id"] = [p for p, _, _ in new]
    rows["name"] = [n for _, n, _ in new]
    # numbered after the file's own rows, so that no two rows share a number
    last = pc.max(partners.data.column(ROW)).as_py() or 1
    rows[ROW] = [last + i for i in range(1, len(new) + 1)]
    extra = pa.table({n: pa.array(v, partners.data.schema.field(n).type)
                      for n, v in rows.items()})
    partners.data = pa.concat_tables([partners.data, extra])
    return partners


# --- which file holds which table ------------------------------------------------------------

_READABLE = (*FORMATS, ".tsv", ".txt")


@dataclass
class Source:
    """The file a table is read from, and the export layout it has (None: the contract's)."""

    path: Path
    layout: Layout | None = None


def raw_table(table: Table) -> Table:
    """`table` without columns: a file of a layout is first read with its own headers."""
    return Table(table.name, key=(), columns=())


def _has_contract_columns(table: Table, header: list[str]) -> bool:
    folded = {fold_header(h) for h in header}
    return all(c in folded for c in table.required)


def locate_sources(data_dir: Path, *, profile: str | None, encoding: str,
                   required: tuple[str, ...]) -> dict[str, Source | None]:
    """Every table's file under `data_dir`: files named after a table (NAME.csv or
    NAME.parquet), and exports recognised by their headers (only `profile`'s, when named).

    Stops with ImportFailure, before anything is read, when a file fits no layout, two files
    hold one table, or a table in `required` has none.
    """
    if not data_dir.is_dir():
        raise ImportFailure(
            f"{data_dir} does not exist: run `doorstep init` on the workspace, "
            "add your tables and retry."
        )
    found: dict[str, Source | None] = dict.fromkeys(TABLE_BY_NAME)
    named: set[Path] = set()
    extra = workspace_layouts(data_dir.parent) if profile is None else []
    for table in TABLE_BY_NAME.values():
        paths = [data_dir / f"{table.name}{ext}" for ext in FORMATS
                 if (data_dir / f"{table.name}{ext}").exists()]
        if len(paths) > 1:
            raise ImportFailure(
                f"{paths[0]} and {paths[1]} both exist: keep one file per table and retry.")
        if not paths:
            continue
        named.add(paths[0])
        header = read_header(paths[0], encoding)
        layout = None
        if header and not _has_contract_columns(table, header):
            layout = recognise(paths[0], header, profile, table, extra)
        found[table.name] = Source(paths[0], layout)
    for path in sorted(data_dir.iterdir()):
        if (path in named or path.name.startswith(".") or not path.is_file()
                or path.suffix.lower() not in _READABLE):
            continue
        header = read_header(path, encoding)
        layout = recognise(path, header, profile, extra=extra)
        if layout is None:
            raise not_recognised(path, header, profile, extra)
        before = found[layout.table.name]
        if before is not None:
            raise ImportFailure(
                f"{before.path} and {path} both hold {layout.table.name}: keep one file per "
                "table and retry.")
        found[layout.table.name] = Source(path, layout)
    adds_partners = any(s is not None and s.layout is not None and s.layout.adds_partners
                        for s in found.values())
    for name in required:
        if found[name] is None and not (name == "partners" and adds_partners):
            raise ImportFailure(
                f"{data_dir / (name + '.csv')} is missing: accounts, partners and "
                f"partner_accounts need a file (doorstep init writes them with headers, or "
                f"use a CRM or account-mapping export); add it and retry."
            )
    return found
