"""Opening the store: create the engine and bring the schema up to date."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from filelock import FileLock
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from doorstep.store.models import StageLock

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Store:
    """A handle on the operational store."""

    engine: Engine
    url: str

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # Wait for another process's write instead of failing at once; first, since switching the
    # journal mode itself needs the lock.
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_CONNECT_WAIT_MS}")
    # WAL lets the web app read while a stage writes; foreign_keys stays off (ingest checks them).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# How long any connection waits for a lock another process holds.
SQLITE_CONNECT_WAIT_MS = 60_000
# How long a stage waits for another to finish before SQLite says "database is locked".
SQLITE_STAGE_WAIT_MS = 600_000
PIPELINE_LOCK = "pipeline"


def hold_stage_lock(conn: Connection, name: str = PIPELINE_LOCK) -> None:
    """Take the named stage lock for the rest of `conn`'s transaction.

    Call it first thing in a writing stage's transaction: a second run of any stage holding the
    same lock waits until the first commits, and then reads what it wrote, so two runs at once
    never route, write or record anything twice.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_STAGE_WAIT_MS}")
    now = datetime.now(UTC).replace(tzinfo=None)
    upsert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(StageLock)
    conn.execute(
        upsert.values(name=name, held_at=now).on_conflict_do_update(
            index_elements=["name"], set_={"held_at": now}
        )
    )


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at doorstep's migrations."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _private_file(database: str | None) -> None:
    """Create a new SQLite file readable by its owner only; SQLite gives its WAL and shared-
    memory files the same mode. An existing file keeps the mode its owner chose."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# How long a process waits for another one's schema upgrade before giving up.
MIGRATION_WAIT_S = 600
# Any fixed number: the PostgreSQL advisory lock all doorstep processes take to upgrade a store.
MIGRATION_LOCK_KEY = 0x646F6F72


@contextlib.contextmanager
def _migration_turn(engine: Engine) -> Iterator[None]:
    """Let one process at a time upgrade a SQLite file's schema.

    SQLite runs DDL outside the transaction, so two processes creating a new store at once would
    both see no tables and both try to create them. A lock file beside the database makes the
    second wait and then find the schema at its latest. PostgreSQL serialises upgrades with an
    advisory lock inside the migration transaction instead (see `open_store`).
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    if database.startswith("file:"):
        yield
        return
    with FileLock(f"{database}.lock", timeout=MIGRATION_WAIT_S, mode=0o600):
        yield


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Connect to the store at `url` and, unless told not to, upgrade its schema to the latest.

    Any number of processes may open a new store at once: one creates the schema, the others wait
    for it and find it done.
    """
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _private_file(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade:
        cfg = alembic_config()
        with _migration_turn(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    return Store(engine=engine, url=url)
