"""Run every benchmark module `bench/bench_*.py` that has a `main()`, in name order.

`python -m bench` runs them all; `python -m bench extract cache` runs those
whose name contains one of the words. Timings on a shared machine are noisy.
When more than one runs, each runs in its own interpreter, so none inherits
another's peak memory, imports or thread pools. A `main()` that returns
non-zero cannot run on this machine (bench_gpu without CUDA) and has said
why: skipped in a run of all, a failure when named. The numeric libraries
run the kernels a job runs (`fas.numerics`: capped at AVX2).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import time

import bench
from fas import numerics

CANNOT_RUN = 3  # exit status of `--one NAME` when the benchmark cannot run on this machine


def discover() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                  if m.name.startswith("bench_"))


def run_one(name: str) -> int:
    """Run one benchmark here: 0, CANNOT_RUN, or 1 when it failed (one broken benchmark
    must not hide the others)."""
    module = importlib.import_module(f"bench.{name}")
    try:
        return CANNOT_RUN if module.main() else 0
    except Exception as error:
        print(f"{name} FAILED: {type(error).__name__}: {error}", flush=True)
        return 1


def main(argv: list[str]) -> int:
    numerics.cap_instruction_sets()  # the kernels a job runs (thread counts: each benchmark's own)
    if argv[:1] == ["--one"]:
        return run_one(argv[1])
    names = [n for n in discover() if not argv or any(word in n for word in argv)]
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        status = (run_one(name) if len(names) == 1 else
                  subprocess.run([sys.executable, "-m", "bench", "--one", name]).returncode)
        if status not in (0, CANNOT_RUN) or (status == CANNOT_RUN and argv):
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
