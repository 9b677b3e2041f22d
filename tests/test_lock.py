"""fas.lock on a two-stage DVC project: stamps follow dvc.lock, and what was built is recorded."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fas import lock

BIN = Path(sys.executable).parent
WRITE = ("import sys, yaml; key, out = sys.argv[1:]; "
         "open(out, 'w').write(str(yaml.safe_load(open('params.yaml'))[key]))")


def _run(folder: Path, *command: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture()
def project(tmp_path):
    """`one` writes param a, `two` reads one's output and param b; built by dvc repro."""
    (tmp_path / "params.yaml").write_text("a: 1\nb: 2\n")
    (tmp_path / "write.py").write_text(WRITE)
    stages = {"one": {"cmd": f"{sys.executable} write.py a one.txt", "deps": ["write.py"],
                      "params": ["a"], "outs": ["one.txt"]},
              "two": {"cmd": f"{sys.executable} write.py b two.txt", "deps": ["one.txt"],
                      "params": ["b"], "outs": ["two.txt"]}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    _run(tmp_path, "git", "init", "-q")
    _run(tmp_path, "dvc", "init", "-q")
    _run(tmp_path, "dvc", "repro")
    return tmp_path


def stamps(folder: Path) -> dict[str, Path]:
    return {name: folder / "stamps" / name for name in ("one", "two")}


def test_stamps_follow_what_dvc_lock_records(project):
    assert lock.built_stages(project) == {"one", "two"}
    lock.sync_stamps(stamps(project), project)
    assert all(stamp.exists() for stamp in stamps(project).values())
    (project / "params.yaml").write_text("a: 1\nb: 3\n")  # only `two` reads b
    lock.sync_stamps(stamps(project), project)
    assert stamps(project)["one"].exists() and not stamps(project)["two"].exists()


def test_what_another_tool_built_is_recorded_and_nothing_else(project):
    (project / "params.yaml").write_text("a: 1\nb: 3\n")
    before = lock.sync_stamps(stamps(project), project)
    _run(project, sys.executable, "write.py", "b", "two.txt")  # as Snakemake would run it
    stamps(project)["two"].touch()
    assert lock.record_built(stamps(project), before, project) == ["two"]
    assert "up to date" in _run(project, "dvc", "status")
    assert lock.record_built(stamps(project), lock.sync_stamps(stamps(project), project),
                             project) == []


def test_a_benchmark_older_than_what_dvc_rebuilt_is_removed(project):
    """Snakemake counts a job's benchmark file among its outputs: one that predates the
    outputs DVC rebuilt would make the next job after it look out of date."""
    marks = {name: project / "bench" / f"{name}.tsv" for name in ("one", "two")}
    for mark in marks.values():
        mark.parent.mkdir(exist_ok=True)
        mark.write_text("s\n1.0\n")
    os.utime(marks["one"], ns=(0, 0))  # older than one.txt: as if dvc repro ran `one` since
    lock.sync_stamps(stamps(project), project, benchmarks=marks)
    assert not marks["one"].exists() and marks["two"].exists()


def _cache_listing(folder: Path) -> list[str]:
    cache = folder / ".dvc" / "cache"
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())


def test_recording_writes_what_dvc_repro_writes(tmp_path):
    """dvc.lock, the run cache and the object cache as `dvc repro` leaves them, for a
    stage with a cached output and one with `cache: false` (no run-cache entry)."""
    stages = {"one": {"cmd": f"{sys.executable} write.py a one.txt", "deps": ["write.py"],
                      "params": ["a"], "outs": ["one.txt"]},
              "two": {"cmd": f"{sys.executable} write.py b two.txt", "deps": ["one.txt"],
                      "params": ["b"], "outs": [{"two.txt": {"cache": False}}]}}
    folders = {}
    for name in ("repro", "recorded"):
        folder = folders[name] = tmp_path / name
        folder.mkdir()
        (folder / "params.yaml").write_text("a: 1\nb: 2\n")
        (folder / "write.py").write_text(WRITE)
        (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
        _run(folder, "dvc", "init", "-q", "--no-scm")
    _run(folders["repro"], "dvc", "repro")
    for key, out in (("a", "one.txt"), ("b", "two.txt")):  # as Snakemake runs the jobs
        _run(folders["recorded"], sys.executable, "write.py", key, out)
    lock.commit(["one", "two"], folders["recorded"])
    repro, recorded = (yaml.safe_load((folders[n] / "dvc.lock").read_text()) for n in folders)
    assert recorded == repro
    assert _cache_listing(folders["recorded"]) == _cache_listing(folders["repro"])
    assert any(p.startswith("runs/") for p in _cache_listing(folders["repro"]))  # `one` only
    assert "up to date" in _run(folders["recorded"], "dvc", "status")


def test_params_are_found_as_dvc_finds_them():
    """The plain walk behind the once-parsed params reads agrees with DVC's dpath
    lookup for every params key of the grid's stages, and leaves the rest to it."""
    import dpath

    from fas import dag
    from fas.config import load_params, read_params_file

    raw = read_params_file("params.yaml")
    keys = sorted({key for stage in dag.dvc_stages(load_params("params.yaml"), raw)["stages"].values()
                   for entry in stage.get("params", []) for key in
                   (entry if isinstance(entry, list) else [entry])
                   if isinstance(key, str)})
    assert len(keys) > 20
    assert lock._plain_lookup(raw, keys) == {key: dpath.get(raw, key, separator=".")
                                             for key in keys}
    for left_to_dvc in (["grid.*"], ["grid.0.name"], ["no_such_key"]):
        assert lock._plain_lookup(raw, left_to_dvc) is None
