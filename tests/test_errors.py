"""Failures of the store, the disk and the network end a command with one sentence and exit
code 1, never a traceback; DOORSTEP_DEBUG=1 shows the traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PG_ENV
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from doorstep.cli import main
from doorstep.errors import describe_failure
from doorstep.ingest.scaffold import init_workspace

needs_postgres = pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"needs {PG_ENV}")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def assert_one_sentence(output: str, *words: str) -> None:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for word in words:
        assert word in lines[0], output


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    init_workspace(folder)
    return folder


def test_an_unreachable_database_is_one_sentence(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, output = run_cli(["qualify", str(workspace)], capsys)
    assert code == 1
    assert_one_sentence(output, "cannot reach the store's database", "DOORSTEP_DATABASE_URL")


@needs_postgres
def test_a_wrong_database_name_is_one_sentence(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(os.environ[PG_ENV]).set(database="doorstep_no_such_database")
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", url.render_as_string(hide_password=False))
    code, output = run_cli(["import", str(workspace)], capsys)
    assert code == 1
    assert_one_sentence(output, "does not exist", "doorstep_no_such_database")


def test_a_read_only_store_is_one_sentence(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli(["import", str(workspace)], capsys)[0] == 0  # the store exists
    database = workspace / "doorstep.db"
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", f"sqlite:///file:{database}?mode=ro&uri=true")
    code, output = run_cli(["import", str(workspace)], capsys)
    assert code == 1
    assert_one_sentence(output, "read-only", "writable")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_sentence(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["import", str(workspace)], capsys)[0] == 0
    code, output = run_cli(["export", str(workspace), "quarantine", "--out", "/dev/full"], capsys)
    assert code == 1
    assert_one_sentence(output, "the disk is full", "re-run")


def test_doorstep_debug_shows_the_traceback(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DOORSTEP_DEBUG", "1")
    with pytest.raises(Exception, match="127.0.0.1"):
        main(["qualify", str(workspace)])


@needs_postgres
def test_a_connection_lost_mid_run_says_what_to_do_next() -> None:
    engine = create_engine(os.environ[PG_ENV])
    admin = create_engine(os.environ[PG_ENV])
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.begin() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(Exception) as lost:
            conn.execute(text("SELECT 1"))
    engine.dispose()
    admin.dispose()
    told = describe_failure(lost.value)
    assert "lost mid-run" in told and "re-run" in told and "\n" not in told
