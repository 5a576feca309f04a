"""Terminal output at 80 columns: tables fold by column, numbers and words never split."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.terminal import SafeConsole, fold_table, plural

NUMBERS = re.compile(r"\d[\d,.%]*")


def wide_table() -> Table:
    table = Table(title="Twelve columns")
    table.add_column("lead type")
    for n in range(11):
        table.add_column(f"measure number {n}", justify="right")
    for row in range(4):
        table.add_row(f"candidate:warmth{row}", *(f"{(row + 1) * 1_234_567 * (n + 1):,}"
                                                  for n in range(11)))
    return table


def printed(table: Table, width: int) -> str:
    out = io.StringIO()
    SafeConsole(file=out, width=width).print(table)
    return out.getvalue()


def test_a_table_wider_than_the_terminal_folds_by_column() -> None:
    table = wide_table()
    text = printed(table, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert len(fold_table(wide_table(), 80)) > 1
    for n in range(11):
        for row in range(4):
            assert f"{(row + 1) * 1_234_567 * (n + 1):,}" in text  # every number whole
        assert f"measure number {n} " in text  # headers whole too
    for row in range(4):  # the key column is repeated in every part
        assert text.count(f"candidate:warmth{row}") == len(fold_table(wide_table(), 80))


def test_a_table_that_fits_is_left_whole() -> None:
    table = Table()
    for name in ("a", "b", "c"):
        table.add_column(name, justify="right")
    table.add_row("1,000", "2,000", "3,000")
    assert fold_table(table, 80) == [table]


@pytest.mark.parametrize("n,word", [(0, "messages"), (1, "message"), (2, "messages")])
def test_plurals(n: int, word: str) -> None:
    assert plural(n, "message") == word
    assert plural(n, "delivery", "deliveries") == ("delivery" if n == 1 else "deliveries")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "ws"
    result = CliRunner().invoke(app, ["demo", str(folder), "--accounts", "400", "--partners", "2"],
                                terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "Queued: " in result.output and re.search(r"\d+ \w[\w ]* messages?[,.]", result.output)
    return folder


def test_the_report_fits_80_columns_without_splitting_numbers(demo: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(demo)], terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    wide = CliRunner().invoke(app, ["--wide", "report", str(demo)], terminal_width=80)
    numbers = set(NUMBERS.findall(wide.output))
    for number in numbers:  # a figure of the wide report is whole in the folded one
        if len(number) > 3:
            assert number in result.output, number


def test_writing_a_file_prints_only_where(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(demo), "--html", str(target)])
    assert result.exit_code == 0
    assert result.output.strip() == f"wrote {target}"
    assert target.stat().st_size > 1000
