"""Shared helpers of the benchmarks: timing, peak memory, output folder."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"  # git-ignored


def best_time(function, repeats: int = 3) -> float:
    """Best wall time of several calls (the least disturbed on a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


@contextmanager
def one_thread_each():
    """torch, OpenCV, BLAS/OpenMP (threadpoolctl) and Arrow's pools on one thread each, restored after."""
    import cv2
    import pyarrow as pa
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads(), cv2.getNumThreads(), pa.cpu_count(), pa.io_thread_count()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    try:
        with threadpool_limits(1):
            yield "threads pinned to 1: torch, OpenCV, threadpoolctl (BLAS, OpenMP), Arrow (CPU, I/O)"
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
        pa.set_cpu_count(before[2])
        pa.set_io_thread_count(before[3])


def peak_memory_mb() -> str:
    """Peak resident memory of this process and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"peak RSS {own:.0f} MB (children {children:.0f} MB)"


def table(rows: list[tuple], header: tuple) -> str:
    """A plain fixed-width table."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
