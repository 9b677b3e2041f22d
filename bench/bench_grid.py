"""The grid's cost per stage, from the Snakemake `benchmark:` file of every job.

`python -m bench grid` after `make reproduce` (or any `snakemake` run) reads
`logs/benchmarks/<stage>/<key>.tsv` (each job's wall seconds), the last line of
each job's log (`fas usage: ... cpu_s=... peak_rss_mb=...`, the job's exact CPU
time and peak memory; Snakemake's own `cpu_time` samples a job every 0.5 s, and
after 15 s every 30 s) and `logs/benchmarks/snakemake.json` (the Snakemake
process's own CPU, all jobs' CPU and the run's wall time) and `logs/warm.log`
(the warm server's own CPU, fas.warm), and prints per stage:
jobs, total wall and CPU seconds,
mean and slowest job, peak resident memory; then the scheduler's overhead and
the wall time the run needs on `--cores` cores: its CPU over the cores, or the
longest chain of dependent jobs, whichever is longer. On a shared machine the
wall times of parallel jobs are inflated; CPU seconds are what to compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from bench._util import table
from fas import dag, paths
from fas.config import load_params

USAGE = re.compile(r"fas usage: stage=\S+ cpu_s=(?P<cpu>[\d.]+) peak_rss_mb=(?P<rss>[\d.]+)")
STAGE_ORDER = ("track", "synth", "index", "extract", "align", "dynamic", "magnify", "train",
               "evaluate", "report")


def job_usage(stage: str, key: str) -> dict | None:
    """{cpu_time, max_rss} from the usage line ending the job's log, if it has one."""
    log = paths.job_log(stage, "" if key == stage else key)
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if match := USAGE.search(line):
            return {"cpu_time": float(match["cpu"]), "max_rss": float(match["rss"])}
    return None


def warm_server() -> tuple[float, int] | None:
    """(own CPU seconds, commands run) of the run's warm server, from its log (fas.warm)."""
    try:
        text = paths.job_log("warm").read_text(errors="replace")
    except OSError:
        return None
    own = re.findall(r"own CPU ([\d.]+) s", text)
    return (float(own[-1]), len(re.findall(r" runs fas ", text))) if own else None


def read_benchmarks(root: Path) -> dict[str, dict[str, dict]]:
    """stage -> job key -> {s, cpu_time, max_rss}: wall time from Snakemake's benchmark file,
    CPU and memory from the job's log (Snakemake's sampled figures where the log has none)."""
    found: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in sorted(root.glob("*/*.tsv")):
        with open(path) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]  # with `--benchmark-repeats` the last repeat

        def number(key: str) -> float:
            try:
                return float(row.get(key) or 0)
            except ValueError:  # "NA" where Snakemake could not measure
                return 0.0

        stage, key = path.parent.name, path.stem
        found[stage][key] = {"s": number("s"), "cpu_time": number("cpu_time"),
                             "max_rss": number("max_rss"), **(job_usage(stage, key) or {})}
    return found


def stage_rows(found: dict) -> tuple[list[tuple], dict]:
    """One summary row per stage, and the totals."""
    rows, totals = [], {"jobs": 0, "s": 0.0, "cpu": 0.0, "rss": 0.0}
    for stage in sorted(found, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else 99, s)):
        jobs = found[stage].values()
        wall = [j["s"] for j in jobs]
        cpu = sum(j["cpu_time"] for j in jobs)
        rss = max(j["max_rss"] for j in jobs)
        slowest = max(found[stage].items(), key=lambda item: item[1]["s"])[0]
        rows.append((stage, len(wall), f"{sum(wall):.1f}", f"{cpu:.1f}", f"{sum(wall) / len(wall):.2f}",
                     f"{max(wall):.1f} ({slowest})", f"{rss:.0f}"))
        totals["jobs"] += len(wall)
        totals["s"] += sum(wall)
        totals["cpu"] += cpu
        totals["rss"] = max(totals["rss"], rss)
    return rows, totals


def critical_path(found: dict, params: dict) -> tuple[float, list[str]]:
    """Wall seconds and jobs of the longest chain of dependent jobs of the grid."""
    jobs = dag.jobs(params)
    producer = {out: job.name for job in jobs for out in job.outs}
    finish: dict[str, tuple[float, list[str]]] = {}
    for job in jobs:  # DAG order: a job's inputs are made by jobs listed before it
        records = found.get(job.stage, {})
        record = records.get(job.key) or (next(iter(records.values())) if len(records) == 1 else None)
        own = record["s"] if record else 0.0
        before = [finish[producer[d]] for d in job.deps if d in producer and producer[d] in finish]
        start, chain = max(before, default=(0.0, []))
        finish[job.name] = (start + own, chain + [job.name])
    return max(finish.values(), default=(0.0, []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=paths.BENCHMARK_ROOT)
    parser.add_argument("--cores", type=int, default=2, help="cores of the machine the estimate is for")
    args = parser.parse_args([] if argv is None else argv)
    found = read_benchmarks(args.root)
    if not found:
        print(f"no benchmark files under {args.root}: run `make reproduce` (or snakemake) first")
        return 0
    rows, totals = stage_rows(found)
    print(table(rows + [("total", totals["jobs"], f"{totals['s']:.1f}", f"{totals['cpu']:.1f}", "", "",
                         f"{totals['rss']:.0f}")],
                ("stage", "jobs", "wall s", "CPU s", "mean wall s", "slowest job s", "peak RSS MB")))
    usage = paths.SCHEDULER_USAGE if args.root == paths.BENCHMARK_ROOT else args.root / "snakemake.json"
    scheduler = json.loads(usage.read_text()) if usage.exists() else None
    if scheduler:
        cores = f"{scheduler['cores']} cores" if scheduler["cores"] else "no --cores: a cluster run"
        print(f"\nscheduler: the Snakemake process used {scheduler['scheduler_cpu_s']:.1f} s of CPU over "
              f"the run's {scheduler['wall_s']:.1f} s of wall time "
              f"({100 * scheduler['scheduler_cpu_s'] / max(scheduler['wall_s'], 1e-9):.1f} % of one core; "
              f"{cores}), peak RSS {scheduler['scheduler_peak_rss_mb']:.0f} MB")
    if scheduler:
        print(f"all jobs' CPU, exact (the Snakemake process's waited-for children): "
              f"{scheduler['jobs_cpu_s']:.1f} s")
    if (warm := warm_server()) is not None:
        print(f"warm server (fas.warm, counted among the jobs): {warm[1]} commands run in forks "
              f"of it; its own CPU {warm[0]:.1f} s (imports once)")
    jobs_cpu = scheduler["jobs_cpu_s"] if scheduler else totals["cpu"]
    cpu = jobs_cpu + (scheduler["scheduler_cpu_s"] if scheduler else 0.0)
    try:
        path_s, chain = critical_path(found, load_params())
    except Exception as error:  # no params.yaml here: no DAG to walk
        path_s, chain = 0.0, []
        print(f"(no critical path: {error})")
    estimate = max(cpu / args.cores, path_s)
    print(f"\non {args.cores} cores: jobs' and scheduler's CPU {cpu:.0f} s / {args.cores} = "
          f"{cpu / args.cores:.0f} s; longest chain of dependent jobs {path_s:.0f} s "
          f"({len(chain)} jobs: {' -> '.join(chain[:3])}{' -> ...' if len(chain) > 4 else ''}"
          f"{' -> ' + chain[-1] if len(chain) > 3 else ''}); estimated wall time >= {estimate / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
