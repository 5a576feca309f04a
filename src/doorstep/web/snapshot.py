"""The dashboard's numbers, computed in the background and served from memory.

The measure report, the overlap matrix and the partner scorecards read every lead: seconds at a
million leads, far too slow for a page. So one background thread computes them, pages read the
last result, and a result older than its time to live is recomputed while the old one is served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from doorstep.feedback import LeadOpportunity, Scorecard, scorecards
from doorstep.measure import Report, build_report
from doorstep.share.policy import OverlapMatrix, overlap_matrix
from doorstep.web.queries import overdue_counts
from doorstep.workspace import Workspace

log = logging.getLogger(__name__)
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


def compute_snapshot(workspace: Workspace) -> Snapshot:
    """Measure, map and score everything once."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)
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
    )


class SnapshotCache:
    """The latest snapshot, refreshed in one background thread when missing or stale."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        ttl_seconds: float = 300.0,
        compute: Callable[[Workspace], Snapshot] = compute_snapshot,
    ) -> None:
        self.workspace = workspace
        self.ttl_seconds = ttl_seconds
        self.compute = compute
        self._snapshot: Snapshot | None = None
        self._stale = False
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_at: float | None = None
        self.error: str | None = None

    def _run(self) -> None:
        try:
            snapshot = self.compute(self.workspace)
        except Exception as exc:  # noqa: BLE001 - a failed refresh must not kill the server
            log.exception("computing the dashboard failed")
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
                self._failed_at = time.monotonic()
        else:
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
        if current is None or self._stale:
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
        if self._needs_refresh():
            self.refresh()
            if self._snapshot is None and wait > 0:
                self._ready.wait(wait)
        return self._snapshot

    def invalidate(self) -> None:
        """Mark the snapshot stale, e.g. after a change made through the web app."""
        with self._lock:
            self._stale = True

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
