"""The first thing a new user runs: `doorstep demo` builds a world and runs every stage."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from doorstep.cli import app

runner = CliRunner()


def test_demo_runs_every_stage_and_quarantines_exactly_the_planted_bad_rows(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "demo"
    result = runner.invoke(app, ["demo", str(workspace), "--accounts", "600", "--seed", "3"])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "Demo world" in result.output and "Import" in result.output
    assert "Account mapping" in result.output

    exported = runner.invoke(app, ["export", str(workspace), "quarantine"])
    quarantined = {(r["file"], r["row"]) for r in csv.DictReader(io.StringIO(exported.stdout))}
    with (workspace / "truth" / "bad_rows.csv").open(newline="") as f:
        planted = {(r["file"], r["row"]) for r in csv.DictReader(f)}
    assert planted and quarantined == planted

    overlaps = runner.invoke(app, ["export", str(workspace), "overlaps"])
    found = {(r["account_id"], r["partner_id"], r["partner_account_id"])
             for r in csv.DictReader(io.StringIO(overlaps.stdout))}
    with (workspace / "truth" / "overlaps.csv").open(newline="") as f:
        truth = {(r["account_id"], r["partner_id"], r["partner_account_id"])
                 for r in csv.DictReader(f)}
    assert len(found & truth) / len(found) >= 0.98  # precision on a small world
    assert len(found & truth) / len(truth) >= 0.85


def test_demo_refuses_a_folder_with_other_data(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    result = runner.invoke(app, ["demo", str(tmp_path / "mine"), "--accounts", "200"])
    assert result.exit_code == 1
    assert "not a demo workspace" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_demo_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    args = ["demo", str(workspace), "--accounts", "300", "--partners", "2"]
    assert runner.invoke(app, args).exit_code == 0
    second = runner.invoke(app, args)
    assert second.exit_code == 0
    assert "0 new, 0 changed, 0 removed" in second.output
