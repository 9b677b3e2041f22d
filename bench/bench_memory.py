"""Peak memory of every stage at tiny and demo scale: bounded, and not growing with the videos.

Each stage runs as its own `fas` process, as the orchestrators run it, on a
video dataset (Replay-Attack) and a frame-folder dataset (CeFA); its peak
resident memory comes from `os.wait4` in a small launcher. The baseline is
the same stage at tiny scale, measured in the same run: the ratio demo/tiny
should stay near 1 while the number of videos grows several times.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from fas import dag, paths
from fas.config import REPO_ROOT, load_params
from fas.paths import Shard

LIMIT_MB = 4096
EXPERIMENTS = {"replay": "replay.grandtest.f1.motion.full.s0", "cefa": "cefa.p1.f1.sdnet.full.s0"}


# A small interpreter forks the stage and reports its peak from wait4. Started straight from
# this process, a stage's peak would start at ours: Linux records the high-water mark of the
# memory an exec replaces, which for a vfork'd child is this (large) process's.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.executable, [sys.executable, "-m", "fas.cli", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _peak(command: list[str], folder: Path) -> tuple[float, float]:
    """(peak resident MB, seconds) of one `fas` process."""
    env = {**os.environ, "FAS_TRACKING": "0", "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ['PATH']}"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], cwd=folder, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"fas {' '.join(command)} failed: {' / '.join(said)}")
    return int(done.stdout) / 1024, time.perf_counter() - start


def _stages(params: dict, dataset: str) -> list[tuple[str, list[str]]]:
    """The grid's commands for one dataset (`fas.dag.jobs`, one shard) and its experiment."""
    experiment = EXPERIMENTS[dataset]
    return [(job.stage, shlex.split(job.cmd)[1:]) for job in dag.jobs(params)
            if job.key in (dataset, f"{dataset}.{Shard(0, 1)}", experiment)]


def measure(scale: str) -> dict[tuple[str, str], tuple[float, float]]:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        params = load_params(REPO_ROOT / "params.yaml")
        params["synth"]["scale"] = scale
        params["shards"] = {"default": 1}
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for dataset in EXPERIMENTS:
            for stage, command in _stages(params, dataset):
                figures[dataset, stage] = _peak(command, folder)
            figures[dataset, "videos"] = (
                len(pd.read_parquet(folder / paths.index_outputs(dataset)[0])), 0.0)
    return figures


def main() -> None:
    tiny, demo = measure("tiny"), measure("demo")
    print(f"{'dataset':8} {'stage':9} {'tiny MB':>8} {'demo MB':>8} {'demo/tiny':>9} {'demo s':>7}")
    worst = 0.0
    for dataset in EXPERIMENTS:
        videos = int(tiny[dataset, "videos"][0]), int(demo[dataset, "videos"][0])
        for stage in [s for d, s in demo if d == dataset and s != "videos"]:
            (small, _), (large, seconds) = tiny[dataset, stage], demo[dataset, stage]
            worst = max(worst, large)
            print(f"{dataset:8} {stage:9} {small:8.0f} {large:8.0f} {large / small:9.2f} "
                  f"{seconds:7.1f}")
        print(f"{dataset:8} videos: tiny {videos[0]}, demo {videos[1]} "
              f"(x{videos[1] / videos[0]:.1f})")
    print(f"memory: worst stage peak {worst:.0f} MB (limit {LIMIT_MB} MB): "
          f"{'within' if worst < LIMIT_MB else 'OVER'} the limit")


if __name__ == "__main__":
    main()
