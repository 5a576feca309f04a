"""Incremental mapping: a re-map scores only changed partner records with the saved model, and
finds exactly what a full map with that model finds."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import mapping_inputs, write_table
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.demo_world import generate_world
from doorstep.map.stage import MatchRun, find_matches
from doorstep.map.state import load_state, save_state

KEY = ["account_id", "partner_id", "partner_account_id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table]:
    root = tmp_path_factory.mktemp("world")
    generate_world(root, accounts=2000, partners=3, partner_accounts=1200, seed=11,
                   today=date(2026, 11, 1), bad_rows=False)

    return mapping_inputs(root)


def _map(ours: pa.Table, theirs: pa.Table, state: Path, *, full: bool = False,
         refit_share: float = 0.2) -> tuple[pa.Table, MatchRun]:
    found = find_matches(ours, theirs, threshold=0.9, workers=1, state_dir=state, full=full,
                         refit_share=refit_share)
    return found.overlaps.sort_by([(k, "ascending") for k in KEY]), found.run


def _change_one_partner(ours: pa.Table, theirs: pa.Table) -> pa.Table:
    """About 1% of one partner's rows: renamed, removed, and new ones that name our accounts."""
    rows = theirs.to_pylist()
    mine = [r for r in rows if r["partner_id"] == "P01"]
    renamed = {r["partner_account_id"] for r in mine[::100]}
    removed = {r["partner_account_id"] for r in mine[50::200]}
    out = []
    for r in rows:
        if r["partner_id"] == "P01" and r["partner_account_id"] in removed:
            continue
        if r["partner_id"] == "P01" and r["partner_account_id"] in renamed:
            r = {**r, "name": f"{r['name']} Worldwide"}
        out.append(r)
    for k, acc in enumerate(ours.to_pylist()[:6]):
        out.append({"partner_id": "P01", "partner_account_id": f"NEW{k}", "name": acc["name"],
                    "website": None, "country": acc["country"], "relationship": "prospect",
                    "shared_account_id": None})
    return pa.Table.from_pylist(out, schema=theirs.schema)


def _blank(folder: Path) -> None:
    """Keep the saved model but forget every scored pair: the next run scores everything."""
    fingerprint = json.loads((folder / "state.json").read_text())["fingerprint"]
    state, why = load_state(folder, fingerprint)
    assert state is not None, why
    state.pairs = state.pairs.slice(0, 0)
    state.right_keys = state.right_keys.slice(0, 0)
    state.explained = state.explained.slice(0, 0)
    save_state(state, folder, fingerprint)


def test_an_incremental_map_equals_a_full_map_with_the_saved_model(
        tmp_path: Path, world: tuple[pa.Table, pa.Table]) -> None:
    ours, theirs = world
    state = tmp_path / "map"
    first, run = _map(ours, theirs, state)
    assert run.mode == "full" and "no earlier map" in run.reason
    saved = tmp_path / "saved"
    shutil.copytree(state, saved)

    again, run = _map(ours, theirs, state)
    assert run.mode == "incremental" and run.rescored == 0 and run.gone == 0
    assert again.equals(first)

    changed = _change_one_partner(ours, theirs)
    second, run = _map(ours, changed, state)
    assert run.mode == "incremental"
    assert 0 < run.rescored < 40 and run.gone > 0
    new = {r["partner_account_id"] for r in second.to_pylist() if r["partner_id"] == "P01"}
    assert {f"NEW{k}" for k in range(6)} & new

    # the same model scoring every record from nothing gives exactly the same overlaps
    _blank(saved)
    third, run = _map(ours, changed, saved, refit_share=float("inf"))
    assert run.mode == "incremental" and run.rescored > 500
    assert second.equals(third)

    # fitting again may move a few pairs across the threshold, no more
    fourth, run = _map(ours, changed, state, full=True)
    assert run.mode == "full" and "--full" in run.reason
    a = set(zip(*(second[k].to_pylist() for k in KEY), strict=True))
    b = set(zip(*(fourth[k].to_pylist() for k in KEY), strict=True))
    assert len(a ^ b) <= 0.01 * len(a)


def test_a_full_fit_is_due_when_our_accounts_or_the_partners_change(
        tmp_path: Path, world: tuple[pa.Table, pa.Table]) -> None:
    ours, theirs = world
    state = tmp_path / "map"
    _map(ours, theirs, state)
    fewer = ours.slice(0, ours.num_rows - 5)
    _, run = _map(fewer, theirs, state)
    assert run.mode == "full" and "our accounts" in run.reason
    newcomer = pa.concat_tables([theirs, theirs.filter(pc.equal(theirs["partner_id"], "P02"))
                                 .set_column(0, "partner_id", pa.array(
                                     ["P09"] * theirs.filter(pc.equal(theirs["partner_id"], "P02"))
                                     .num_rows))])
    _, run = _map(fewer, newcomer, state)
    assert run.mode == "full" and "new partner P09" in run.reason
    many = newcomer.set_column(2, "name", pc.utf8_upper(newcomer["name"]))
    _, run = _map(fewer, many, state)
    assert run.mode == "full" and "more than 20%" in run.reason


def test_small_changes_add_up_to_a_full_fit(
        tmp_path: Path, world: tuple[pa.Table, pa.Table]) -> None:
    ours, theirs = world
    state = tmp_path / "map"
    _map(ours, theirs, state)
    # each step alone stays under the share; together they pass it
    names = theirs["name"].to_pylist()
    modes = []
    for step in range(1, 4):
        cut = step * len(names) // 10
        changed = theirs.set_column(2, "name", pa.array(
            [f"{n} Holding" if i < cut else n for i, n in enumerate(names)], pa.string()))
        _, run = _map(ours, changed, state, refit_share=0.3)
        modes.append(run.mode)
    assert modes[0] == "incremental" and "full" in modes


def test_an_unreadable_saved_model_means_a_full_map(
        tmp_path: Path, world: tuple[pa.Table, pa.Table]) -> None:
    ours, theirs = world
    state = tmp_path / "map"
    first, _ = _map(ours, theirs, state)
    (state / "scored" / "pairs.parquet").write_bytes(b"not parquet")
    second, run = _map(ours, theirs, state)
    assert run.mode == "full" and "could not be read" in run.reason
    assert second.equals(first)


def test_doorstep_map_says_which_it_did(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    write_table(folder, "accounts", [
        {"account_id": "a1", "name": "Knox & Romero Logistics", "country": "US"},
        {"account_id": "a2", "name": "Quillfeather Books Inc", "country": "US"}])
    write_table(folder, "partners", [{"partner_id": "p1", "name": "Stackly"}])
    write_table(folder, "partner_accounts", [
        {"partner_id": "p1", "partner_account_id": "x1", "name": "Knox and Romero Logistic",
         "country": "US", "relationship": "customer"},
        {"partner_id": "p1", "partner_account_id": "x2", "name": "Quilfeather Books",
         "country": "US", "relationship": "prospect"}])
    assert runner.invoke(app, ["import", str(folder)]).exit_code == 0
    first = runner.invoke(app, ["map", str(folder)])
    assert first.exit_code == 0, first.output
    assert "Full map" in first.output and "no earlier map" in first.output
    second = runner.invoke(app, ["map", str(folder)])
    assert "Incremental map: 0 new or changed" in " ".join(second.output.split())
    third = runner.invoke(app, ["map", str(folder), "--full"])
    assert "Full map" in third.output and "--full" in third.output
    assert (folder / ".doorstep" / "map" / "state.json").exists()
    # the store and what mapping keeps hold partner records: their owner's alone
    assert (folder / ".doorstep").stat().st_mode & 0o077 == 0
    for name in ("doorstep.db", "doorstep.db-wal"):
        if (folder / name).exists():
            assert (folder / name).stat().st_mode & 0o077 == 0, name
