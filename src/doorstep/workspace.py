"""Opening a workspace: its folder, its configuration and its store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from doorstep.config import CONFIG_FILE, Config, ConfigError, database_url, load_config
from doorstep.store import Store, open_store
from doorstep.store.models import Account

DATA_DIR = "data"


@dataclass
class Workspace:
    """A workspace folder with its loaded configuration and an open store."""

    path: Path
    config: Config
    store: Store


def is_workspace(folder: Path) -> bool:
    """Whether `folder` is a workspace: it holds doorstep.toml or a data/ folder of tables."""
    return folder.is_dir() and ((folder / CONFIG_FILE).is_file() or (folder / DATA_DIR).is_dir())


def open_workspace(path: Path | str, *, must_exist: bool = True) -> Workspace:
    """Open the workspace at `path`: read doorstep.toml and connect to (and upgrade) the store.

    A folder that is not a workspace is refused before anything is written in it.
    """
    folder = Path(path)
    if must_exist and not is_workspace(folder):
        what = "does not exist" if not folder.exists() else (
            "is not a folder" if not folder.is_dir() else
            f"is not a doorstep workspace (no {CONFIG_FILE}, no {DATA_DIR}/ folder)")
        raise ConfigError(
            f"{folder} {what}: create a workspace with `doorstep init {folder}` "
            f"(or `doorstep demo {folder}` for an example)."
        )
    config = load_config(folder)
    return Workspace(folder, config, open_store(database_url(folder, config)))


def require_imported(workspace: Workspace) -> None:
    """Stop with one sentence when the workspace's store holds none of our accounts yet."""
    with workspace.store.engine.connect() as conn:
        imported = conn.execute(select(Account.account_id).limit(1)).first()
    if imported is None:
        raise ConfigError(
            f"nothing has been imported into {workspace.path} yet: run "
            f"`doorstep import {workspace.path}` first (or `doorstep run {workspace.path}`)."
        )
