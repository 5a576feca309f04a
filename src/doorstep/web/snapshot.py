"""The dashboard's numbers, computed in the background and served from memory.

The measure report, the overlap matrix and the partner scorecards read every lead: seconds at a
million leads, far too slow for a page. So one background thread computes them, pages read the
last result, and a result older than its time to live is recomputed while the old one is served.

With several server processes (`doorstep serve --workers N`) the result is shared through the
workspace's private `.doorstep/snapshot/` folder: one process at a time computes (a lock file),
writes the result whole under a new name and renames it into place, and every process loads the
new file when it appears. A change made in any process marks the numbers stale for all of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from filelock import FileLock, Timeout

from doorstep.feedback import LeadOpportunity, Scorecard, scorecards
from doorstep.measure import Report, build_report
from doorstep.share.policy import OverlapMatrix, overlap_matrix
from doorstep.store.queries import data_stamp
from doorstep.web.queries import overdue_counts
from doorstep.workspace import Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Snapshot:
    """The dashboard's numbers at one moment, and how long they took."""

    report: Report
    matrix: OverlapMatrix
    scorecards: dict[str, Scorecard]
    opportunities: dict[str, LeadOpportunity]
    overdue: dict[str, int]
    computed_at: datetime
    seconds: float
    # what the store had changed up to when it was computed (`data_stamp`); None: unknown
    stamp: tuple[Any, ...] | None = None


def compute_snapshot(workspace: Workspace) -> Snapshot:
    """Measure, map and score everything once."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)
    with workspace.store.engine.connect() as conn:
        stamp = data_stamp(conn)  # read first: a change made while computing shows next time
    report = build_report(workspace, now=now)
    cards, opportunities = scorecards(workspace, report=report, now=now)
    with workspace.store.engine.connect() as conn:
        overdue = overdue_counts(conn, now)
    return Snapshot(
        report=report,
        matrix=overlap_matrix(workspace),
        scorecards=cards,
        opportunities=opportunities,
        overdue=overdue,
        computed_at=now,
        seconds=time.perf_counter() - started,
        stamp=stamp,
    )


def brought_up_to_date(workspace: Workspace, snapshot: Snapshot) -> Snapshot | None:
    """The snapshot moved to now when the data has not changed since it was computed (only the
    overdue counts depend on the clock, and they are counted again); None when it has."""
    if snapshot.stamp is None:
        return None
    now = datetime.now(UTC).replace(tzinfo=None)
    with workspace.store.engine.connect() as conn:
        if data_stamp(conn) != snapshot.stamp:
            return None
        overdue = overdue_counts(conn, now)
    return replace(snapshot, overdue=overdue, computed_at=now)


SNAPSHOT_FILE = "snapshot.pickle"
STALE_FILE = "stale"
LOCK_FILE = "compute.lock"


def snapshot_folder(workspace: Workspace) -> Path:
    """Where server processes share the dashboard's numbers."""
    return workspace.path / ".doorstep" / "snapshot"


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class SnapshotCache:
    """The latest snapshot, refreshed in one background thread when missing or stale; with a
    `shared` folder, shared between the server's processes."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        ttl_seconds: float = 300.0,
        compute: Callable[[Workspace], Snapshot] = compute_snapshot,
        shared: Path | None = None,
    ) -> None:
        self.workspace = workspace
        self.ttl_seconds = ttl_seconds
        self.compute = compute
        self.shared = shared
        self._snapshot: Snapshot | None = None
        self._loaded: int | None = None  # the shared file's mtime when this process read it
        self._stale = False
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_at: float | None = None
        self.error: str | None = None
        self._memo: dict[Any, Any] = {}
        self._memo_for: datetime | None = None
        if shared is not None:
            shared.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _load_shared(self) -> None:
        """Take up a snapshot another process wrote since this one last looked."""
        if self.shared is None:
            return
        path = self.shared / SNAPSHOT_FILE
        written = _mtime(path)
        if written is None or written == self._loaded:
            return
        try:
            # written by doorstep itself, into a folder only the workspace's owner can write
            with path.open("rb") as f:
                snapshot = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
            return  # being replaced, or from another version: the next compute writes it anew
        with self._lock:
            self._snapshot, self._loaded = snapshot, written

    def _shared_is_stale(self) -> bool:
        if self.shared is None:
            return False
        marked = _mtime(self.shared / STALE_FILE)
        return marked is not None and (self._loaded is None or marked >= self._loaded)

    def _compute_and_share(self) -> Snapshot | None:
        """Compute a snapshot; with a shared folder, only when no other process is computing
        and nobody has written a fresh one meanwhile (None then)."""
        if self.shared is None:
            return self._next_snapshot()
        try:
            lock = FileLock(self.shared / LOCK_FILE, timeout=0, mode=0o600)
            lock.acquire()
        except Timeout:
            return None  # another process computes; its file is picked up when written
        try:
            self._load_shared()
            if self._snapshot is not None and not self._needs_refresh():
                return None
            snapshot = self._next_snapshot()
            path = self.shared / SNAPSHOT_FILE
            partial = path.with_name(f"{SNAPSHOT_FILE}.{os.getpid()}.partial")
            with partial.open("wb") as f:
                pickle.dump(snapshot, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.chmod(partial, 0o600)
            os.replace(partial, path)
            with self._lock:
                self._loaded = _mtime(path)
            return snapshot
        finally:
            lock.release()

    def _next_snapshot(self) -> Snapshot:
        """A new snapshot: the current one brought up to date when only time has passed (a
        change made through the app marks it stale, and it is computed again)."""
        current = self._snapshot
        stale = self._stale or self._shared_is_stale()
        if current is not None and not stale:
            light = brought_up_to_date(self.workspace, current)
            if light is not None:
                return light
        return self.compute(self.workspace)

    def _run(self) -> None:
        try:
            snapshot = self._compute_and_share()
        except Exception as exc:  # noqa: BLE001 - a failed refresh must not kill the server
            log.exception("computing the dashboard failed")
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
                self._failed_at = time.monotonic()
        else:
            if snapshot is not None:
                with self._lock:
                    self._snapshot, self._stale, self.error = snapshot, False, None
                    self._failed_at = None
        finally:
            with self._lock:
                self._thread = None
            self._ready.set()

    def _needs_refresh(self) -> bool:
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            return False  # a failed computation is retried a while later, not on every request
        current = self._snapshot
        if current is None or self._stale or self._shared_is_stale():
            return True
        age = (datetime.now(UTC).replace(tzinfo=None) - current.computed_at).total_seconds()
        return age > self.ttl_seconds

    def refresh(self) -> None:
        """Start computing a new snapshot unless one is being computed."""
        with self._lock:
            if self._thread is not None:
                return
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="doorstep-snapshot",
                                            daemon=True)
            self._thread.start()

    def get(self, wait: float = 0.0) -> Snapshot | None:
        """The latest snapshot, refreshed in the background when stale; with none yet, wait up
        to `wait` seconds for the first."""
        self._load_shared()
        if self._needs_refresh():
            self.refresh()
            if self._snapshot is None and wait > 0:
                self._ready.wait(wait)
        return self._snapshot

    def remember(self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()`'s result, computed once per snapshot for each `key`: figures derived
        from the dashboard's numbers (a partner's scorecard under its sharing levels)."""
        current = self._snapshot
        stamp = current.computed_at if current is not None else None
        with self._lock:
            if self._memo_for != stamp:
                self._memo, self._memo_for = {}, stamp
            if key in self._memo:
                return cast(T, self._memo[key])
        value = compute()
        with self._lock:
            if self._memo_for == stamp:
                self._memo[key] = value
        return value

    def invalidate(self) -> None:
        """Mark the snapshot stale, e.g. after a change made through the web app (in every
        server process)."""
        with self._lock:
            self._stale = True
        if self.shared is not None:
            with contextlib.suppress(OSError):
                (self.shared / STALE_FILE).touch(mode=0o600)
                os.utime(self.shared / STALE_FILE)

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait (up to `timeout` seconds) for a snapshot being computed to finish: at shutdown,
        so that no query is left running against a store that is going away."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    @property
    def computing(self) -> bool:
        """Whether a snapshot is being computed right now."""
        return self._thread is not None
