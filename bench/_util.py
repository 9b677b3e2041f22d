"""Shared helpers of the benchmarks: timing, peak memory, output folder."""

from __future__ import annotations

import resource
import time
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
