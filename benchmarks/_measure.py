"""Shared benchmark plumbing: wall time and peak resident memory of a piece of work."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Measured:
    """How long a run took and the most memory the process held while it ran."""

    seconds: float
    peak_rss: int


def measure(work: Callable[[], T]) -> tuple[T, Measured]:
    """Run `work`, sampling the process's resident memory every 50 ms."""
    peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
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
