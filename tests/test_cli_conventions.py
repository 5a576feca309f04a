"""The command line behaves like a well-made tool: --version, -h, flags without a type."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from doorstep.cli import app


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_installed_version(flag: str) -> None:
    result = CliRunner().invoke(app, [flag])
    assert result.exit_code == 0
    assert result.output.strip() == f"doorstep {version('doorstep')}"


@pytest.mark.parametrize("args", [["-h"], ["map", "-h"], ["lead", "accept", "-h"],
                                  ["user", "add", "-h"], ["share", "sync", "-h"]])
def test_dash_h_is_help_everywhere(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, prog_name="doorstep")
    assert result.exit_code == 0, result.output
    assert "Usage: doorstep" in result.output and "Show this message and exit." in result.output


def test_flags_show_no_type_as_if_they_took_a_value() -> None:
    result = CliRunner().invoke(app, ["map", "--help"], terminal_width=80)
    assert "--full" in result.output and "<bool>" not in result.output
