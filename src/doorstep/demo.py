"""The demo: a realistic synthetic workspace a new user can run every stage on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from doorstep.config import CONFIG_FILE, DEFAULT_TOML, ConfigError
from doorstep.demo_world import WorldSummary, generate_world

DEMO_ICP = """\
[icp]
# Ideal customer profile. An empty list means "any".
industries = ["software", "fintech", "healthcare", "logistics", "manufacturing"]
countries = []          # ISO alpha-2 codes, e.g. ["US", "GB", "DE"]
employees_min = 50
employees_max = 5000
"""


def demo_config() -> str:
    """The demo's doorstep.toml: the defaults, with an ICP that some accounts miss."""
    start = DEFAULT_TOML.index("[icp]")
    end = DEFAULT_TOML.index("\n[", start) + 1
    return DEFAULT_TOML[:start] + DEMO_ICP + DEFAULT_TOML[end:]


def create_demo_workspace(
    path: Path, *, accounts: int = 5000, partners: int = 4, seed: int = 7,
    today: date | None = None, progress: Callable[[str, int], None] | None = None,
) -> WorldSummary:
    """Write a synthetic workspace (config, data/ and truth/) to `path`.

    Refuses a folder that holds anything but an earlier demo, so real data is never overwritten.
    """
    if path.exists() and any(path.iterdir()) and not (path / "truth").is_dir():
        raise ConfigError(
            f"{path} is not empty and is not a demo workspace: pick a new folder for the demo."
        )
    path.mkdir(parents=True, exist_ok=True)
    summary = generate_world(path, accounts=accounts, partners=partners, seed=seed, today=today,
                             progress=progress)
    (path / CONFIG_FILE).write_text(demo_config(), encoding="utf-8")
    return summary
