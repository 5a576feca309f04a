"""End to end through the CLI: init, fill the tables, import, export the quarantine."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from conftest import SMALL_WORLD, write_table
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.ingest.contract import TABLES

runner = CliRunner()


def test_init_import_export_round_trip(tmp_path: Path) -> None:
    workspace = tmp_path / "acme"
    result = runner.invoke(app, ["init", str(workspace)])
    assert result.exit_code == 0, result.output
    assert (workspace / "doorstep.toml").read_text().startswith("# doorstep workspace")
    for table in TABLES:
        header = (workspace / "data" / f"{table.name}.csv").read_text().strip().split(",")
        assert header == table.column_names

    # An empty workspace imports cleanly.
    result = runner.invoke(app, ["import", str(workspace)])
    assert result.exit_code == 0, result.output

    for name, rows in SMALL_WORLD.items():
        write_table(workspace, name, rows)
    reps = [*SMALL_WORLD["reps"], {"rep_id": "r3", "name": "Bad Email", "email": "nope"}]
    write_table(workspace, "reps", reps)

    result = result_import = runner.invoke(app, ["import", str(workspace)])
    assert result.exit_code == 0, result.output
    assert "1 row quarantined" in result.output

    result = runner.invoke(app, ["export", str(workspace), "quarantine"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows == [
        {
            "file": "data/reps.csv",
            "row": "4",
            "column": "email",
            "value": "nope",
            "reason": "expected an email address such as name@example.com",
            "outcome": "row quarantined",
        }
    ]
    said = " ".join(result_import.output.split())
    assert ("reps.email: 1 row quarantined expected an email address such as name@example.com "
            'first: data/reps.csv row 4, "nope"') in said

    out = tmp_path / "q.csv"
    result = runner.invoke(app, ["export", str(workspace), "quarantine", "--out", str(out)])
    assert result.exit_code == 0 and len(out.read_text().splitlines()) == 2

    # Importing again changes nothing.
    result = runner.invoke(app, ["import", str(workspace)])
    assert result.exit_code == 0
    assert "Import" in result.output and "new" in result.output


def test_missing_required_column_exits_1_with_one_sentence(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    runner.invoke(app, ["init", str(workspace)])
    (workspace / "data" / "accounts.csv").write_text("account_id,website\n1,acme.com\n")
    result = runner.invoke(app, ["import", str(workspace)])
    assert result.exit_code == 1
    assert "accounts.csv: required column 'name' is missing" in result.stderr
    assert result.stderr.count("\n") <= 3


def test_import_of_a_folder_that_is_not_a_workspace_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "doorstep init" in result.stderr


def test_unknown_export_table_is_a_usage_error(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path / "ws")])
    result = runner.invoke(app, ["export", str(tmp_path / "ws"), "nonsense"])
    assert result.exit_code == 2
