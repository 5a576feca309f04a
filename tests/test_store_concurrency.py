"""Many processes opening a store that does not exist yet take turns: one creates it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from doorstep.store import open_store

PROCESSES = 4


def _open_when_all_ready(url: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        store = open_store(url)
        store.engine.dispose()
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # the test reports what went wrong in the child
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_processes_creating_a_new_store_at_once_take_turns(store_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_open_when_all_ready, args=(store_url, barrier, results))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    outcomes = [results.get(timeout=5) for _ in workers]
    assert outcomes == ["ok"] * PROCESSES
    engine = create_engine(store_url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    assert len(versions) == 1
    assert "accounts" in inspect(engine).get_table_names()
    engine.dispose()


def test_two_imports_on_a_fresh_workspace_both_succeed(small_workspace: Path) -> None:
    assert not (small_workspace / "doorstep.db").exists()
    cmd = [str(Path(sys.executable).with_name("doorstep")), "import", str(small_workspace)]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in out + err
    engine = create_engine(f"sqlite:///{small_workspace / 'doorstep.db'}")
    with engine.connect() as conn:
        accounts = conn.execute(text("SELECT count(*) FROM accounts")).scalar_one()
    engine.dispose()
    assert accounts > 0
