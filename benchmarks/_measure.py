"""Shared benchmark plumbing: wall time and peak memory (workers too) of a piece of work."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _status_kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:  # the process ended meanwhile
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(k) for k in children.read_text().split()]
        except OSError:
            continue
        for kid in kids:
            out.extend([kid, *_descendants(kid)])
    return out


def _rss_bytes() -> int:
    """Memory held by this process and its worker processes.

    Alone: its resident set. With workers (forked, sharing pages copy-on-write): the sum of
    each process's proportional set size, which counts a shared page once.
    """
    kids = _descendants(os.getpid())
    if not kids:
        return _status_kib(Path("/proc/self/status"), "VmRSS:") * 1024
    pids = [os.getpid(), *kids]
    return sum(_status_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss:") for p in pids) * 1024


@dataclass
class Measured:
    """How long a run took and the most memory the process held while it ran."""

    seconds: float
    peak_rss: int


def measure(work: Callable[[], T]) -> tuple[T, Measured]:
    """Run `work`, sampling the memory of the process and its workers every 250 ms (reading
    /proc/PID/smaps_rollup of a large process costs CPU: sampled every 50 ms it took a sixth of
    a core from the work it measures)."""
    peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.25):
            peak = max(peak, _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = work()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return result, Measured(seconds, max(peak, _rss_bytes()))


def machine() -> str:
    """One line describing the machine, for the benchmark record."""
    cpus = len(
        [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("processor")]
    )
    mem = next(
        (
            int(ln.split()[1]) // (1024 * 1024)
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    return f"{platform.machine()}, {cpus} cores, {mem} GiB RAM, Python {platform.python_version()}"
