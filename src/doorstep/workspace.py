"""Opening a workspace: its folder, its configuration and its store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from doorstep.config import Config, ConfigError, database_url, load_config
from doorstep.store import Store, open_store


@dataclass
class Workspace:
    """A workspace folder with its loaded configuration and an open store."""

    path: Path
    config: Config
    store: Store


def open_workspace(path: Path | str, *, must_exist: bool = True) -> Workspace:
    """Open the workspace at `path`: read doorstep.toml and connect to (and upgrade) the store."""
    folder = Path(path)
    if must_exist and not folder.is_dir():
        raise ConfigError(
            f"{folder} is not a workspace folder: create one with `doorstep init {folder}`."
        )
    config = load_config(folder)
    return Workspace(folder, config, open_store(database_url(folder, config)))
