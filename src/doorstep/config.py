"""The workspace configuration: `doorstep.toml`, one typed model."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_FILE = "doorstep.toml"
DATABASE_URL_ENV = "DOORSTEP_DATABASE_URL"


class ConfigError(ValueError):
    """The workspace or its doorstep.toml is not usable; the message says why and what to do."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file doorstep.db in the workspace"
    )


class IcpConfig(_Section):
    industries: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    employees_min: int | None = 50
    employees_max: int | None = 5000
    revenue_min: float | None = None
    revenue_max: float | None = None


class WarmthConfig(_Section):
    require_confirmation: bool = True
    max_activity_age_days: int = Field(180, gt=0)
    min_score: float = Field(50, ge=0, le=100)


class MappingConfig(_Section):
    threshold: float = Field(0.9, ge=0, le=1, description="minimum match probability")


class MeasureConfig(_Section):
    window_days: int = Field(90, gt=0)


class Config(_Section):
    """Everything in doorstep.toml; every key has a default."""

    store: StoreConfig = Field(default_factory=lambda: StoreConfig())
    icp: IcpConfig = Field(default_factory=lambda: IcpConfig())
    warmth: WarmthConfig = Field(default_factory=lambda: WarmthConfig())
    mapping: MappingConfig = Field(default_factory=lambda: MappingConfig())
    measure: MeasureConfig = Field(default_factory=lambda: MeasureConfig())


def _describe(error: Any) -> str:
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    return f"'{key}': {error['msg'].lower()} (got {error.get('input')!r})"


def load_config(workspace: Path) -> Config:
    """Read and validate `doorstep.toml` in the workspace; a missing file means all defaults."""
    path = workspace / CONFIG_FILE
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}; fix the file and retry.") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{path}: {problems}.") from exc


def database_url(workspace: Path, config: Config) -> str:
    """The store's URL: DOORSTEP_DATABASE_URL, then [store] url, then SQLite in the workspace."""
    url = os.environ.get(DATABASE_URL_ENV) or config.store.url
    if url:
        return url
    return f"sqlite:///{(workspace / 'doorstep.db').resolve()}"


DEFAULT_TOML = """\
# doorstep workspace configuration.
# Every key is optional; the values shown are the defaults.
# Tables live under data/ as CSV or Parquet (one file per table).

[store]
# Where doorstep keeps its state. Default: the SQLite file doorstep.db beside this file.
# The environment variable DOORSTEP_DATABASE_URL overrides it (e.g. for PostgreSQL:
# postgresql+psycopg://user@host/dbname).
# url = "sqlite:///doorstep.db"

[icp]
# Ideal customer profile. An empty list means "any".
industries = []
countries = []          # ISO alpha-2 codes, e.g. ["US", "GB", "DE"]
employees_min = 50
employees_max = 5000
# revenue_min = 1_000_000
# revenue_max = 500_000_000

[warmth]
# With require_confirmation, a lead is warm only when the partner answers strong or some.
require_confirmation = true
max_activity_age_days = 180   # partner activity older than this counts as cold
min_score = 50                # warmth score (0-100) needed to ask the partner

[mapping]
# Minimum match probability for a fuzzy (probabilistic) account match.
threshold = 0.9

[measure]
# An opportunity counts for a lead when created within this many days after it.
window_days = 90
"""
