"""Workspace commands refuse what is not a workspace, or not imported yet, in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.ingest.scaffold import init_workspace

STAGES = (["map"], ["qualify"], ["act"], ["track"], ["report"])


@pytest.mark.parametrize("command", [*STAGES, ["import"], ["export", "{}", "leads"],
                                     ["user", "list"], ["serve"]])
def test_a_folder_that_is_not_a_workspace_is_refused_and_left_alone(
    tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path / "emptydir"
    folder.mkdir()
    args = [c.format(folder) for c in command] if "{}" in command else [*command, str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "is not a doorstep workspace" in said and f"doorstep init {folder}" in said
    assert list(folder.iterdir()) == []  # no doorstep.db, nothing written


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["map", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "does not exist" in result.output


@pytest.mark.parametrize("command", STAGES)
def test_a_stage_before_any_import_says_to_import_first(
    tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path / "ws"
    init_workspace(folder)
    result = CliRunner().invoke(app, [*command, str(folder)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"nothing has been imported into {folder} yet" in said
    assert f"doorstep import {folder}" in said
