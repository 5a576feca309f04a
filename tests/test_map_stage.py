"""The map stage on a real store: import accounts and partner accounts, map, look at overlaps."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import mapping_inputs, write_table
from sqlalchemy import select
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.config import Config
from doorstep.demo_world import generate_world
from doorstep.ingest import import_workspace
from doorstep.ingest.scaffold import init_workspace
from doorstep.map import find_overlaps, map_accounts
from doorstep.map import parallel as parallel_module
from doorstep.map.parallel import map_items, map_ranges
from doorstep.store import Store
from doorstep.store.models import Overlap
from doorstep.workspace import Workspace

ACCOUNTS: list[dict[str, object]] = [
    {"account_id": "a1", "name": "Knox & Romero Logistics", "country": "US"},
    {"account_id": "a2", "name": "Halvorsen Marine AS", "website": "https://halvorsenmarine.no",
     "country": "NO"},
    {"account_id": "a3", "name": "Halvorsen Marine (EMEA)", "website": "halvorsenmarine.de",
     "country": "DE"},
    {"account_id": "a4", "name": "Quillfeather Books Inc", "website": "quillfeatherbooks.com",
     "country": "US"},
    {"account_id": "a5", "name": "Humble Leaf Home Inc", "country": "US"},
    {"account_id": "a6", "name": "Tessaract Dynamics GmbH", "website": "tessaractdynamics.de",
     "country": "DE"},
    {"account_id": "a7", "name": "Tessaract Dynamics Inc", "website": "tessaract-usa.com",
     "country": "US"},
]  # fmt: skip

PARTNER_ACCOUNTS: list[dict[str, object]] = [
    # its website spells our account's whole name; its own name is short
    {"partner_id": "p1", "partner_account_id": "x1", "name": "Knox & Romero Inc",
     "website": "http://knoxromerologistics.com", "country": "United States",
     "relationship": "customer"},
    {"partner_id": "p1", "partner_account_id": "x2", "name": "Halvorsen Marine",
     "website": "www.halvorsenmarine.no", "country": "Norway", "relationship": "opportunity"},
    {"partner_id": "p1", "partner_account_id": "x3", "name": "QUILLFEATHER BOOKS",
     "website": "quillfeatherbooks.sales@gmail.com", "country": "US",
     "relationship": "prospect"},
    {"partner_id": "p2", "partner_account_id": "y1", "name": "Tessaract Dynamics",
     "website": "tessaractdynamics.de", "country": "Germany", "relationship": "customer"},
]  # fmt: skip

# a look-alike of a5: its website says it is Humble Leaf Apparel, not Humble Leaf Home
LOOKALIKE: dict[str, object] = {
    "partner_id": "p1", "partner_account_id": "x4", "name": "Humble Leaf Inc",
    "website": "HTTP://HUMBLELEAFAPPAREL.COM", "country": "US", "relationship": "customer"}

PARTNERS = [{"partner_id": "p1", "name": "Stackly"}, {"partner_id": "p2", "name": "Brightwave"}]


def build(tmp_path: Path, store: Store, partner_accounts: list[dict[str, object]] | None = None,
          ) -> Workspace:
    folder = tmp_path / "ws"
    init_workspace(folder)
    write_table(folder, "accounts", ACCOUNTS)
    write_table(folder, "partners", PARTNERS)
    write_table(folder, "partner_accounts", partner_accounts or PARTNER_ACCOUNTS)
    report = import_workspace(folder, store)
    assert report.quarantined == 0
    return Workspace(folder, Config(), store)


def overlaps(store: Store) -> dict[tuple[str, str, str], dict[str, Any]]:
    with store.engine.connect() as conn:
        return {(r["account_id"], r["partner_id"], r["partner_account_id"]): dict(r)
                for r in conn.execute(select(Overlap)).mappings()}


def test_map_finds_each_true_overlap_with_its_evidence(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    report = map_accounts(workspace)
    found = overlaps(store)
    assert set(found) == {
        ("a1", "p1", "x1"), ("a2", "p1", "x2"), ("a3", "p1", "x2"), ("a4", "p1", "x3"),
        ("a6", "p2", "y1"),
    }  # fmt: skip
    assert report.overlaps == len(found) == report.inserted
    knox = found[("a1", "p1", "x1")]
    assert knox["method"] == "probabilistic"
    assert "name_in_website" in knox["evidence"]["agreed"]
    assert knox["probability"] >= workspace.config.mapping.threshold
    assert found[("a2", "p1", "x2")]["method"] == "domain"


def test_a_regional_duplicate_of_ours_maps_through_its_twin(tmp_path: Path, store: Store) -> None:
    workspace = build(tmp_path, store)
    map_accounts(workspace)
    dup = overlaps(store)[("a3", "p1", "x2")]
    assert dup["method"] == "our_duplicate"
    assert dup["evidence"]["via_account"] == "a2"
    assert dup["evidence"]["via_method"] == "domain"
    assert {"name", "domain_label", "regional_name"} <= set(dup["evidence"]["agreed"])
    # same name, but a website of its own: another company, not a duplicate
    assert ("a7", "p2", "y1") not in overlaps(store)


def test_a_website_spelling_another_company_counts_against(tmp_path: Path) -> None:
    ours, _ = _world()
    with_site = _partner_table([*PARTNER_ACCOUNTS, LOOKALIKE])
    without = _partner_table([*PARTNER_ACCOUNTS, {**LOOKALIKE, "website": None}])

    def humble(theirs: pa.Table) -> dict[str, Any]:
        rows = find_overlaps(ours, theirs, threshold=0.0).to_pylist()
        return next(r for r in rows if r["partner_account_id"] == "x4")

    against, neutral = humble(with_site), humble(without)
    evidence = json.loads(against["evidence"])
    assert evidence["disagreed"] == ["name_in_website"]
    assert evidence["terms"]["website"] < 0
    assert "website" not in json.loads(neutral["evidence"])["terms"]
    assert against["probability"] < neutral["probability"]


def test_rerunning_changes_nothing_and_a_changed_file_changes_only_its_overlaps(
    tmp_path: Path, store: Store
) -> None:
    workspace = build(tmp_path, store)
    map_accounts(workspace)
    before = overlaps(store)
    again = map_accounts(workspace)
    assert (again.inserted, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged == len(before)
    assert overlaps(store) == before
    # p1 corrects x3: it is another company; p2's file is untouched
    changed = [
        {**r, "name": "Bramblecote Books", "website": "bramblecote.co.uk", "country": "GB"}
        if r["partner_account_id"] == "x3" else r
        for r in PARTNER_ACCOUNTS
    ]
    write_table(workspace.path, "partner_accounts", changed)
    import_workspace(workspace.path, store)
    report = map_accounts(workspace)
    after = overlaps(store)
    assert (report.inserted, report.removed) == (0, 1)
    assert set(before) - set(after) == {("a4", "p1", "x3")}
    # exact-tier overlaps and other partners' overlaps are untouched (a probabilistic one of
    # the same partner may move: its list, and so its share of matches, changed)
    assert all(after[k] == before[k] for k in after
               if k[1] != "p1" or before[k]["method"] != "probabilistic")
    assert report.updated <= 1


def test_a_partner_file_without_names_or_websites_warns(tmp_path: Path, store: Store) -> None:
    rows = [*PARTNER_ACCOUNTS,
            {"partner_id": "p3", "partner_account_id": "z1", "name": "Inc.",
             "relationship": "customer", "country": "US"},
            {"partner_id": "p3", "partner_account_id": "z2", "name": "LLC",
             "website": "gmail.com", "relationship": "customer"}]  # fmt: skip
    folder = tmp_path / "ws"
    init_workspace(folder)
    write_table(folder, "partners", [*PARTNERS, {"partner_id": "p3", "name": "Empty Co"}])
    write_table(folder, "accounts", ACCOUNTS)
    write_table(folder, "partner_accounts", rows)
    assert import_workspace(folder, store).quarantined == 0
    report = map_accounts(Workspace(folder, Config(), store))
    assert any("p3" in w and "usable name or website" in w for w in report.warnings)
    assert report.overlaps == 5


def test_mapping_a_workspace_with_nothing_imported_finds_nothing(
    tmp_path: Path, store: Store
) -> None:
    folder = tmp_path / "ws"
    init_workspace(folder)
    report = map_accounts(Workspace(folder, Config(), store))
    assert (report.overlaps, report.related) == (0, 0)


def test_cli_map_prints_the_overlap_matrix(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    write_table(folder, "accounts", ACCOUNTS)
    write_table(folder, "partners", PARTNERS)
    write_table(folder, "partner_accounts", PARTNER_ACCOUNTS)
    assert runner.invoke(app, ["import", str(folder)]).exit_code == 0
    result = runner.invoke(app, ["map", str(folder)])
    assert result.exit_code == 0, result.stdout
    assert "our_duplicate" in result.stdout
    assert "prospects" in result.stdout
    exported = runner.invoke(app, ["export", str(folder), "overlaps"])
    assert exported.exit_code == 0
    assert exported.stdout.count("our_duplicate") == 1


def _partner_table(rows: list[dict[str, object]]) -> pa.Table:
    theirs = pa.table({k: [str(r.get(k)) if r.get(k) else None for r in rows]
                       for k in ("partner_id", "partner_account_id", "name", "website",
                                 "country", "relationship")})
    return theirs.append_column("shared_account_id", pa.nulls(theirs.num_rows, pa.string()))


def _world() -> tuple[pa.Table, pa.Table]:
    ours = pa.table({k: [str(r.get(k)) if r.get(k) else None for r in ACCOUNTS]
                     for k in ("account_id", "name", "website", "country")})
    return ours, _partner_table(PARTNER_ACCOUNTS)


def test_results_do_not_depend_on_the_number_of_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = _world()
    serial = find_overlaps(ours, theirs, threshold=0.9, workers=1)
    monkeypatch.setattr(parallel_module, "MIN_PARALLEL_ITEMS", 1)
    forked = find_overlaps(ours, theirs, threshold=0.9, workers=2)
    assert serial.num_rows == 5
    assert serial.equals(forked)


def test_parallel_map_keeps_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_module, "MIN_PARALLEL_ITEMS", 1)
    items = [f"n{i}" for i in range(1000)]
    assert map_items(str.upper, items, workers=2) == [s.upper() for s in items]
    parts = map_ranges(lambda a, b: (a, b), 10, workers=3)
    assert parts[0][0] == 0 and parts[-1][1] == 10
    assert all(x[1] == y[0] for x, y in zip(parts, parts[1:], strict=False))


def test_every_overlap_says_what_agreed() -> None:
    ours, theirs = _world()
    found = find_overlaps(ours, theirs, threshold=0.9).to_pylist()
    for row in found:
        evidence = json.loads(row["evidence"])
        assert evidence["agreed"], row


def test_mapping_a_generated_world_twice_gives_the_same_overlaps(tmp_path: Path) -> None:
    generate_world(tmp_path, accounts=3000, partners=3, partner_accounts=1500, seed=3,
                   today=date(2026, 11, 1), bad_rows=False)

    ours, theirs = mapping_inputs(tmp_path)
    first = find_overlaps(ours, theirs, threshold=0.9)
    # the same records in another order
    shuffled = theirs.take(pa.array(list(range(theirs.num_rows))[::-1]))
    second = find_overlaps(ours.take(pa.array(list(range(ours.num_rows))[::-1])), shuffled,
                           threshold=0.9)
    assert first.num_rows > 1000
    assert first.equals(second)


def _table(rows: list[dict[str, object]], columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns})


OUR_COLUMNS = ["account_id", "name", "website", "country"]
THEIR_COLUMNS = ["partner_id", "partner_account_id", "name", "website", "country",
                 "relationship", "shared_account_id"]


def test_the_same_brand_abroad_with_its_own_website_is_related_never_an_overlap() -> None:
    ours = _table([
        {"account_id": "m1", "name": "Maplewave Security Corporation",
         "website": "https://maplewave.com", "country": "US"},
        {"account_id": "m2", "name": "Maplewave Security Ltd.", "website": "maplewave.co.uk",
         "country": "GB"},  # our own namesake abroad: never grouped with m1
        {"account_id": "k1", "name": "Korvath Analytics Inc", "website": "korvath.com",
         "country": "US"},
    ], OUR_COLUMNS)
    theirs = _table([
        {"partner_id": "p1", "partner_account_id": "z1", "name": "Maplewave Security B.V.",
         "website": "www.maplewave.nl", "country": "Netherlands", "relationship": "customer"},
        {"partner_id": "p1", "partner_account_id": "z2", "name": "Maplewave Security Corp",
         "website": "maplewave.com", "country": "US", "relationship": "prospect"},
        # the same website in another country is the same company: an overlap
        {"partner_id": "p1", "partner_account_id": "z3", "name": "Korvath Analytics GmbH",
         "website": "korvath.com", "country": "DE", "relationship": "customer"},
    ], THEIR_COLUMNS)
    overlaps, related = find_overlaps(ours, theirs, threshold=0.9, with_related=True)
    found = {(r["account_id"], r["partner_account_id"]) for r in overlaps.to_pylist()}
    assert ("m1", "z2") in found and ("k1", "z3") in found
    assert not {("m1", "z1"), ("m2", "z1"), ("m2", "z2")} & found
    assert all(r["account_id"] != "m2" for r in overlaps.to_pylist())
    assert {(r["account_id"], r["partner_account_id"]) for r in related.to_pylist()} <= {
        ("m1", "z1"), ("m2", "z1"), ("m2", "z2")}


def test_related_accounts_are_stored_exported_and_never_qualify(tmp_path: Path) -> None:
    from doorstep.qualify import qualify_leads

    workspace_dir = tmp_path / "ws"
    init_workspace(workspace_dir)
    write_table(workspace_dir, "accounts", [
        {"account_id": "m1", "name": "Maplewave Security Corporation",
         "website": "https://maplewave.com", "country": "US", "employees": 300}])
    write_table(workspace_dir, "partners", [{"partner_id": "p1", "name": "Cloudway"}])
    write_table(workspace_dir, "partner_accounts", [
        {"partner_id": "p1", "partner_account_id": "z1", "name": "Maplewave Security Corporation",
         "website": "maplewave.nl", "country": "NL", "relationship": "customer"}])
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(workspace_dir)]).exit_code == 0
    mapped = runner.invoke(app, ["map", str(workspace_dir)])
    assert mapped.exit_code == 0 and "related accounts" in " ".join(mapped.output.split())
    out = tmp_path / "related.csv"
    assert runner.invoke(app, ["export", str(workspace_dir), "related", "--out",
                               str(out)]).exit_code == 0
    rows = list(pacsv.read_csv(out).to_pylist())
    assert [(r["account_id"], r["partner_account_id"]) for r in rows] == [("m1", "z1")]
    from doorstep.workspace import open_workspace

    workspace = open_workspace(workspace_dir)
    with workspace.store.engine.connect() as conn:
        assert conn.execute(select(Overlap)).all() == []
    assert qualify_leads(workspace).leads == 0
    workspace.store.engine.dispose()
