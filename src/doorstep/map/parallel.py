"""Spread pure-Python per-item work (normalising names, comparing pairs) over the machine's cores.

Worker processes are forked, so they inherit the parent's data (profiles, word statistics) for
free and only the results travel back. Where fork is unavailable, or the work is small, or one
core is all there is, the work runs in the calling process: the results are the same either way.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items the cost of starting workers outweighs what they save.
MIN_PARALLEL_ITEMS = 50_000
CHUNKS_PER_WORKER = 4

_TASK: Callable[[int, int], Any] | None = None


def available_workers() -> int:
    """Return how many cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _resolve(workers: int | None) -> int:
    if workers is None or workers <= 0:
        return available_workers()
    return workers


def _run(bounds: tuple[int, int]) -> Any:
    assert _TASK is not None  # set by the parent before the fork
    return _TASK(*bounds)


def map_ranges(
    task: Callable[[int, int], R],
    n: int,
    *,
    workers: int | None = None,
    min_items: int | None = None,
) -> list[R]:
    """Run `task(start, stop)` over consecutive ranges covering 0..n, in order.

    The task reads its inputs from what it closes over; each worker gets a copy of the parent's
    memory when it starts. Returns the task's results in range order.
    """
    count = _resolve(workers)
    if min_items is None:
        min_items = MIN_PARALLEL_ITEMS
    if count <= 1 or n < min_items or "fork" not in multiprocessing.get_all_start_methods():
        return [task(0, n)]
    pieces = min(count * CHUNKS_PER_WORKER, n)
    edges = [n * k // pieces for k in range(pieces + 1)]
    global _TASK
    _TASK = task
    # Objects the workers inherit stay out of their garbage collector: a collection would write
    # to every object's header and so copy the parent's whole heap, page by page.
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(count, initializer=gc.disable) as pool:
            return pool.map(_run, list(zip(edges, edges[1:], strict=False)), chunksize=1)
    finally:
        gc.unfreeze()
        _TASK = None


def map_items(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int | None = None,
    min_items: int | None = None,
) -> list[R]:
    """Return `[fn(x) for x in items]`, computed over several cores when that pays."""

    def task(start: int, stop: int) -> list[R]:
        return [fn(x) for x in items[start:stop]]

    out: list[R] = []
    for part in map_ranges(task, len(items), workers=workers, min_items=min_items):
        out.extend(part)
    return out
