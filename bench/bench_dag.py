"""DAG bookkeeping speed: `snakemake -n` over the whole grid and a no-op `dvc repro`.

Baselines measured in the same run: each tool's bare start-up (`--version`),
so the ratio shows what building and checking the grid's DAG adds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _time(*command: str, repeats: int = 3) -> float:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    from fas.config import load_params
    from fas.dag import jobs

    n_jobs = len(jobs(load_params()))
    snakemake_bare = _time(str(BIN / "snakemake"), "--version")
    snakemake_dry = _time(str(BIN / "snakemake"), "-n", "--forceall", "--quiet", "all")
    print(f"dag: {n_jobs} jobs in the grid")
    print(f"dag: snakemake -n --forceall {snakemake_dry:.2f} s "
          f"(start-up alone {snakemake_bare:.2f} s, x{snakemake_dry / snakemake_bare:.1f})")
    dvc_bare = _time(str(BIN / "dvc"), "--version")
    if Path("dvc.lock").exists():
        label, dvc_check = "dvc repro (no-op)", _time(str(BIN / "dvc"), "repro")
    else:
        label, dvc_check = "dvc status (no dvc.lock yet)", _time(str(BIN / "dvc"), "status")
    print(f"dag: {label} {dvc_check:.2f} s (start-up alone {dvc_bare:.2f} s, "
          f"x{dvc_check / dvc_bare:.1f})")


if __name__ == "__main__":
    main()
