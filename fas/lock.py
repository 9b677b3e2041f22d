"""dvc.lock, the one record of what is built: DVC and Snakemake both read and write it.

DVC records every stage it runs in dvc.lock: the md5 of its dependencies and
outputs and the values of the params.yaml keys it reads. Snakemake runs the
same jobs (`fas.dag`) and keeps to the same record:

- before it plans, `sync_stamps` asks DVC which stages are out of date and
  removes their *built stamp*, a Snakemake-only output of every rule
  (`paths.built_stamp`), and stamps the stages DVC finds up to date (removing
  their `benchmark:` file where DVC rebuilt the outputs after it: Snakemake
  counts it as an output, and it no longer times them);
- when it ends, `record_built` commits the jobs it ran to dvc.lock, as
  `dvc repro` would have.

Both tools therefore decide by content and parameters, never by modification
times: after either one, the other has nothing to do.
"""

from __future__ import annotations

import copy
import sys
from contextlib import chdir, contextmanager
from pathlib import Path
from typing import Iterator, Mapping


@contextmanager
def dvc_project(root: str | Path = ".") -> Iterator:
    """The DVC project at `root`, worked on from there (stage names are relative to it);
    without git when the folder is not a git checkout."""
    from dvc.repo import Repo
    from dvc.scm import NoSCMError

    with chdir(root):
        try:
            repo = Repo(".")
        except NoSCMError:
            repo = Repo(".", config={"core": {"no_scm": True}})
        with repo:
            yield repo


def built_stages(root: str | Path = ".") -> set[str]:
    """Stages whose dvc.lock entry matches their dependencies, params and outputs."""
    return set(_built_outputs(root))


def _built_outputs(root: str | Path) -> dict[str, list[Path]]:
    """The outputs of every stage dvc.lock records as built, by stage."""
    with dvc_project(root) as repo, _params_read_once():
        changed = set(repo.status())
        return {stage.addressing: [Path(out.fs_path) for out in stage.outs]
                for stage in repo.index.stages if stage.addressing not in changed}


def commit(stages: list[str], root: str | Path = ".") -> None:
    """Record stages in dvc.lock as they are now, as `dvc commit --force` does.

    The steps of `dvc.repo.commit` (save, commit to the cache, dump), over every
    stage at once: DVC's own command collects its target by parsing dvc.yaml
    and dvc.lock again for each stage, minutes for a whole grid. The run cache
    is kept as `dvc repro` keeps it (`_run_cached`; `dvc commit` would also copy
    the synthetic datasets, outputs with `cache: false`, into it).
    """
    from dvc.repo import lock_repo

    wanted = set(stages)
    with dvc_project(root) as repo, lock_repo(repo), _params_read_once():
        chosen = [stage for stage in repo.index.stages if stage.addressing in wanted]
        for stage in chosen:
            stage.save(run_cache=_run_cached(stage))
            stage.commit(relink=False)  # the workspace file stays as it is (its mtime too)
        by_file: dict[str, list] = {}
        for stage in chosen:
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        for group in by_file.values():
            group[0].dvcfile.dump_stages(group, update_pipeline=False)


def _run_cached(stage) -> bool:
    """Whether `dvc repro` keeps this stage's run in the run cache: not with an uncached
    output other than a metric or plot (it would copy that output into the cache)."""
    return all(out.use_cache for out in stage.outs if not (out.is_metric or out.is_plot))


@contextmanager
def _params_read_once() -> Iterator[None]:
    """DVC's reads of params.yaml, parsed once.

    DVC parses the file again for every params dependency it hashes (once a
    stage for `status`, three times to record one: its hash and twice for the
    run cache) and finds each key by a dpath walk of the whole file: for the
    grid, 700 ruamel parses and 6,400 walks, half of recording it. Within one
    status or commit the file is taken as unchanged (Snakemake calls them
    before its first job and after its last); every answer is a copy, as a
    fresh read would be, and a key a plain walk of mappings cannot find is
    left to DVC's own reader.
    """
    from dvc.dependency import param

    read, load = param.read_param_file, param.load_path
    parsed: dict = {}

    def load_once(path, fs=None, **kwargs):
        key = (path, tuple(sorted(kwargs.items())))
        if key not in parsed:
            parsed[key] = load(path, fs, **kwargs)
        return parsed[key]  # shared: every answer below is copied

    def read_once(fs, path, key_paths=None, flatten=False, **kwargs):
        found = (_plain_lookup(load_once(path, fs, **kwargs), key_paths)
                 if flatten and key_paths else None)
        return copy.deepcopy(found if found is not None
                             else read(fs, path, key_paths, flatten, **kwargs))

    param.read_param_file, param.load_path = read_once, load_once
    try:
        yield
    finally:
        param.read_param_file, param.load_path = read, load


def _plain_lookup(config, key_paths: list[str]) -> dict | None:
    """{dotted key: value} by walking mappings; None where DVC's reader must decide
    (a glob, a list on the way, a key not found)."""
    found = {}
    for key_path in key_paths:
        if any(char in key_path for char in "*?[]"):
            return None
        node = config
        for part in key_path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        found[key_path] = node
    return found


def sync_stamps(stamps: Mapping[str, Path], root: str | Path = ".",
                benchmarks: Mapping[str, Path] | None = None) -> dict[str, int | None]:
    """Stamp the stages dvc.lock records as built, unstamp the others; returns the stamps' mtimes.

    `stamps`: stage name -> its built stamp. Snakemake then runs exactly the
    jobs without a stamp (and those that depend on them). `benchmarks`: stage
    name -> its Snakemake benchmark file, removed when older than the stage's
    outputs (another tool rebuilt them): Snakemake takes the oldest output,
    benchmark included, as the job's time, and would run it again.
    """
    built = _built_outputs(root)
    for stage, stamp in stamps.items():
        if stage not in built:
            stamp.unlink(missing_ok=True)
        else:  # touched even when present: never older than outputs DVC rebuilt since
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
            benchmark = (benchmarks or {}).get(stage)
            if benchmark is not None and _is_older(benchmark, built[stage]):
                benchmark.unlink()
    return {stage: _mtime(stamp) for stage, stamp in stamps.items()}


def _is_older(path: Path, outputs: list[Path]) -> bool:
    """`path` exists and Snakemake would find one of `outputs` newer than it."""
    mtime = _mtime(path)
    return mtime is not None and any((written := _output_mtime(out)) is not None and written > mtime
                                     for out in outputs)


def _output_mtime(output: Path) -> int | None:
    """An output's time as Snakemake takes it: a folder's `.snakemake_timestamp` where it has one."""
    stamped = _mtime(output / ".snakemake_timestamp") if output.is_dir() else None
    return stamped if stamped is not None else _mtime(output)


def record_built(stamps: Mapping[str, Path], before: Mapping[str, int | None],
                 root: str | Path = ".") -> list[str]:
    """Commit to dvc.lock the stages whose stamp Snakemake wrote since `sync_stamps` (`before`)."""
    built = [stage for stage, stamp in stamps.items()
             if (mtime := _mtime(stamp)) is not None and mtime != before.get(stage)]
    if built:
        print(f"fas: recording {len(built)} job(s) in dvc.lock", file=sys.stderr)
        commit(built, root)
    return built


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
