"""A new workspace: a commented doorstep.toml and empty tables with their headers."""

from __future__ import annotations

import csv
from pathlib import Path

from doorstep.config import CONFIG_FILE, DEFAULT_TOML
from doorstep.ingest.contract import TABLES


def init_workspace(path: Path, *, overwrite: bool = False) -> list[Path]:
    """Create the workspace folder, its doorstep.toml and one header-only CSV per table.

    Existing files are kept unless `overwrite`; returns the files written.
    """
    data = path / "data"
    data.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    config = path / CONFIG_FILE
    if overwrite or not config.exists():
        config.write_text(DEFAULT_TOML, encoding="utf-8")
        written.append(config)
    for table in TABLES:
        target = data / f"{table.name}.csv"
        if not overwrite and (target.exists() or (data / f"{table.name}.parquet").exists()):
            continue
        with target.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow(table.column_names)
        written.append(target)
    return written
