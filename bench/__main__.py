"""Run every benchmark module `bench/bench_*.py` that has a `main()`, in name order.

`python -m bench` runs them all; `python -m bench extract cache` runs those
whose name contains one of the words. Timings on a shared machine are noisy.
A `main()` that returns non-zero cannot run on this machine (bench_gpu without
CUDA) and has said why: skipped in a run of all, a failure when named.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def discover() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = [n for n in discover() if not argv or any(word in n for word in argv)]
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "main", None)):
            continue
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            if module.main() and argv:
                failed.append(name)
        except Exception as error:  # one broken benchmark must not hide the others
            failed.append(name)
            print(f"{name} FAILED: {type(error).__name__}: {error}", flush=True)
        print(f"--- {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
